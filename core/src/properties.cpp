#include "estlab/core/properties.hpp"

#include "estlab/core/text.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <system_error>

namespace estlab {
namespace {

// Properties.load treats only these as whitespace (not \r or \n, which end lines).
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  s = trim_left(s);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Natural lines end at \n, \r or \r\n, as in Properties.load.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

bool ends_with_odd_backslashes(std::string_view line) {
  std::size_t count = 0;
  for (auto it = line.rbegin(); it != line.rend() && *it == '\\'; ++it) ++count;
  return count % 2 == 1;
}

std::optional<unsigned> hex4(std::string_view s) {
  if (s.size() < 4) return std::nullopt;
  unsigned value = 0;
  for (char c : s.substr(0, 4)) {
    value <<= 4;
    if (c >= '0' && c <= '9') value |= static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') value |= static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') value |= static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
  }
  return value;
}


// A logical line (natural lines joined at continuations) and where each piece came from, so an error
// inside a continued value names the natural line it is on.
struct LogicalLine {
  struct Piece {
    std::size_t offset;
    int line;
  };
  std::string text;
  std::vector<Piece> pieces;

  int line_at(std::size_t offset) const {
    int line = pieces.front().line;
    for (const auto& piece : pieces) {
      if (piece.offset > offset) break;
      line = piece.line;
    }
    return line;
  }
};

// Undoes the escapes of a key or value (loadConvert); offset is where s starts in the logical line.
Result<std::string> unescape(const LogicalLine& logical, std::size_t offset, std::size_t length,
                             const std::string& source_name) {
  const std::string_view s = std::string_view(logical.text).substr(offset, length);
  auto fail = [&](std::size_t at, const std::string& what) {
    return make_error(ErrorCode::invalid_input,
                      source_name + ":" + std::to_string(logical.line_at(offset + at)) + ": " + what);
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (i + 1 == s.size()) {  // cannot happen after continuation handling; keep the byte rather than lose it
      out += '\\';
      break;
    }
    const char c = s[++i];
    switch (c) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'f': out += '\f'; break;
      case 'u': {
        const std::size_t escape_start = i - 1;
        const auto unit = hex4(s.substr(i + 1));
        if (!unit) {
          const std::string shown(s.substr(escape_start, 6));
          return fail(escape_start, "malformed \\uXXXX escape '" + shown + "': expected 4 hex digits");
        }
        i += 4;
        char32_t cp = *unit;
        // Java strings are UTF-16, so characters outside the BMP arrive as a surrogate pair; UTF-8 needs
        // the code point, and a lone surrogate has no UTF-8 form at all.
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail(escape_start, "malformed \\uXXXX escape '" + std::string(s.substr(escape_start, 6)) +
                                        "': unpaired UTF-16 surrogate");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const std::string_view rest = s.substr(i + 1);
          const auto low = rest.size() >= 6 && rest[0] == '\\' && rest[1] == 'u' ? hex4(rest.substr(2))
                                                                                 : std::nullopt;
          if (!low || *low < 0xDC00 || *low > 0xDFFF) {
            return fail(escape_start, "malformed \\uXXXX escape '" + std::string(s.substr(escape_start, 6)) +
                                          "': unpaired UTF-16 surrogate");
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (*low - 0xDC00);
          i += 6;
        }
        append_utf8(out, cp);
        break;
      }
      default: out += c; break;  // \\ \= \: \# \! \<space>, and Java drops the backslash of unknown escapes
    }
  }
  return out;
}

void append_escaped(std::string& out, std::string_view s, bool is_key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case ' ':
        // Spaces end a key, and leading spaces of a value are skipped; elsewhere they are literal.
        if (is_key || i == 0) out += '\\';
        out += ' ';
        break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\f': out += "\\f"; break;
      case '\\':
      case '=':
      case ':':
      case '#':
      case '!':
        out += '\\';
        out += static_cast<char>(c);
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);  // bytes >= 0x80 (UTF-8) pass through, as parse passes them through
        }
    }
  }
}


// Decimal integer with an optional sign; no blanks, no other characters.
std::optional<std::int64_t> parse_int(std::string_view s) {
  const bool has_sign = !s.empty() && (s.front() == '+' || s.front() == '-');
  if (s.size() <= (has_sign ? 1U : 0U) || !is_digit(s[has_sign ? 1 : 0])) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);  // from_chars takes '-' but not '+'
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

constexpr std::string_view kPlaceholder = "<n>";

// Matches key against a pattern whose "<n>" stands for one or more decimal digits.
bool matches_pattern(std::string_view key, std::string_view pattern) {
  const auto hole = pattern.find(kPlaceholder);
  if (hole == std::string_view::npos) return key == pattern;
  if (key.substr(0, hole) != pattern.substr(0, hole)) return false;
  key.remove_prefix(hole);
  pattern.remove_prefix(hole + kPlaceholder.size());
  // Try every digit-run length, so a literal that starts with a digit after <n> still matches.
  for (std::size_t digits = 1; digits <= key.size() && is_digit(key[digits - 1]); ++digits) {
    if (matches_pattern(key.substr(digits), pattern)) return true;
  }
  return false;
}

// Replaces each <n> of pattern by the number at the same position in key, so the suggestion for
// handler.2.idm.tls.tokn reads handler.2.idm.tls.token.
std::string instantiate(std::string_view pattern, std::string_view key) {
  std::vector<std::string_view> numbers;
  for (std::size_t i = 0; i < key.size();) {
    if (!is_digit(key[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < key.size() && is_digit(key[j])) ++j;
    numbers.push_back(key.substr(i, j - i));
    i = j;
  }
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.substr(i, kPlaceholder.size()) == kPlaceholder && next < numbers.size()) {
      out += numbers[next++];
      i += kPlaceholder.size();
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the usual typos.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// How many edits still count as "close": 1 for short keys, up to 3 for long ones, so that short keys
// do not suggest unrelated ones.
std::size_t close_enough(std::string_view key) { return std::clamp<std::size_t>(key.size() / 4, 1, 3); }

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

}  // namespace

Result<Properties> Properties::parse(std::string_view text, std::string source_name) {
  Properties props(std::move(source_name));
  // Editors on Windows add a byte-order mark; it would otherwise become part of the first key.
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) text.remove_prefix(kUtf8Bom.size());

  const auto lines = split_lines(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    std::string_view line = trim_left(lines[n]);
    // Only the start of a logical line can be a comment; comment lines are never continued.
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;

    LogicalLine logical;
    const int first_line = static_cast<int>(n) + 1;
    for (;;) {
      logical.pieces.push_back({logical.text.size(), static_cast<int>(n) + 1});
      if (!ends_with_odd_backslashes(line)) {
        logical.text += line;
        break;
      }
      logical.text += line.substr(0, line.size() - 1);
      if (n + 1 == lines.size()) break;  // a continuation at the end of the text is dropped, as in Java
      line = trim_left(lines[++n]);
    }

    // The key ends at the first unescaped '=', ':' or blank; then blanks, at most one '=' or ':', blanks.
    const std::string_view t = logical.text;
    std::size_t key_end = t.size();
    std::size_t value_start = t.size();
    bool has_separator = false;
    bool escaped = false;
    for (std::size_t i = 0; i < t.size(); ++i) {
      const char c = t[i];
      if (!escaped && (c == '=' || c == ':' || is_blank(c))) {
        key_end = i;
        value_start = i + 1;
        has_separator = c != ' ' && c != '\t' && c != '\f';
        break;
      }
      escaped = c == '\\' && !escaped;
    }
    while (value_start < t.size()) {
      const char c = t[value_start];
      if (!is_blank(c)) {
        if (has_separator || (c != '=' && c != ':')) break;
        has_separator = true;
      }
      ++value_start;
    }

    auto key = unescape(logical, 0, key_end, props.source_name_);
    if (!key) return key.error();
    auto value = unescape(logical, value_start, t.size() - value_start, props.source_name_);
    if (!value) return value.error();
    props.put(std::move(key).value(), std::move(value).value(), first_line);
  }
  return props;
}

Result<Properties> Properties::load_file(const std::filesystem::path& path, std::size_t max_bytes) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(ErrorCode::io, name + ": cannot read: " + ec.message());
  if (size > max_bytes) {
    return make_error(ErrorCode::limit_exceeded, name + ": " + std::to_string(size) +
                                                     " bytes is over the limit of " + std::to_string(max_bytes) +
                                                     " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, name + ": cannot open for reading");
  // Read at most one byte past the limit: the file may have grown since file_size().
  std::string text(static_cast<std::size_t>(size) + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return make_error(ErrorCode::io, name + ": read failed");
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_bytes) {
    return make_error(ErrorCode::limit_exceeded,
                      name + ": file grew past the limit of " + std::to_string(max_bytes) + " bytes while reading");
  }
  return parse(text, name);
}

void Properties::put(std::string key, std::string value, int line) {
  const auto it = index_.find(key);
  if (it == index_.end()) {
    index_.emplace(key, entries_.size());
    entries_.push_back({std::move(key), std::move(value), line});
    return;
  }
  Entry& entry = entries_[it->second];
  if (line > 0) {
    warnings_.push_back(source_name_ + ":" + std::to_string(line) + ": duplicate key '" + entry.key +
                        "' (also set at line " + std::to_string(entry.line) + "); the last value wins");
  }
  entry.value = std::move(value);
  entry.line = line;
}

void Properties::set(std::string key, std::string value) { put(std::move(key), std::move(value), 0); }

const Properties::Entry* Properties::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::vector<std::string> Properties::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& entry : entries_) out.push_back(entry.key);
  return out;
}

bool Properties::contains(std::string_view key) const { return find(key) != nullptr; }

std::optional<int> Properties::line_of(std::string_view key) const {
  const Entry* entry = find(key);
  if (!entry) return std::nullopt;
  return entry->line;
}

std::vector<std::string> Properties::keys_with_prefix(std::string_view prefix) const {
  std::vector<std::string> out;
  for (const auto& entry : entries_) {
    if (std::string_view(entry.key).substr(0, prefix.size()) == prefix) out.push_back(entry.key);
  }
  return out;
}

std::optional<std::string> Properties::get_string(std::string_view key) const {
  const Entry* entry = find(key);
  if (!entry) return std::nullopt;
  return entry->value;
}

std::string Properties::get_string(std::string_view key, std::string_view fallback) const {
  const Entry* entry = find(key);
  return entry ? entry->value : std::string(fallback);
}

std::string Properties::location(const Entry& entry) const {
  std::string where = source_name_;
  if (entry.line > 0) where += ":" + std::to_string(entry.line);
  return where;
}

Error Properties::bad_value(const Entry& entry, std::string_view expected, std::string_view got) const {
  std::string where = location(entry);
  if (!where.empty()) where += ": ";
  return make_error(ErrorCode::invalid_input,
                    where + entry.key + ": expected " + std::string(expected) + ", got '" + std::string(got) + "'");
}

Error Properties::missing(std::string_view key) const {
  std::string where = source_name_;
  if (!where.empty()) where += ": ";
  return make_error(ErrorCode::not_found, where + std::string(key) + ": required key is missing");
}

Result<bool> Properties::get_bool(std::string_view key) const {
  const Entry* entry = find(key);
  if (!entry) return missing(key);
  const std::string_view v = trim(entry->value);
  if (iequals(v, "true")) return true;
  if (iequals(v, "false")) return false;
  return bad_value(*entry, "true or false", entry->value);
}

Result<bool> Properties::get_bool(std::string_view key, bool fallback) const {
  if (!contains(key)) return fallback;
  return get_bool(key);
}

Result<std::int64_t> Properties::get_int(std::string_view key, std::int64_t min, std::int64_t max) const {
  const Entry* entry = find(key);
  if (!entry) return missing(key);
  const auto value = parse_int(trim(entry->value));
  if (!value || *value < min || *value > max) {
    return bad_value(*entry, "an integer from " + std::to_string(min) + " to " + std::to_string(max),
                     entry->value);
  }
  return *value;
}

Result<std::int64_t> Properties::get_int(std::string_view key, std::int64_t min, std::int64_t max,
                                         std::int64_t fallback) const {
  if (!contains(key)) return fallback;
  return get_int(key, min, max);
}

Result<std::chrono::seconds> Properties::get_duration_seconds(std::string_view key) const {
  const Entry* entry = find(key);
  if (!entry) return missing(key);
  std::string_view v = trim(entry->value);
  std::int64_t scale = 1;
  if (!v.empty() && !is_digit(v.back())) {
    switch (v.back()) {
      case 's': case 'S': scale = 1; break;
      case 'm': case 'M': scale = 60; break;
      case 'h': case 'H': scale = 3600; break;
      case 'd': case 'D': scale = 86400; break;
      default: scale = 0; break;
    }
    v.remove_suffix(1);
  }
  const auto number = scale != 0 && !v.empty() && is_digit(v.front()) ? parse_int(v) : std::nullopt;
  if (!number || *number > std::numeric_limits<std::int64_t>::max() / scale) {
    return bad_value(*entry, "a duration in seconds, or a number with suffix s, m, h or d", entry->value);
  }
  return std::chrono::seconds(*number * scale);
}

Result<std::chrono::seconds> Properties::get_duration_seconds(std::string_view key,
                                                              std::chrono::seconds fallback) const {
  if (!contains(key)) return fallback;
  return get_duration_seconds(key);
}

Result<std::vector<std::string>> Properties::get_list(std::string_view key) const {
  std::vector<std::string> items;
  const Entry* entry = find(key);
  if (!entry || trim(entry->value).empty()) return items;
  std::string_view rest = entry->value;
  for (;;) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    if (item.empty()) {
      return bad_value(*entry, "a comma-separated list without empty items (item " +
                                   std::to_string(items.size() + 1) + " is empty)",
                       entry->value);
    }
    items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return items;
}

std::vector<std::string> Properties::warnings_for_unknown(const std::vector<std::string>& known) const {
  std::vector<std::string> out;
  for (const auto& entry : entries_) {
    const bool is_known = std::any_of(known.begin(), known.end(),
                                      [&](const std::string& pattern) { return matches_pattern(entry.key, pattern); });
    if (is_known) continue;

    std::string best;
    std::size_t best_distance = close_enough(entry.key) + 1;
    for (const auto& pattern : known) {
      std::string candidate = instantiate(pattern, entry.key);
      const std::size_t d = edit_distance(entry.key, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = std::move(candidate);
      }
    }
    std::string where = location(entry);
    if (!where.empty()) where += ": ";
    std::string message = where + "unknown key '" + entry.key + "'";
    if (!best.empty()) message += " (did you mean '" + best + "'?)";
    out.push_back(std::move(message));
  }
  return out;
}

std::string Properties::to_string() const {
  std::string out;
  for (const auto& entry : entries_) {
    std::string_view key = entry.key;
    // parse() drops a byte-order mark at the very start, so one that begins the first key must be escaped.
    if (out.empty() && key.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
      out += "\\uFEFF";
      key.remove_prefix(kUtf8Bom.size());
    }
    append_escaped(out, key, true);
    out += '=';
    append_escaped(out, entry.value, false);
    out += '\n';
  }
  return out;
}

}  // namespace estlab

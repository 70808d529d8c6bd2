#include "estlab/core/est.hpp"

#include <algorithm>
#include <cstdio>

#include "estlab/core/base64.hpp"
#include "estlab/core/encoding.hpp"
#include "estlab/core/text.hpp"

namespace estlab {
namespace {

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// RFC 9110 5.6.2 tchar.
bool is_tchar(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_control(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string size_over_limit(std::string_view what, std::size_t size, std::size_t limit) {
  return std::string(what) + " of " + std::to_string(size) + " bytes is over the limit of " + std::to_string(limit);
}

// Peer bytes quoted into an error message: printable ASCII kept, the rest as \xNN, long input cut,
// so a hostile target cannot put control characters into logs and reports.
std::string quoted(std::string_view text, std::size_t max_chars = 64) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < max_chars; ++i) {
    auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u < 0x7f) {
      out += text[i];
    } else {
      out += "\\x";
      out += digits[u >> 4];
      out += digits[u & 0x0f];
    }
  }
  if (text.size() > max_chars) out += "...";
  out += "'";
  return out;
}

Error not_found(std::string message) { return make_error(ErrorCode::not_found, std::move(message)); }
Error invalid(std::string message) { return make_error(ErrorCode::invalid_input, std::move(message)); }
Error over_limit(std::string message) { return make_error(ErrorCode::limit_exceeded, std::move(message)); }

}  // namespace

// ---- Operations -------------------------------------------------------------------------------

std::string_view to_string(EstOperation operation) {
  switch (operation) {
    case EstOperation::cacerts: return "cacerts";
    case EstOperation::simpleenroll: return "simpleenroll";
    case EstOperation::simplereenroll: return "simplereenroll";
    case EstOperation::fullcmc: return "fullcmc";
    case EstOperation::csrattrs: return "csrattrs";
    case EstOperation::serverkeygen: return "serverkeygen";
  }
  return "unknown";
}

std::optional<EstOperation> parse_est_operation(std::string_view segment) {
  for (EstOperation operation : all_est_operations) {
    if (segment == to_string(operation)) return operation;
  }
  return std::nullopt;
}

std::string_view http_method(EstOperation operation) {
  return (operation == EstOperation::cacerts || operation == EstOperation::csrattrs) ? "GET" : "POST";
}

std::optional<std::string_view> request_media_type(EstOperation operation) {
  switch (operation) {
    case EstOperation::cacerts:
    case EstOperation::csrattrs:
      return std::nullopt;
    case EstOperation::simpleenroll:
    case EstOperation::simplereenroll:
    case EstOperation::serverkeygen:
      return media_types::pkcs10;
    case EstOperation::fullcmc:
      return media_types::cmc_request;
  }
  return std::nullopt;
}

std::string_view response_media_type(EstOperation operation) {
  switch (operation) {
    case EstOperation::cacerts:
    case EstOperation::simpleenroll:
    case EstOperation::simplereenroll:
      return media_types::certs_only;
    case EstOperation::fullcmc: return media_types::cmc_response;
    case EstOperation::csrattrs: return media_types::csrattrs;
    case EstOperation::serverkeygen: return media_types::multipart_mixed;
  }
  return media_types::text_plain;
}

// ---- Media types ------------------------------------------------------------------------------

Result<MediaType> MediaType::parse(std::string_view text, const EstCodecLimits& limits) {
  if (text.size() > limits.max_media_type_length) {
    return over_limit(size_over_limit("media type", text.size(), limits.max_media_type_length));
  }
  std::size_t pos = 0;
  auto skip_ows = [&] {
    while (pos < text.size() && is_ows(text[pos])) ++pos;
  };
  auto token = [&] {
    std::size_t start = pos;
    while (pos < text.size() && is_tchar(text[pos])) ++pos;
    return text.substr(start, pos - start);
  };
  auto unexpected = [&](std::string_view expected) {
    std::string found = pos < text.size() ? "character " + quoted(text.substr(pos, 1)) : std::string("end of text");
    return invalid("media type " + quoted(text) + ": expected " + std::string(expected) + " at offset " +
                   std::to_string(pos) + ", found " + found);
  };

  MediaType media;
  skip_ows();
  std::string_view type = token();
  if (type.empty()) return unexpected("a type");
  if (pos >= text.size() || text[pos] != '/') return unexpected("'/'");
  ++pos;
  std::string_view subtype = token();
  if (subtype.empty()) return unexpected("a subtype");
  media.type = ascii_lowercase(type);
  media.subtype = ascii_lowercase(subtype);

  while (true) {
    skip_ows();
    if (pos >= text.size()) break;
    if (text[pos] != ';') return unexpected("';'");
    ++pos;
    skip_ows();
    if (pos >= text.size() || text[pos] == ';') continue;  // an empty parameter is allowed
    std::string_view name = token();
    if (name.empty()) return unexpected("a parameter name");
    skip_ows();  // RFC 9110 allows no space around '='; senders add it anyway
    if (pos >= text.size() || text[pos] != '=') return unexpected("'='");
    ++pos;
    skip_ows();
    std::string value;
    if (pos < text.size() && text[pos] == '"') {
      std::size_t open = pos++;
      bool closed = false;
      while (pos < text.size()) {
        char c = text[pos];
        if (c == '"') {
          closed = true;
          ++pos;
          break;
        }
        if (c == '\\') {
          if (pos + 1 >= text.size()) break;
          c = text[++pos];
        }
        if (is_control(c) && c != '\t') return unexpected("a quoted-string character");
        value += c;
        ++pos;
      }
      if (!closed) {
        return invalid("media type " + quoted(text) + ": quoted string at offset " + std::to_string(open) +
                       " is not closed");
      }
    } else {
      // Unquoted: a token per RFC 9110, but boundaries like ----=_Part_1 arrive unquoted, so
      // any visible character but ';' and '"' is taken.
      std::size_t start = pos;
      while (pos < text.size() && text[pos] != ';' && text[pos] != '"' && !is_ows(text[pos]) &&
             !is_control(text[pos])) {
        ++pos;
      }
      if (pos == start) return unexpected("a parameter value");
      value = std::string(text.substr(start, pos - start));
    }
    std::string lower_name = ascii_lowercase(name);
    if (media.param(lower_name)) {
      return invalid("media type " + quoted(text) + ": parameter '" + lower_name + "' appears twice");
    }
    if (media.params.size() >= limits.max_media_type_parameters) {
      return over_limit("media type " + quoted(text) + ": more than " +
                        std::to_string(limits.max_media_type_parameters) + " parameters");
    }
    media.params.emplace_back(std::move(lower_name), std::move(value));
  }
  return media;
}

bool MediaType::same_type(std::string_view type_slash_subtype) const {
  auto slash = type_slash_subtype.find('/');
  if (slash == std::string_view::npos) return false;
  return iequals(type_slash_subtype.substr(0, slash), type) && iequals(type_slash_subtype.substr(slash + 1), subtype);
}

std::optional<std::string> MediaType::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

std::string MediaType::to_string() const {
  std::string out = type + "/" + subtype;
  for (const auto& [name, value] : params) {
    out += "; " + name + "=";
    bool is_token = !value.empty() && std::all_of(value.begin(), value.end(), is_tchar);
    if (is_token) {
      out += value;
      continue;
    }
    out += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out;
}

bool media_type_matches(const MediaType& actual, std::string_view expected) {
  auto wanted = MediaType::parse(expected);
  if (!wanted.ok()) return false;
  if (!iequals(actual.type, wanted->type) || !iequals(actual.subtype, wanted->subtype)) return false;
  for (const auto& [name, value] : wanted->params) {
    auto got = actual.param(name);
    if (!got) return false;
    bool case_insensitive = name == "smime-type" || name == "charset";
    if (case_insensitive ? !iequals(*got, value) : *got != value) return false;
  }
  return true;
}

bool is_acceptable_response_type(EstOperation operation, const MediaType& actual) {
  auto smime_type_is = [&](std::initializer_list<std::string_view> allowed) {
    auto smime = actual.param("smime-type");
    if (!smime) return true;  // RFC 7030 4.1.3 names only application/pkcs7-mime
    return std::any_of(allowed.begin(), allowed.end(), [&](std::string_view a) { return iequals(*smime, a); });
  };
  switch (operation) {
    case EstOperation::cacerts:
    case EstOperation::simpleenroll:
    case EstOperation::simplereenroll:
      return actual.same_type(media_types::pkcs7_mime) && smime_type_is({"certs-only"});
    case EstOperation::fullcmc:
      return actual.same_type(media_types::pkcs7_mime) && smime_type_is({"certs-only", "CMC-response"});
    case EstOperation::csrattrs:
      return actual.same_type(media_types::csrattrs);
    case EstOperation::serverkeygen:
      return multipart_boundary(actual).ok();
  }
  return false;
}

// ---- Paths ------------------------------------------------------------------------------------

bool is_valid_est_label(std::string_view label) {
  if (label.empty() || label.size() > 64) return false;
  bool charset_ok = std::all_of(label.begin(), label.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
  });
  if (!charset_ok || label == "." || label.find("..") != std::string_view::npos) return false;
  // Case-insensitive: a server that routes without regard to case would still be confused.
  return std::none_of(all_est_operations.begin(), all_est_operations.end(),
                      [&](EstOperation op) { return iequals(label, to_string(op)); });
}

Result<EstPath> parse_est_path(std::string_view target, const EstCodecLimits& limits) {
  if (target.size() > limits.max_target_length) {
    return over_limit(size_over_limit("request target", target.size(), limits.max_target_length));
  }
  std::string_view path = target;
  // Absolute form, which RFC 9112 3.2.2 requires servers to accept: drop scheme and authority.
  for (std::string_view scheme : {std::string_view("https://"), std::string_view("http://")}) {
    if (starts_with_ci(path, scheme)) {
      path.remove_prefix(scheme.size());
      // The authority ends at the path, the query or the fragment, whichever comes first.
      auto end = path.find_first_of("/?#");
      path = (end == std::string_view::npos || path[end] != '/') ? std::string_view() : path.substr(end);
      break;
    }
  }
  if (auto query = path.find('?'); query != std::string_view::npos) path = path.substr(0, query);

  if (path.find('%') != std::string_view::npos) {
    return not_found("percent-encoding is not accepted in EST paths: " + quoted(path));
  }
  if (path.substr(0, est_path_prefix.size()) != est_path_prefix) {
    if (path == est_path_prefix.substr(0, est_path_prefix.size() - 1)) {
      return not_found("EST path " + quoted(path) + " names no operation");
    }
    return not_found("not an EST path: " + quoted(path) + " does not begin with " + std::string(est_path_prefix));
  }
  std::string_view rest = path.substr(est_path_prefix.size());
  if (rest.empty()) return not_found("EST path " + quoted(path) + " names no operation");

  std::vector<std::string_view> segments;
  while (true) {
    auto slash = rest.find('/');
    segments.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
    if (segments.size() > 2) break;  // enough to say there are too many
  }
  for (std::string_view segment : segments) {
    if (segment.empty()) return not_found("empty path segment in " + quoted(path));
    if (segment == "." || segment == "..") return not_found("dot segment " + quoted(segment) + " in " + quoted(path));
  }
  if (segments.size() > 2) {
    return not_found("too many path segments in " + quoted(path) + " (expected [<label>/]<operation>)");
  }

  std::string_view op_segment = segments.back();
  auto operation = parse_est_operation(op_segment);
  if (!operation) return not_found("unknown operation " + quoted(op_segment));
  EstPath result;
  result.operation = *operation;
  if (segments.size() == 2) {
    std::string_view label = segments.front();
    if (std::any_of(all_est_operations.begin(), all_est_operations.end(),
                    [&](EstOperation op) { return iequals(label, to_string(op)); })) {
      return not_found("label " + quoted(label) + " is spelled like an operation (RFC 7030 3.2.2)");
    }
    if (!is_valid_est_label(label)) {
      return not_found("invalid label " + quoted(label) + ": 1 to 64 characters of A-Z a-z 0-9 . _ -, no '..'");
    }
    result.label = std::string(label);
  }
  return result;
}

std::string est_path(std::string_view label, EstOperation operation) {
  std::string out(est_path_prefix);
  if (!label.empty()) {
    out += label;
    out += '/';
  }
  out += to_string(operation);
  return out;
}

// ---- Bodies -----------------------------------------------------------------------------------

Result<Bytes> decode_est_body(std::string_view body, std::optional<std::string_view> content_transfer_encoding,
                              TransferEncodingRule rule, const EstCodecLimits& limits) {
  if (body.size() > limits.max_body_length) {
    return over_limit(size_over_limit("body", body.size(), limits.max_body_length));
  }
  std::optional<std::string_view> cte;
  if (content_transfer_encoding) cte = trim_ows(*content_transfer_encoding);

  if (rule == TransferEncodingRule::require_base64 && cte && !iequals(*cte, "base64")) {
    return invalid("Content-Transfer-Encoding " + quoted(*cte) +
                   " is not base64 (RFC 8951 section 3: every EST body is base64)");
  }
  bool whole_der = false;
  if (!body.empty() && static_cast<unsigned char>(body[0]) == 0x30) {
    auto length = der_element_length(as_bytes(body));
    whole_der = length.ok() && *length == body.size();
  }
  if (rule == TransferEncodingRule::accept_binary_der && cte && iequals(*cte, "binary") && whole_der) {
    return to_bytes(body);
  }

  auto decoded = base64_decode(body);
  if (!decoded.ok()) {
    std::string reason = decoded.error().message;
    if (reason.rfind("base64: ", 0) == 0) reason.erase(0, 8);
    std::string hint;
    if (body.substr(0, 11) == "-----BEGIN ") {
      hint = " (the body is PEM; EST bodies are bare base64 of DER, RFC 8951 section 3)";
    } else if (whole_der) {
      hint = " (the body looks like binary DER; RFC 8951 section 3 requires base64)";
    }
    return invalid("body is not base64: " + reason + hint);
  }
  if (decoded->empty()) return invalid("body is empty");
  return decoded;
}

std::string encode_est_body(ByteView der) {
  // base64.hpp wraps at 64 with LF or at 76 with CRLF; the RFC 7030 examples use 64 with line
  // ends, and HTTP text is CRLF, so wrap here.
  constexpr std::size_t width = 64;
  std::string flat = base64_encode(der, LineBreaks::none);
  std::string out;
  out.reserve(flat.size() + (flat.size() / width + 1) * 2);
  for (std::size_t pos = 0; pos < flat.size(); pos += width) {
    out.append(flat, pos, width);
    out += "\r\n";
  }
  return out;
}

// ---- multipart/mixed --------------------------------------------------------------------------

std::optional<std::string> MimePart::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

MimePart make_est_part(std::string_view content_type, ByteView der) {
  MimePart part;
  part.headers.emplace_back("Content-Type", std::string(content_type));
  part.headers.emplace_back("Content-Transfer-Encoding", "base64");
  part.body = encode_est_body(der);
  // The line break before the next delimiter belongs to the delimiter (RFC 2046 5.1.1).
  if (part.body.size() >= 2) part.body.resize(part.body.size() - 2);
  return part;
}

std::string make_multipart(const std::vector<MimePart>& parts, std::string_view boundary) {
  std::string out;
  for (const MimePart& part : parts) {
    out += "--";
    out += boundary;
    out += "\r\n";
    for (const auto& [name, value] : part.headers) out += name + ": " + value + "\r\n";
    out += "\r\n";
    out += part.body;
    out += "\r\n";
  }
  out += "--";
  out += boundary;
  out += "--\r\n";
  return out;
}

std::string make_boundary(std::span<const std::uint8_t, 16> random) {
  return "estlab-" + to_hex(ByteView(random.data(), random.size()));
}

namespace {

// RFC 2046 5.1.1 bcharsnospace plus space, 1 to 70 characters, not ending in a space.
Result<void> check_boundary(std::string_view boundary) {
  if (boundary.empty()) return invalid("multipart boundary is empty");
  if (boundary.size() > 70) {
    return invalid("multipart boundary is " + std::to_string(boundary.size()) +
                   " characters; RFC 2046 allows at most 70");
  }
  for (char c : boundary) {
    bool ok = is_alpha(c) || is_digit(c) || std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
    if (!ok) return invalid("multipart boundary " + quoted(boundary) + " has the character " + quoted({&c, 1}) +
                            ", which RFC 2046 does not allow");
  }
  if (boundary.back() == ' ') return invalid("multipart boundary " + quoted(boundary) + " ends in a space");
  return {};
}

enum class LineKind { content, delimiter, close };

// A delimiter line is "--boundary" plus transport padding; a close line is "--boundary--" plus
// anything. "--boundaryX" is ordinary content.
LineKind classify_line(std::string_view line, std::string_view dash_boundary) {
  if (line.substr(0, dash_boundary.size()) != dash_boundary) return LineKind::content;
  std::string_view after = line.substr(dash_boundary.size());
  if (after.substr(0, 2) == "--") return LineKind::close;
  return std::all_of(after.begin(), after.end(), is_ows) ? LineKind::delimiter : LineKind::content;
}

Result<MimePart> parse_part(std::string_view raw, std::size_t number, const EstCodecLimits& limits) {
  const std::string where = "multipart part " + std::to_string(number);
  MimePart part;
  std::size_t pos = 0;
  while (true) {
    if (pos >= raw.size()) {
      // Headers whose last line break ends the part: no body (RFC 2046 body-part grammar).
      if (pos > 0 && raw[pos - 1] == '\n') return part;
      return invalid(where + " has no blank line between its headers and body");
    }
    std::size_t eol = raw.find('\n', pos);
    if (eol == std::string_view::npos) return invalid(where + " has no blank line between its headers and body");
    std::string_view line = raw.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (line.empty()) break;
    if (line.size() > limits.max_header_line_length) {
      return over_limit(where + ": a header line of " + std::to_string(line.size()) +
                        " characters is over the limit of " + std::to_string(limits.max_header_line_length));
    }
    if (is_ows(line.front())) {  // obs-fold: continues the previous field
      if (part.headers.empty()) return invalid(where + ": continuation line before any header");
      part.headers.back().second += " ";
      part.headers.back().second += trim_ows(line);
      continue;
    }
    auto colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
      return invalid(where + ": malformed header line " + quoted(line));
    }
    if (part.headers.size() >= limits.max_part_headers) {
      return over_limit(where + ": more than " + std::to_string(limits.max_part_headers) + " header fields");
    }
    part.headers.emplace_back(std::string(name), std::string(trim_ows(line.substr(colon + 1))));
  }
  part.body = std::string(raw.substr(pos));
  return part;
}

}  // namespace

Result<std::string> multipart_boundary(const MediaType& content_type) {
  if (!content_type.same_type(media_types::multipart_mixed)) {
    return invalid("content type " + quoted(content_type.type + "/" + content_type.subtype) +
                   " is not multipart/mixed");
  }
  auto boundary = content_type.param("boundary");
  if (!boundary) return invalid("multipart/mixed without a boundary parameter");
  if (auto checked = check_boundary(*boundary); !checked.ok()) return checked.error();
  return *boundary;
}

Result<std::vector<MimePart>> parse_multipart(std::string_view body, std::string_view boundary,
                                              const EstCodecLimits& limits) {
  if (auto checked = check_boundary(boundary); !checked.ok()) return checked.error();
  if (body.size() > limits.max_body_length) {
    return over_limit(size_over_limit("multipart body", body.size(), limits.max_body_length));
  }
  const std::string dash_boundary = "--" + std::string(boundary);

  std::vector<MimePart> parts;
  std::optional<std::size_t> part_start;  // set once the first delimiter has been seen
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t eol = body.find('\n', pos);
    std::size_t line_end = eol == std::string_view::npos ? body.size() : eol;
    std::string_view line = body.substr(pos, line_end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    LineKind kind = classify_line(line, dash_boundary);

    if (kind != LineKind::content) {
      if (part_start) {
        // The part ends before the line break that precedes this delimiter.
        std::size_t part_end = pos;
        if (part_end > *part_start && body[part_end - 1] == '\n') --part_end;
        if (part_end > *part_start && body[part_end - 1] == '\r') --part_end;
        if (parts.size() >= limits.max_parts) {
          return over_limit("multipart body has more than " + std::to_string(limits.max_parts) + " parts");
        }
        auto part = parse_part(body.substr(*part_start, part_end - *part_start), parts.size() + 1, limits);
        if (!part.ok()) return part.error();
        parts.push_back(std::move(part).value());
      }
      if (kind == LineKind::close) {
        if (parts.empty()) return invalid("multipart body has no parts (close delimiter " + dash_boundary + "-- first)");
        return parts;  // anything after is the epilogue
      }
      part_start = eol == std::string_view::npos ? body.size() : eol + 1;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  if (!part_start) return invalid("multipart body has no delimiter line " + quoted(dash_boundary));
  return invalid("multipart body ends without the close delimiter " + quoted(dash_boundary + "--") + " (truncated?)");
}

// ---- Basic authentication ---------------------------------------------------------------------

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header_value,
                                                          const EstCodecLimits& limits) {
  if (header_value.size() > limits.max_authorization_length) return std::nullopt;
  std::string_view value = trim_ows(header_value);
  if (!starts_with_ci(value, "basic") || value.size() < 6 || value[5] != ' ') return std::nullopt;
  std::string_view token68 = value.substr(5);
  while (!token68.empty() && token68.front() == ' ') token68.remove_prefix(1);
  if (token68.empty()) return std::nullopt;
  // base64_decode skips whitespace; a token68 has none.
  if (std::any_of(token68.begin(), token68.end(), [](char c) { return is_ows(c) || c == '\r' || c == '\n'; })) {
    return std::nullopt;
  }
  auto decoded = base64_decode(token68);
  if (!decoded.ok()) return std::nullopt;
  std::string_view pair = as_chars(*decoded);
  if (std::any_of(pair.begin(), pair.end(), is_control)) return std::nullopt;
  auto colon = pair.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return BasicCredentials{std::string(pair.substr(0, colon)), std::string(pair.substr(colon + 1))};
}

std::string printable_header_value(std::string_view name, std::string_view value, bool show_secrets) {
  if (show_secrets) return std::string(value);
  if (iequals(name, "Cookie") || iequals(name, "Set-Cookie")) return "(redacted)";
  if (!iequals(name, "Authorization") && !iequals(name, "Proxy-Authorization")) return std::string(value);
  if (auto basic = parse_basic_authorization(value)) return "Basic (redacted: user '" + basic->user + "', password hidden)";
  const std::string_view trimmed = trim_ows(value);
  const std::string_view scheme = trimmed.substr(0, trimmed.find(' '));
  return std::string(scheme) + " (redacted)";
}

std::string make_basic_authorization(std::string_view user, std::string_view password) {
  std::string pair = std::string(user) + ":" + std::string(password);
  return "Basic " + base64_encode(as_bytes(pair));
}

std::string make_basic_challenge(std::string_view realm) {
  std::string out = "Basic realm=\"";
  for (char c : realm) {
    if (is_control(c)) continue;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// ---- Retry-After and HTTP dates ---------------------------------------------------------------

namespace {

constexpr std::array<std::string_view, 7> short_day_names = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> long_day_names = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                            "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A cursor over an HTTP-date; each step consumes exactly what the RFC 9110 grammar says.
struct DateCursor {
  std::string_view text;
  std::size_t pos = 0;

  bool literal(std::string_view s) {
    if (text.substr(pos, s.size()) != s) return false;
    pos += s.size();
    return true;
  }
  std::optional<int> digits(std::size_t count) {
    if (text.size() - pos < count) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      char c = text[pos + i];
      if (!is_digit(c)) return std::nullopt;
      value = value * 10 + (c - '0');
    }
    pos += count;
    return value;
  }
  template <std::size_t N>
  std::optional<int> one_of(const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) return static_cast<int>(i);
    }
    return std::nullopt;
  }
  bool at_end() const { return pos == text.size(); }
};

struct DateFields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

bool time_of_day(DateCursor& c, DateFields& f) {
  auto h = c.digits(2);
  if (!h || !c.literal(":")) return false;
  auto m = c.digits(2);
  if (!m || !c.literal(":")) return false;
  auto s = c.digits(2);
  if (!s) return false;
  f.hour = *h;
  f.minute = *m;
  f.second = *s;
  return true;
}

bool month(DateCursor& c, DateFields& f) {
  auto m = c.one_of(month_names);
  if (!m) return false;
  f.month = *m + 1;
  return true;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
bool parse_imf_fixdate(DateCursor c, DateFields& f) {
  if (!c.one_of(short_day_names) || !c.literal(", ")) return false;
  auto d = c.digits(2);
  if (!d || !c.literal(" ") || !month(c, f) || !c.literal(" ")) return false;
  auto y = c.digits(4);
  if (!y || !c.literal(" ") || !time_of_day(c, f) || !c.literal(" GMT") || !c.at_end()) return false;
  f.day = *d;
  f.year = *y;
  return true;
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"; the year is two digits, resolved by the caller.
bool parse_rfc850_date(DateCursor c, DateFields& f) {
  if (!c.one_of(long_day_names) || !c.literal(", ")) return false;
  auto d = c.digits(2);
  if (!d || !c.literal("-") || !month(c, f) || !c.literal("-")) return false;
  auto y = c.digits(2);
  if (!y || !c.literal(" ") || !time_of_day(c, f) || !c.literal(" GMT") || !c.at_end()) return false;
  f.day = *d;
  f.year = *y;
  return true;
}

// asctime-date: "Sun Nov  6 08:49:37 1994"
bool parse_asctime_date(DateCursor c, DateFields& f) {
  if (!c.one_of(short_day_names) || !c.literal(" ") || !month(c, f) || !c.literal(" ")) return false;
  std::optional<int> d;
  if (c.literal(" ")) {
    d = c.digits(1);
  } else {
    d = c.digits(2);
  }
  if (!d || !c.literal(" ") || !time_of_day(c, f) || !c.literal(" ")) return false;
  auto y = c.digits(4);
  if (!y || !c.at_end()) return false;
  f.day = *d;
  f.year = *y;
  return true;
}

}  // namespace

namespace {

// Whole seconds since the epoch; wider than TimePoint, which holds nanoseconds (years 1678-2262).
Result<std::chrono::sys_seconds> parse_http_date_seconds(std::string_view text, TimePoint now) {
  using namespace std::chrono;
  DateFields f;
  bool two_digit_year = false;
  if (!parse_imf_fixdate({text}, f) && !parse_asctime_date({text}, f)) {
    if (!parse_rfc850_date({text}, f)) {
      return invalid("HTTP-date " + quoted(text) + " is in none of the RFC 9110 5.6.7 formats");
    }
    two_digit_year = true;
  }
  if (two_digit_year) {
    // RFC 9110 5.6.7: a year more than 50 years ahead is the most recent past year with those digits.
    int now_year = static_cast<int>(year_month_day(floor<days>(now)).year());
    int candidate = now_year - now_year % 100 + f.year;
    if (candidate > now_year + 50) candidate -= 100;
    f.year = candidate;
  }
  year_month_day date{year{f.year}, std::chrono::month{static_cast<unsigned>(f.month)},
                      day{static_cast<unsigned>(f.day)}};
  // Second 60 is a leap second in the grammar; it counts as the next minute's first.
  if (!date.ok() || f.hour > 23 || f.minute > 59 || f.second > 60) {
    return invalid("HTTP-date " + quoted(text) + " is not a valid date and time");
  }
  return sys_seconds(sys_days(date)) + hours(f.hour) + minutes(f.minute) + seconds(f.second);
}

}  // namespace

Result<TimePoint> parse_http_date(std::string_view text, TimePoint now) {
  using namespace std::chrono;
  auto parsed = parse_http_date_seconds(text, now);
  if (!parsed.ok()) return parsed.error();
  if (*parsed < ceil<seconds>(TimePoint::min()) || *parsed > floor<seconds>(TimePoint::max())) {
    return invalid("HTTP-date " + quoted(text) + " is outside the range this clock represents");
  }
  return TimePoint(*parsed);
}

Result<Seconds> parse_retry_after(std::string_view value, TimePoint now) {
  std::string_view text = trim_ows(value);
  if (text.empty()) return invalid("Retry-After is empty");
  if (std::all_of(text.begin(), text.end(), is_digit)) {
    std::int64_t seconds = 0;
    for (char c : text) {
      seconds = seconds * 10 + (c - '0');
      if (seconds >= max_retry_after.count()) return max_retry_after;  // clamp, never overflow
    }
    return Seconds(seconds);
  }
  auto date = parse_http_date_seconds(text, now);
  if (!date.ok()) {
    return invalid("Retry-After " + quoted(text) + " is neither delta-seconds nor an HTTP-date");
  }
  // The date is whole seconds, so rounding (date - now) up is date minus now rounded down. Done in
  // seconds, a date far outside TimePoint's range cannot overflow.
  Seconds wait = *date - std::chrono::floor<Seconds>(now);
  return std::clamp(wait, Seconds(0), max_retry_after);
}

std::string format_http_date(TimePoint time) {
  using namespace std::chrono;
  auto whole_seconds = floor<seconds>(time);
  auto day_point = floor<days>(whole_seconds);
  year_month_day date{day_point};
  hh_mm_ss clock_time{whole_seconds - day_point};
  weekday day_of_week{day_point};
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                std::string(short_day_names[day_of_week.c_encoding()]).c_str(), static_cast<unsigned>(date.day()),
                std::string(month_names[static_cast<unsigned>(date.month()) - 1]).c_str(),
                static_cast<int>(date.year()), static_cast<int>(clock_time.hours().count()),
                static_cast<int>(clock_time.minutes().count()), static_cast<int>(clock_time.seconds().count()));
  return buffer;
}

}  // namespace estlab

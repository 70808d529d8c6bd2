#include "estlab/reports/text.hpp"

#include "estlab/core/text.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <system_error>
#include <unistd.h>

namespace estlab::reports {

using conformance::RunResult;
using conformance::ScenarioResult;
using conformance::StepResult;
using conformance::Verdict;

namespace {

constexpr char32_t kInvalid = 0xFFFFFFFF;

// Decodes one code point at text[pos]; sets length to the bytes consumed (1 for an invalid byte).
char32_t decode(std::string_view text, std::size_t pos, std::size_t& length) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const unsigned char first = byte(0);
  length = 1;
  if (first < 0x80) return first;
  std::size_t need = 0;
  char32_t cp = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range (RFC 3629 table)
  if (first >= 0xC2 && first <= 0xDF) {
    need = 1, cp = first & 0x1F;
  } else if (first >= 0xE0 && first <= 0xEF) {
    need = 2, cp = first & 0x0F;
    if (first == 0xE0) low = 0xA0;
    if (first == 0xED) high = 0x9F;  // no surrogates
  } else if (first >= 0xF0 && first <= 0xF4) {
    need = 3, cp = first & 0x07;
    if (first == 0xF0) low = 0x90;
    if (first == 0xF4) high = 0x8F;
  } else {
    return kInvalid;
  }
  if (pos + need >= text.size()) return kInvalid;  // cut short
  for (std::size_t i = 1; i <= need; ++i) {
    const unsigned char b = byte(i);
    const unsigned char lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xBF;
    if (b < lo || b > hi) return kInvalid;
    cp = (cp << 6) | (b & 0x3F);
  }
  length = need + 1;
  return cp;
}


constexpr char32_t kReplacement = 0xFFFD;

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t length = 1;
    const char32_t cp = decode(text, pos, length);
    if (cp == kInvalid) {
      append_utf8(out, kReplacement);
    } else {
      out.append(text.substr(pos, length));
    }
    pos += length;
  }
  return out;
}

namespace {

// Raw binary (DER, a CoAP payload): a NUL, or more than 1 in 10 bytes C0 control characters other
// than whitespace. Bytes that are merely not UTF-8 (Latin-1 text) do not count, and a body whose
// producer already escaped its control bytes ("\x02") is text and is shown as such.
bool looks_binary(std::string_view body) {
  std::size_t controls = 0;
  for (const char c : body) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0) return true;
    if (byte < 0x20 && c != '\t' && c != '\n' && c != '\r') ++controls;
  }
  return controls * 10 > body.size();
}

std::string hex_dump(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "(" + std::to_string(bytes.size()) + " bytes, not text: hex dump)\n";
  char offset[32];
  for (std::size_t row = 0; row < bytes.size(); row += 16) {
    std::snprintf(offset, sizeof offset, "%04zx  ", row);
    out += offset;
    std::string ascii;
    for (std::size_t i = row; i < row + 16; ++i) {
      if (i == row + 8) out += ' ';
      if (i < bytes.size()) {
        const auto b = static_cast<unsigned char>(bytes[i]);
        out += kHex[b >> 4];
        out += kHex[b & 0x0F];
        out += ' ';
        ascii += (b >= 0x20 && b < 0x7F) ? static_cast<char>(b) : '.';
      } else {
        out += "   ";
      }
    }
    out += " |" + ascii + "|\n";
  }
  return out;
}

}  // namespace

std::string readable_message(std::string_view message) {
  std::size_t body = 0;
  if (const auto crlf = message.find("\r\n\r\n"); crlf != std::string_view::npos) {
    body = crlf + 4;
  } else if (const auto lf = message.find("\n\n"); lf != std::string_view::npos) {
    body = lf + 2;
  }
  if (!looks_binary(message.substr(body))) return std::string(message);
  return std::string(message.substr(0, body)) + hex_dump(message.substr(body));
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char buffer[16];
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t length = 1;
    const char32_t cp = decode(text, pos, length);
    if (cp == kInvalid) {
      append_utf8(out, kReplacement);
    } else if (cp == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') {
      // CRLF (HTTP) reads as a line break; the \n follows.
    } else if ((cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7F && cp <= 0x9F)) {
      std::snprintf(buffer, sizeof buffer, "\\x%02X", static_cast<unsigned>(cp));
      out += buffer;
    } else if (cp == 0xFFFE || cp == 0xFFFF) {
      std::snprintf(buffer, sizeof buffer, "\\u{%04X}", static_cast<unsigned>(cp));
      out += buffer;
    } else {
      out.append(text.substr(pos, length));
    }
    pos += length;
  }
  return out;
}

std::string truncate_lines(std::string_view text, std::size_t max_lines, std::size_t max_line_chars) {
  std::string out;
  std::size_t lines = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    const bool last = end == std::string_view::npos;
    if (last) end = text.size();
    if (max_lines != 0 && lines == max_lines) {
      std::size_t rest = static_cast<std::size_t>(std::count(text.begin() + static_cast<std::ptrdiff_t>(pos), text.end(), '\n'));
      if (text.back() != '\n') ++rest;
      out += "... " + std::to_string(rest) + (rest == 1 ? " more line\n" : " more lines\n");
      return out;
    }
    std::string_view line = text.substr(pos, end - pos);
    if (max_line_chars != 0 && line.size() > max_line_chars) {
      std::size_t cut = max_line_chars;
      while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;  // not mid-sequence
      out.append(line.substr(0, cut));
      out += "... (+" + std::to_string(line.size() - cut) + " bytes)";
    } else {
      out.append(line);
    }
    if (!last) out += '\n';
    ++lines;
    pos = end + 1;
  }
  return out;
}

std::string indent_lines(std::string_view text, std::string_view prefix) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    out.append(prefix);
    out.append(text.substr(pos, end - pos));
    out += '\n';
    pos = end + 1;
  }
  return out;
}

bool natural_less(std::string_view a, std::string_view b) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      // Compare the numbers without converting them (no overflow): skip leading zeros, then the
      // longer one is larger, then digit by digit.
      std::size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      if (ie - is != je - js) return ie - is < je - js;
      const int order = a.substr(is, ie - is).compare(b.substr(js, je - js));
      if (order != 0) return order < 0;
      if (ie - i != je - j) return ie - i < je - j;  // "01" after "1": only a tie-break
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

const std::array<Verdict, 8>& all_verdicts() {
  static constexpr std::array<Verdict, 8> kAll = {Verdict::pass, Verdict::info,  Verdict::warn, Verdict::skip,
                                                  Verdict::xfail, Verdict::xpass, Verdict::fail, Verdict::error};
  return kAll;
}

bool counts_as_failure(Verdict verdict, bool strict) {
  return conformance::is_failure(verdict) || (strict && (verdict == Verdict::warn || verdict == Verdict::xpass));
}

bool run_passed(const RunResult& run) {
  return run.all_passed() && std::none_of(run.scenarios.begin(), run.scenarios.end(), [&](const ScenarioResult& s) {
           return counts_as_failure(s.verdict, run.strict);
         });
}

std::string seed_text(const RunResult& run) {
  const std::string seed = std::to_string(run.seed);
  return "seed " + seed + " (replay with --seed " + seed + ")";
}

std::string check_text(const conformance::CheckResult& check) {
  std::string verdict = to_string(check.verdict);
  verdict.resize(std::max<std::size_t>(verdict.size(), 5), ' ');
  std::string out = verdict + " " + printable(check.what);
  std::vector<std::string> row;
  if (!check.requirement.empty()) row.push_back(printable(check.requirement));
  if (!check.level.empty()) row.push_back(printable(check.level));
  if (!row.empty()) out += " (" + join(row, ", ") + ")";
  return out;
}

std::string repetition_suffix(const ScenarioResult& scenario) {
  return scenario.repetition > 0 ? " #" + std::to_string(scenario.repetition + 1) : "";
}

namespace {

// "step 3 (line 12): the target has no 'revoke' control" -> "the target has no 'revoke' control":
// the runner prefixes a scenario's message with the step that ended it.
std::string_view without_step_prefix(std::string_view reason) {
  if (reason.rfind("step ", 0) != 0) return reason;
  const auto colon = reason.find("): ");
  if (colon == std::string_view::npos) return reason;
  return reason.substr(colon + 3);
}

void count_once(std::vector<std::pair<std::string, std::size_t>>& counts, std::vector<std::string>& seen,
                const std::string& item) {
  if (std::find(seen.begin(), seen.end(), item) != seen.end()) return;
  seen.push_back(item);
  auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& entry) { return entry.first == item; });
  if (it == counts.end()) {
    counts.emplace_back(item, 1);
  } else {
    ++it->second;
  }
}

std::string counted(const std::vector<std::pair<std::string, std::size_t>>& items, std::string_view separator) {
  std::vector<std::string> parts;
  for (const auto& [item, n] : items) parts.push_back(printable(item) + " (" + std::to_string(n) + ")");
  return join(parts, separator);
}

}  // namespace

SkipSummary skip_summary(const RunResult& run) {
  SkipSummary summary;
  constexpr std::string_view kLacks = "the target lacks ";
  constexpr std::string_view kHasNo = "the target has no '";
  constexpr std::string_view kControl = "' control";
  for (const auto& scenario : run.scenarios) {
    std::vector<std::string> reasons;
    if (scenario.verdict == Verdict::skip) {
      reasons.push_back(scenario.message);
    } else if (scenario.skipped_steps() > 0) {
      ++summary.partially;
      for (const auto& step : scenario.steps) {
        if (step.verdict == Verdict::skip) reasons.push_back(step.message);
      }
    } else {
      continue;
    }
    ++summary.runs;
    std::vector<std::string> seen_lacks, seen_reasons;
    for (const auto& message : reasons) {
      const std::string_view reason = without_step_prefix(message);
      if (reason.rfind(kLacks, 0) == 0) {
        std::string_view rest = reason.substr(kLacks.size());
        while (!rest.empty()) {
          const auto comma = rest.find(", ");
          count_once(summary.lacks, seen_lacks, std::string(rest.substr(0, comma)));
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
        }
      } else if (reason.rfind(kHasNo, 0) == 0 && reason.size() > kHasNo.size() + kControl.size() &&
                 reason.substr(reason.size() - kControl.size()) == kControl) {
        const auto name = reason.substr(kHasNo.size(), reason.size() - kHasNo.size() - kControl.size());
        count_once(summary.lacks, seen_lacks, "control '" + std::string(name) + "'");
      } else {
        count_once(summary.reasons, seen_reasons, reason.empty() ? std::string("(no reason given)") : std::string(reason));
      }
    }
  }
  std::stable_sort(summary.lacks.begin(), summary.lacks.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return natural_less(a.first, b.first);
  });
  return summary;
}

std::string skip_summary_text(const RunResult& run) {
  const auto summary = skip_summary(run);
  std::string out = "SKIPPED " + std::to_string(summary.runs) + (summary.runs == 1 ? " scenario run" : " scenario runs");
  if (summary.partially > 0) out += " (" + std::to_string(summary.partially) + " partially)";
  std::vector<std::string> parts;
  if (!summary.lacks.empty()) parts.push_back("the target lacks: " + counted(summary.lacks, ", "));
  if (!summary.reasons.empty()) {
    parts.push_back((summary.lacks.empty() ? "" : "other reasons: ") + counted(summary.reasons, "; "));
  }
  if (!parts.empty()) out += " \xE2\x80\x94 " + join(parts, "; ");
  return out;
}

std::vector<std::string> run_profiles(const RunResult& run) {
  std::vector<std::string> profiles = run.profiles;
  for (const auto& scenario : run.scenarios) {
    if (std::find(profiles.begin(), profiles.end(), scenario.profile) == profiles.end()) {
      profiles.push_back(scenario.profile);
    }
  }
  return profiles;
}

std::string spec_name(const ScenarioResult& scenario) {
  return scenario.spec.empty() ? std::string("unspecified") : scenario.spec;
}

std::string seconds_text(double elapsed_ms) {
  if (!std::isfinite(elapsed_ms) || elapsed_ms < 0) return "0.000";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", elapsed_ms / 1000.0);
  return buffer;
}

std::string milliseconds_text(double elapsed_ms) {
  if (!std::isfinite(elapsed_ms) || elapsed_ms < 0) elapsed_ms = 0;
  char buffer[64];
  if (elapsed_ms < 10) {
    std::snprintf(buffer, sizeof buffer, "%.1f ms", elapsed_ms);
  } else if (elapsed_ms < 10000) {
    std::snprintf(buffer, sizeof buffer, "%.0f ms", elapsed_ms);
  } else {
    return seconds_text(elapsed_ms) + " s";
  }
  return buffer;
}

std::string step_evidence(const StepResult& step, const EvidenceLimits& limits) {
  const auto part = [&](std::string_view text) {
    return indent_lines(truncate_lines(printable(text), limits.max_lines, limits.max_line_chars), "    ");
  };
  std::string out = "step " + std::to_string(step.index + 1);
  if (step.line > 0) out += ", line " + std::to_string(step.line);
  if (!step.kind.empty()) out += ", " + printable(step.kind);
  out += ": " + printable(step.summary) + "\n";
  out += "  " + std::string(to_string(step.verdict));
  if (!step.message.empty()) out += ": " + printable(step.message);
  out += "\n";
  if (!step.checks.empty()) {
    out += "  checks:\n";
    for (const auto& check : step.checks) out += "    " + check_text(check) + "\n";
  }
  if (step.exchange) {
    const auto& exchange = *step.exchange;
    out += "  request";
    if (!exchange.transport.empty()) out += " (" + printable(exchange.transport) + ")";
    out += ":\n" + part(readable_message(exchange.request));
    if (exchange.response.empty()) {
      out += "  response: none\n";
    } else {
      out += "  response:\n" + part(readable_message(exchange.response));
    }
    if (limits.decoded && !exchange.decoded.empty()) out += "  decoded:\n" + part(exchange.decoded);
  }
  return out;
}

std::vector<const StepResult*> failing_steps(const ScenarioResult& scenario) {
  std::vector<const StepResult*> steps;
  for (const auto& step : scenario.steps) {
    if (step.verdict == Verdict::fail || step.verdict == Verdict::error) steps.push_back(&step);
  }
  return steps;
}

bool has_evidence(Verdict verdict) {
  return verdict == Verdict::warn || verdict == Verdict::xfail || verdict == Verdict::xpass ||
         verdict == Verdict::fail || verdict == Verdict::error;
}

std::vector<const StepResult*> evidence_steps(const ScenarioResult& scenario) {
  std::vector<const StepResult*> steps;
  for (const auto& step : scenario.steps) {
    if (has_evidence(step.verdict)) steps.push_back(&step);
  }
  return steps;
}

Result<void> write_text_file(const std::filesystem::path& path, std::string_view content) {
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return make_error(ErrorCode::io, path.parent_path().string() + ": " + ec.message());
  }
  std::filesystem::path temporary = path;
  temporary += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::io, temporary.string() + ": cannot open for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) {
      std::filesystem::remove(temporary, ec);
      return make_error(ErrorCode::io, temporary.string() + ": write failed");
    }
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    return make_error(ErrorCode::io, path.string() + ": " + ec.message());
  }
  return {};
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out.append(separator);
    out += item;
  }
  return out;
}

}  // namespace estlab::reports

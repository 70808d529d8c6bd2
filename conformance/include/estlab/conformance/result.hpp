// Verdicts as values: what one scenario run produced, with the evidence a person needs to see
// why (the request sent, the response received, what was expected and what was found). The
// reports (console, JUnit, HTML, JSON) read only these types.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace estlab::conformance {

// Stable strings ("pass", "fail", "skip", "error") for baseline files.
enum class Verdict { pass, fail, skip, error };
const char* to_string(Verdict verdict);

// One exchange on the wire, as text (DER parts decoded where possible).
struct Exchange {
  std::string request;        // request line, headers, body
  std::string response;       // status line, headers, body; "" when none came
  std::string decoded;        // CSRs, certificates, CMC decoded to text; may be ""
  std::string transport;      // "https TLSv1.3 as device-factory", "coaps"
  double elapsed_ms = 0;
};

struct StepResult {
  std::size_t index = 0;      // 0-based within the scenario
  int line = 0;               // line of the step in the scenario file
  std::string kind;           // "connect", "send", "raw", "control", "wait", ...
  std::string summary;        // one line: "POST simpleenroll as device-revoked"
  Verdict verdict = Verdict::pass;
  std::string message;        // why it failed / was skipped; "" on pass
  std::vector<std::string> checks;  // each expectation as checked: "status 403 == 403"
  std::optional<Exchange> exchange;
  double elapsed_ms = 0;
};

struct ScenarioResult {
  std::string id;               // "enroll-revoked-refused"
  std::string title;
  std::string file;             // scenario file path as given
  int line = 0;
  std::vector<std::string> requirements;  // "PG-ENR-3", "7030-3.3.2-b"
  std::string profile;          // the profile it ran under
  std::string transport;        // "https" or "coaps"
  std::string spec;             // "RFC 7030", "RFC 9148", "protocol-gateway": one JUnit testsuite each
  std::string section;          // "4.2" (RFC section) or the PG rule family ("PG-ENR")
  Verdict verdict = Verdict::pass;
  std::string message;          // first failure, or the skip reason
  std::vector<StepResult> steps;
  double elapsed_ms = 0;
  int repetition = 0;           // with --repeat N: 0..N-1
};

struct RunResult {
  std::string estlab_version;
  std::string target;           // "embedded lab" or the target file
  std::string started_at;       // ISO 8601 UTC
  double elapsed_ms = 0;
  std::vector<std::string> profiles;
  std::vector<ScenarioResult> scenarios;
  // Readings the run applied where the spec leaves a choice (PG-ENR-4 polarity, TLS 1.3 linking...).
  std::vector<std::pair<std::string, std::string>> readings;

  std::size_t count(Verdict verdict) const;
  bool all_passed() const;  // no fail and no error (skips are fine)
};

}  // namespace estlab::conformance

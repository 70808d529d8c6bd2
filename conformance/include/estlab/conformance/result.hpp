// Verdicts as values: what one scenario run produced, with the evidence a person needs to see
// why (the request sent, the response received, what was expected and what was found). The
// reports (console, JUnit, HTML, JSON) read only these types.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace estlab::conformance {

// Stable strings for baseline files and reports: "pass", "info", "warn", "skip", "xfail",
// "xpass", "fail", "error".
//   pass   the check held
//   info   an observation the catalog only asks to record (a MAY, an OPTIONAL, a "record" row)
//   warn   a SHOULD-level (or derived) row did not hold; --strict turns it into fail
//   skip   not judged, with the reason (the target lacks a role, a feature, an earlier capture)
//   xfail  failed as a --baseline file says it is known to
//   xpass  passed although a --baseline file says it is known to fail (the baseline is stale)
//   fail   a MUST-level row did not hold
//   error  the suite could not judge (a broken hook, an internal error), nothing about the target
enum class Verdict { pass, info, warn, skip, xfail, xpass, fail, error };
const char* to_string(Verdict verdict);
std::optional<Verdict> parse_verdict(std::string_view text);
// How bad a verdict is, for rolling checks up into steps and steps into scenarios:
// error > fail > xpass > warn > xfail > info > pass. skip ranks below pass: a scenario is
// skipped only when nothing in it was judged.
int severity(Verdict verdict);
Verdict worse(Verdict a, Verdict b);
// fail, error (and, under --strict, warn and xpass) make a run exit 1.
bool is_failure(Verdict verdict);

// One expectation as judged, e.g. "status 403, expected 401 or 403".
struct CheckResult {
  std::string what;
  Verdict verdict = Verdict::pass;
  std::string requirement;  // the catalog row this check judges; "" = the scenario's own rows
  std::string level;        // the row's level as applied: "MUST", "SHOULD", "MAY", "info"
};

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
  Verdict verdict = Verdict::pass;  // the worst of its checks (or skip/error for the step itself)
  std::string message;        // why it failed / warned / was skipped; "" on pass
  std::vector<CheckResult> checks;
  std::optional<Exchange> exchange;
  double elapsed_ms = 0;
  // What a send step saw, for comparing transports: the HTTP status or CoAP code as a number
  // (2.04 = 204), -1 refused at the handshake, 0 nothing (not sent, or no answer).
  int observed_status = 0;
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
  std::string message;          // first failure (or warning), or the skip reason
  std::vector<StepResult> steps;
  double elapsed_ms = 0;
  int repetition = 0;           // with --repeat N: 0..N-1
  std::string unique;           // the {{unique}} value this run used (from the run's seed)
  std::string baseline_reason;  // set when a --baseline entry applied (xfail / xpass)
  std::string transport_group;  // the scenario id shared by its https and coaps runs (transports: [https, coaps])
  std::size_t skipped_steps() const;  // steps not judged while others were (partial runs)
};

// How the catalog is covered by the scenarios the run loaded (estlab coverage, the HTML matrix).
// covered: a scenario names the row; untestable: the catalog says why no black-box suite can judge
// it; client_side: binds clients only (out of scope until client testing exists).
enum class CoverageState { covered, not_covered, untestable, client_side };
const char* to_string(CoverageState state);  // "covered", "not covered", "untestable", "client-side"

struct CoverageRow {
  std::string id;
  std::string spec;
  std::string level;          // the source keyword ("MUST", "derived", ...)
  std::string verdict_level;  // fail | warn | info
  std::string side;
  std::string text;
  CoverageState state = CoverageState::not_covered;
  std::string reason;                  // untestable: why
  std::vector<std::string> scenarios;  // ids of the scenarios that name it
};

struct FieldBugCoverage {
  std::string id;    // FB-03
  std::string name;
  std::string symptom;
  std::vector<std::string> requirements;
  std::vector<std::string> scenarios;  // ids of the scenarios that name it in field_bugs
};

struct CatalogCoverage {
  std::vector<CoverageRow> rows;
  std::vector<FieldBugCoverage> field_bugs;
  bool empty() const { return rows.empty(); }
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
  std::uint64_t seed = 0;       // every randomness of the run comes from it; --seed replays it
  bool strict = false;          // --strict: warn counted as fail
  std::string baseline;         // the --baseline file applied, "" = none
  // The catalog's words for every requirement the run names: ID -> "MUST: one-line text".
  std::map<std::string, std::string> requirement_texts;
  // The whole catalog against every scenario loaded (not only those run), so a report tells "not
  // run" (a scenario exists, this run did not judge it) from "not covered" and "not applicable".
  CatalogCoverage coverage;

  std::size_t count(Verdict verdict) const;
  std::size_t partially_skipped() const;  // scenarios that ran but skipped some steps
  bool all_passed() const;  // no fail and no error (skips, warnings, info and xfail are fine)
};

}  // namespace estlab::conformance

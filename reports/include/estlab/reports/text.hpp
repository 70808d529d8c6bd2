// Text as every report needs it: evidence comes from the target's bytes (a vendor gateway may send
// anything), so it is made printable before any writer sees it, and ordered the way people read
// requirement IDs.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "estlab/conformance/result.hpp"
#include "estlab/core/result.hpp"

namespace estlab::reports {

// text with every byte that is not part of well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates) replaced by U+FFFD; everything else unchanged.
std::string valid_utf8(std::string_view text);

// Valid UTF-8 with nothing a terminal, XML 1.0 or HTML would act on: invalid bytes become U+FFFD,
// CRLF becomes LF, and control characters other than tab and newline (C0, DEL, C1) and the
// non-characters U+FFFE/U+FFFF are shown as "\x01", "\u{FFFE}".
std::string printable(std::string_view text);

// A request or response as a person can read it: when the body (after the first blank line; the
// whole text if there is none) is raw binary - DER, a CoAP payload: a NUL, or more than 1 in 10
// bytes control characters - it is shown as a hex dump ("0000  30 82 02 21 ...  |0..!...|") under
// a line saying how many bytes it has. Text, including text whose control bytes were already
// escaped, is returned unchanged.
std::string readable_message(std::string_view message);

// At most max_lines lines (0 = no limit), each cut at max_line_chars bytes (0 = no limit, never
// inside a UTF-8 sequence), with "... N more lines" / "... (+N bytes)" saying what was left out.
std::string truncate_lines(std::string_view text, std::size_t max_lines, std::size_t max_line_chars);

// Each line of text with prefix in front; a trailing newline adds no empty line.
std::string indent_lines(std::string_view text, std::string_view prefix);

// "7030-4.2.1-a" < "7030-4.10-a": runs of digits compare as numbers, the rest byte-wise.
bool natural_less(std::string_view a, std::string_view b);

// Every verdict once, in the order the reports list them (result.hpp's order): pass, info,
// warn, skip, xfail, xpass, fail, error. Several verdicts shown as one (a matrix cell, a step)
// are rolled up with conformance::worse().
const std::array<conformance::Verdict, 8>& all_verdicts();

// Whether a verdict makes the run fail: fail and error; under --strict (run.strict) warn and
// xpass too (result.hpp: is_failure).
bool counts_as_failure(conformance::Verdict verdict, bool strict);

// The run's overall result as every report states it: false when any scenario counts as a
// failure (counts_as_failure with run.strict).
bool run_passed(const conformance::RunResult& run);

// "seed 1234 (replay with --seed 1234)".
std::string seed_text(const conformance::RunResult& run);

// One check as a line: verdict, what, and the row and level it judged:
// "fail  status 200, expected 403 (PG-ENR-3, MUST)". Printable.
std::string check_text(const conformance::CheckResult& check);

// " #N" (1-based) for the second and later repetitions of --repeat, "" otherwise; with the id
// (and, in JUnit, the profile) it names one scenario run.
std::string repetition_suffix(const conformance::ScenarioResult& scenario);

// Why scenario runs were skipped, for the line every summary leads with. A reason "the target
// lacks A, B" (the runner's wording for a missing feature, control, role or endpoint) counts each
// of A and B; "the target has no 'X' control" counts as "control 'X'"; any other reason counts as
// itself. A fully skipped run counts its message, a partially skipped one (some steps skipped,
// others judged) the messages of its skipped steps; each reason once per run.
struct SkipSummary {
  std::size_t runs = 0;       // skipped + partially skipped scenario runs
  std::size_t partially = 0;  // of those, the partial ones
  std::vector<std::pair<std::string, std::size_t>> lacks;    // what the target lacks -> runs; most first
  std::vector<std::pair<std::string, std::size_t>> reasons;  // other reasons -> runs; first seen first
};
SkipSummary skip_summary(const conformance::RunResult& run);

// "SKIPPED 7 scenario runs (3 partially) — the target lacks: feature 'x' (4), control 'revoke'
// (3); other reasons: not run: --fail-fast after an earlier failure (2)". Printable.
std::string skip_summary_text(const conformance::RunResult& run);

// The run's profiles in the run's order, then any a scenario ran under that the run did not list.
std::vector<std::string> run_profiles(const conformance::RunResult& run);

// The scenario's spec ("RFC 7030"), or "unspecified" when it has none.
std::string spec_name(const conformance::ScenarioResult& scenario);

// Milliseconds as seconds with three decimals ("1.250"); negative or not finite gives "0.000".
std::string seconds_text(double elapsed_ms);

// A duration for people: "1.5 ms" under 10 ms, "12 ms" under 10 s, then "12.345 s".
std::string milliseconds_text(double elapsed_ms);

// Limits for evidence printed from one step.
struct EvidenceLimits {
  std::size_t max_lines = 0;       // per request, response and decoded part; 0 = no limit
  std::size_t max_line_chars = 0;  // 0 = no limit
  bool decoded = true;             // include the decoded CSRs/certificates/CMC text
};

// A step that did not simply pass (fail, error, warn, xfail, xpass) as readable text: what it did,
// its verdict and why, its checks (check_text: each with its verdict, row and level), then the
// request and the response (and the decoded parts), each indented under a heading. Printable.
std::string step_evidence(const conformance::StepResult& step, const EvidenceLimits& limits = {});

// The steps whose verdict is fail or error, in order.
std::vector<const conformance::StepResult*> failing_steps(const conformance::ScenarioResult& scenario);

// Whether a verdict comes with its evidence (request, response, checks) in the reports: warn,
// xfail, xpass, fail and error. Not pass, info or skip.
bool has_evidence(conformance::Verdict verdict);

// The steps whose verdict has_evidence, in order: a failing scenario's warnings too.
std::vector<const conformance::StepResult*> evidence_steps(const conformance::ScenarioResult& scenario);

// Writes content to path through a temporary file in the same directory and a rename, so a reader
// (a CI server, a browser) never sees half a report. Creates missing parent directories.
Result<void> write_text_file(const std::filesystem::path& path, std::string_view content);

// Items joined with `separator` between them.
std::string join(const std::vector<std::string>& items, std::string_view separator);

}  // namespace estlab::reports

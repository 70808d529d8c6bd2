// Baselines: a target's known deviations, so CI can run against a server that is not (yet)
// conformant and still catch anything new (tlsfuzzer's expected failures, with a reason each).
//
//   # estlab baseline: known deviations of vendor gateway 2.3
//   seed: 1234                           # optional, informative (the run that recorded it)
//   entries:
//     - scenario: cacerts-anonymous      # scenario id (required)
//       profile: rfc7030                 # optional: only under this profile
//       step: 2                          # optional: 1-based step; absent = the scenario as a whole
//       verdict: fail                    # the verdict it is known to have: fail (default), error, warn
//       reason: "vendor ticket 123: no smime-type on cacerts"   # required
//       message: "smime-type"            # optional: a regex (ECMAScript, searched) the message must match
//
// Applying a baseline turns a known deviation into xfail, a known deviation that now passes into
// xpass (the entry is stale: delete it), and leaves a deviation that fails differently as it is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "estlab/conformance/result.hpp"

namespace estlab::conformance {

struct BaselineEntry {
  std::string scenario;
  std::string profile;                // "" = any profile
  std::optional<std::size_t> step;    // 1-based; nullopt = the scenario as a whole
  Verdict verdict = Verdict::fail;    // fail, error or warn
  std::string reason;
  std::string message;                // regex; "" = any message
  int line = 0;                       // where the entry starts in the file
};

struct Baseline {
  std::vector<BaselineEntry> entries;
  std::string file;                   // as given to load_baseline; "" when built in memory
  std::optional<std::uint64_t> seed;
};

// Reads and checks a baseline file. Throws ConfigError "file:line: what" (unreadable file, YAML
// syntax, unknown key, missing scenario or reason, a verdict other than fail/error/warn, a step
// below 1, a bad regex, a second entry for the same scenario, profile and step).
Baseline load_baseline(const std::filesystem::path& file);

// Marks the run's known deviations (every repetition of a scenario):
// - scenario entry: a scenario whose verdict equals the entry's (and whose message matches)
//   becomes xfail; one that now passes (pass or info) becomes xpass; anything else stays.
// - step entry: that step's checks with the entry's verdict become xfail and the step xfail (or
//   worse, if other checks are worse); a step that now passes becomes xpass; the scenario's
//   verdict is then recomputed as the worst of its steps.
// Skipped scenarios and steps are left alone. baseline_reason is set wherever an entry applied;
// run.baseline is set to baseline.file. Step entries are applied before scenario entries.
void apply_baseline(const Baseline& baseline, RunResult& run);

// Entries that name no scenario (under their profile, with that step) in the run: a baseline
// for another selection, or a renamed scenario. Worth a warning, not an error.
std::vector<BaselineEntry> unmatched_entries(const Baseline& baseline, const RunResult& run);

// A baseline file (text) with one scenario entry per scenario and profile whose verdict is fail,
// error or warn, reason "recorded DATE from TARGET: MESSAGE" (DATE from run.started_at). Call it
// on a result before apply_baseline: xfail and xpass scenarios are not recorded again.
std::string write_baseline(const RunResult& run);

}  // namespace estlab::conformance

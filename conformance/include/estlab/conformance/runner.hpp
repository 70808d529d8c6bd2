// Runs scenarios against targets: selection (-k, --id, --profile, --transport), skips with a
// reason when a target lacks what a scenario needs, parallel workers (-j), repeats, fail-fast and
// per-step deadlines. A scenario run is a value (ScenarioResult); nothing here prints.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "estlab/conformance/result.hpp"
#include "estlab/conformance/scenario.hpp"
#include "estlab/conformance/target.hpp"

namespace estlab::conformance {

struct Selection {
  std::string keyword;                  // -k: substring of id, title or file (case-insensitive); "a or b", "not x"
  std::vector<std::string> requirements;  // --id: scenarios naming any of these
  std::vector<std::string> profiles;    // --profile
  std::vector<std::string> transports;  // --transport
  bool matches(const Scenario& scenario) const;
};

struct RunOptions {
  std::size_t jobs = 1;
  bool fail_fast = false;
  int repeat = 1;
  std::chrono::milliseconds step_timeout{15'000};
};

// One unit of work: a scenario under one profile's target.
struct PlannedRun {
  const Scenario* scenario = nullptr;
  const Target* target = nullptr;
  std::string profile;
  std::string skip_reason;  // non-empty: reported as skipped without running
  int repetition = 0;
};

// Pairs each selected scenario with the target of each of its profiles (targets by profile).
std::vector<PlannedRun> plan(const std::vector<Scenario>& scenarios, const std::vector<const Target*>& targets,
                             const Selection& selection, const RunOptions& options);

// Runs one scenario against one target.
ScenarioResult run_scenario(const Scenario& scenario, const Target& target, int repetition,
                            const RunOptions& options);

using ProgressCallback = std::function<void(const ScenarioResult& result, std::size_t done, std::size_t total)>;

// Runs the plan with options.jobs workers; results come back in plan order. With fail_fast, the
// runs not started after the first failure are reported as skipped ("fail-fast").
std::vector<ScenarioResult> run_plan(const std::vector<PlannedRun>& runs, const RunOptions& options,
                                     const ProgressCallback& progress = {});

}  // namespace estlab::conformance

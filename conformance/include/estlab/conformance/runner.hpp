// Runs scenarios against targets: selection (-k, --id, --profile, --transport), skips with a
// reason when a target lacks what a scenario needs, parallel workers (-j), repeats, fail-fast and
// per-step deadlines. A scenario run is a value (ScenarioResult); nothing here prints.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "estlab/conformance/catalog.hpp"
#include "estlab/conformance/judge.hpp"
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
  std::uint64_t seed = 0;  // {{unique}} of every run derives from it (and the scenario, profile, repetition)
  bool strict = false;     // a SHOULD-level check that does not hold is a fail, not a warn
  bool show_secrets = false;  // evidence shows Authorization values (passwords) instead of redacting them
  // needs.network scenarios: the impairment seed for all of them (mixed with each scenario's id),
  // instead of each scenario's own (its `seed`, else one derived from its id alone).
  std::optional<std::uint64_t> network_seed;
  // The catalog level of a requirement ID (MUST -> must, SHOULD/derived -> should, MAY/record -> info).
  std::function<Level(const std::string& requirement)> level_of;
};

// One unit of work: a scenario under one profile's target.
struct PlannedRun {
  const Scenario* scenario = nullptr;
  const Target* target = nullptr;
  std::string profile;
  std::string skip_reason;  // non-empty: reported as skipped without running
  int repetition = 0;
  bool exclusive = false;   // changes a shared gateway (controls on a vendor target): runs alone
  std::vector<std::string> roles_lacking;  // roles of connect steps the target lacks: those steps will not be judged
};

// Pairs each selected scenario with the target of each of its profiles (targets by profile).
std::vector<PlannedRun> plan(const std::vector<Scenario>& scenarios, const std::vector<const Target*>& targets,
                             const Selection& selection, const RunOptions& options);

// RunOptions::level_of from the requirement catalog: fail rows are MUST, warn rows SHOULD, info rows info.
std::function<Level(const std::string& requirement)> levels_from(std::shared_ptr<const Catalog> catalog);

// Before any scenario: TCP connect, a TLS handshake with the target's trust anchors and server
// name, and GET /cacerts answered 200. The error names the step that failed.
Result<void> preflight(const Target& target, std::chrono::milliseconds timeout);

// The same for the EST-coaps endpoint (coaps_port): a DTLS handshake (as device-factory where the
// target gives it) and GET /crts answered 2.05.
Result<void> preflight_coaps(const Target& target, std::chrono::milliseconds timeout);

// Waits (bounded by the target's ready_timeout) until the target answers GET /cacerts again,
// e.g. after a restart control. Returns how long it took, or why it never answered.
Result<std::chrono::milliseconds> wait_until_ready(const Target& target, std::chrono::milliseconds step_timeout);

// The {{unique}} of one run: hex digits derived from the run's seed, the scenario, the profile
// and the repetition, so --seed replays the same subjects.
std::string unique_for(std::uint64_t seed, const std::string& scenario_id, const std::string& profile, int repetition);

// The impairment a needs.network scenario runs under, with the seed this run uses.
network::Impairment network_impairment_for(const Scenario& scenario, const RunOptions& options);

// Runs one scenario against one target.
ScenarioResult run_scenario(const Scenario& scenario, const Target& target, int repetition,
                            const RunOptions& options);

using ProgressCallback = std::function<void(const ScenarioResult& result, std::size_t done, std::size_t total)>;

// Runs the plan with options.jobs workers; results come back in plan order. With fail_fast, the
// runs not started after the first failure are reported as skipped ("fail-fast"). Exclusive runs
// wait until nothing else runs, and nothing starts beside them.
std::vector<ScenarioResult> run_plan(const std::vector<PlannedRun>& runs, const RunOptions& options,
                                     const ProgressCallback& progress = {});

// Marks every coaps run of a scenario over both transports whose answers mean something else than
// its https run's at the same step (see transports: in conformance/README.md).
void compare_transports(std::vector<ScenarioResult>& results);

}  // namespace estlab::conformance

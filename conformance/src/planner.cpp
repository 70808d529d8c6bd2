// Planning and running a suite: selection (-k, --id, --profile, --transport), pairing scenarios
// with targets and naming every unmet need, the seed-derived {{unique}}, the catalog's levels,
// the pre-flight, and the worker pool that keeps control scenarios on shared gateways alone.
#include <algorithm>
#include <numeric>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include "estlab/conformance/runner.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/tls.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/text.hpp"

namespace estlab::conformance {

namespace {

// "-k" expressions: words joined by "or"/"and", each optionally prefixed by "not".
bool keyword_matches(const std::string& expression, const Scenario& s) {
  if (expression.empty()) return true;
  const std::string haystack = s.id + " " + s.title + " " + s.file.string();
  std::istringstream words(expression);
  std::vector<std::string> tokens;
  for (std::string w; words >> w;) tokens.push_back(w);
  bool result = false;
  bool have = false;
  std::string joiner = "or";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == "or" || tokens[i] == "and") {
      joiner = tokens[i];
      continue;
    }
    bool negate = false;
    if (tokens[i] == "not" && i + 1 < tokens.size()) {
      negate = true;
      ++i;
    }
    bool term = icontains(haystack, tokens[i]) != negate;
    if (!have) result = term;
    else result = joiner == "and" ? (result && term) : (result || term);
    have = true;
  }
  return result;
}

}  // namespace

bool Selection::matches(const Scenario& s) const {
  if (!keyword_matches(keyword, s)) return false;
  if (!requirements.empty()) {
    bool any = false;
    for (const auto& want : requirements)
      for (const auto& r : s.requirements) any |= (r == want || r.rfind(want, 0) == 0);
    if (!any) return false;
  }
  if (!transports.empty() && std::find(transports.begin(), transports.end(), s.transport) == transports.end()) return false;
  return true;
}

std::vector<PlannedRun> plan(const std::vector<Scenario>& scenarios, const std::vector<const Target*>& targets,
                             const Selection& selection, const RunOptions& options) {
  std::vector<PlannedRun> runs;
  for (const auto& scenario : scenarios) {
    if (!selection.matches(scenario)) continue;
    for (const auto& profile : scenario.profiles) {
      if (!selection.profiles.empty() &&
          std::find(selection.profiles.begin(), selection.profiles.end(), profile) == selection.profiles.end())
        continue;
      auto offers_all = [&](const Target* t) {
        return std::all_of(scenario.needs_features.begin(), scenario.needs_features.end(), [&](const std::string& f) { return t->features.count(f) != 0; }) &&
               std::none_of(scenario.needs_absent_features.begin(), scenario.needs_absent_features.end(),
                            [&](const std::string& f) { return t->features.count(f) != 0; }) &&
               std::all_of(scenario.needs_controls.begin(), scenario.needs_controls.end(), [&](const std::string& c) { return t->controls.count(c) != 0; });
      };
      // The first target of the profile that offers every feature the scenario needs, else the
      // first of the profile (which then skips with the reason).
      const Target* target = nullptr;
      for (const auto* t : targets) {
        if (t->profile != profile) continue;
        if (offers_all(t)) {
          target = t;
          break;
        }
        if (target == nullptr) target = t;
      }
      if (target == nullptr) continue;  // the target does not implement this profile
      std::string config_skip;
      if (!scenario.needs_config.empty()) {
        std::string values;
        for (const auto& [key, value] : scenario.needs_config) values += (values.empty() ? "" : ", ") + key + "=" + value;
        if (target->configured) {
          try {
            target = target->configured(scenario.needs_config);
          } catch (const ConfigError& e) {
            throw ConfigError(scenario.file.string() + ":" + std::to_string(scenario.line) + ": needs.config (" + values + "): " + e.what());
          }
        } else {
          config_skip = "the gateway must run with " + values + " (needs.config), and the suite cannot reconfigure this target";
        }
      }
      // Every unmet need is named, so one fix to the target file is not followed by another skip.
      std::vector<std::string> missing;
      if (scenario.transport == "coaps" && target->coaps_port == 0) missing.push_back("an EST-coaps endpoint (coaps_port)");
      for (const auto& feature : scenario.needs_features)
        if (!target->features.count(feature)) missing.push_back("feature '" + feature + "'");
      for (const auto& control : scenario.needs_controls)
        if (!target->controls.count(control)) missing.push_back("control '" + control + "'");
      for (const auto& role : scenario.needs_roles)
        if (!target->identities.count(role)) missing.push_back("an identity for role '" + role + "'");
      for (const auto& credential : scenario.needs_credentials)
        if (!target->credentials.count(credential)) missing.push_back("credentials." + credential);
      std::string skip = config_skip;
      for (const auto& m : missing) skip += (skip.empty() ? "the target lacks " : ", ") + m;
      for (const auto& feature : scenario.needs_absent_features)
        if (target->features.count(feature)) skip += (skip.empty() ? "" : "; ") + std::string("applies only where '") + feature + "' is not offered";
      // A suite list the local OpenSSL cannot offer (EXPORT, DES): nothing about the target could
      // be learnt, so the scenario is skipped with that reason (and --list says so).
      for (const auto& step : scenario.steps)
        if (step.kind == Step::Kind::connect && (!step.ciphers.empty() || !step.ciphersuites.empty())) {
          const auto min = step.tls == "any" ? TlsVersion::tls1_2 : parse_tls_version(step.tls).value_or(TlsVersion::tls1_2);
          const auto max = step.tls == "any" ? TlsVersion::tls1_3 : min;
          if (auto problem = local_suite_problem(step.ciphers, step.ciphersuites, min, max); !problem.empty()) {
            skip += (skip.empty() ? "not judged: " : "; ") + problem;
            break;
          }
        }
      bool has_control = false, moves_everyone = false;
      for (const auto& step : scenario.steps) {
        has_control |= step.kind == Step::Kind::control;
        moves_everyone |= step.kind == Step::Kind::control && target->exclusive_controls.count(step.control) != 0;
      }
      const bool exclusive = (has_control && !target->controls_isolated) || moves_everyone;
      std::vector<std::string> roles_lacking;
      for (const auto& role : scenario.step_roles)
        if (!target->identities.count(role)) roles_lacking.push_back(role);
      for (int rep = 0; rep < std::max(1, options.repeat); ++rep) runs.push_back({&scenario, target, profile, skip, rep, exclusive, roles_lacking});
    }
  }
  return runs;
}

std::function<Level(const std::string& requirement)> levels_from(std::shared_ptr<const Catalog> catalog) {
  return [catalog](const std::string& id) {
    const auto* row = catalog->find(id);
    if (row == nullptr) return Level::must;
    switch (row->verdict_level) {
      case FailLevel::fail: return Level::must;
      case FailLevel::warn: return Level::should;
      case FailLevel::info: return Level::info;
    }
    return Level::must;
  };
}

namespace {
// splitmix64 over the seed and an FNV-1a hash of what names the run.
std::uint64_t mix(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  std::uint64_t z = seed + h + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

network::Impairment network_impairment_for(const Scenario& scenario, const RunOptions& options) {
  network::Impairment impairment = scenario.needs_network.value_or(network::Impairment{});
  // Seeds stay below 2^53 so every report format (JSON numbers included) carries them exactly.
  if (options.network_seed) impairment.seed = mix(*options.network_seed, scenario.id) & ((1ULL << 53) - 1);
  else if (!scenario.network_seed_pinned) impairment.seed = mix(0, scenario.id) & ((1ULL << 53) - 1);
  return impairment;
}

std::string unique_for(std::uint64_t seed, const std::string& scenario_id, const std::string& profile, int repetition) {
  const std::uint64_t z = mix(seed, scenario_id + "|" + profile + "|" + std::to_string(repetition));
  char text[17];
  std::snprintf(text, sizeof(text), "%012llx", static_cast<unsigned long long>(z & 0xffffffffffffULL));
  return text;
}

namespace {

// One pre-flight attempt, anonymously or as an identity.
Result<void> preflight_as(const Target& target, std::chrono::milliseconds timeout, const std::optional<TlsIdentity>& identity) {
  HttpsClientOptions o;
  o.host = target.host;
  o.port = target.port;
  o.server_name = target.server_name;
  o.trust_anchors = target.trust_anchors;
  o.identity = identity;
  o.connect_timeout = o.handshake_timeout = o.io_timeout = timeout;
  const std::string where = target.host + ":" + std::to_string(target.port);
  auto connection = HttpsConnection::connect(o);
  if (!connection.ok())
    return make_error(connection.error().code, "pre-flight: connecting to " + where + " (TCP, then a TLS handshake checked against the trust anchors for the name '" +
                                                    (target.server_name.empty() ? target.host : target.server_name) + "'): " + connection.error().message);
  HttpRequest request;
  request.target = est_path(target.default_label, EstOperation::cacerts);
  auto response = connection->send(request);
  connection->close();
  if (!response.ok()) return make_error(response.error().code, "pre-flight: GET " + request.target + " on " + where + ": no answer: " + response.error().message);
  if (response->status != 200)
    return make_error(ErrorCode::invalid_input, "pre-flight: GET " + request.target + " on " + where + " answered " + std::to_string(response->status) +
                                                    " " + response->reason + ", not 200");
  return {};
}

}  // namespace

Result<void> preflight(const Target& target, std::chrono::milliseconds timeout) {
  auto anonymous = preflight_as(target, timeout, std::nullopt);
  if (anonymous.ok()) return anonymous;
  // A gateway that demands a client certificate for everything (a SHOULD NOT for /cacerts, judged
  // by cacerts-anonymous) is still reachable: try once as the target's device identity.
  const bool unreachable = anonymous.error().message.find("TLS handshake") == std::string::npos &&
                           anonymous.error().message.find("answered") == std::string::npos;
  if (unreachable || target.identities.empty()) return anonymous;
  const auto it = target.identities.count("device-factory") ? target.identities.find("device-factory") : target.identities.begin();
  auto as_identity = preflight_as(target, timeout, it->second);
  if (as_identity.ok()) return as_identity;
  return make_error(anonymous.error().code, anonymous.error().message + "; as " + it->first + " too: " + as_identity.error().message);
}

Result<void> preflight_coaps(const Target& target, std::chrono::milliseconds timeout) {
  const std::string where = target.host + ":" + std::to_string(target.coaps_port);
  // RFC 9148 3: servers may demand a client certificate; the device identity is the normal case.
  std::optional<TlsIdentity> identity;
  if (auto it = target.identities.find("device-factory"); it != target.identities.end()) identity = it->second;
  const CoapsClientOptions o = coaps_client_options(target, identity, timeout);
  auto connection = CoapsConnection::connect(o);
  if (!connection.ok())
    return make_error(connection.error().code, "pre-flight: DTLS handshake with " + where + (identity ? " as device-factory" : " anonymously") +
                                                    " (checked against the trust anchors for the name '" + o.server_name + "'): " + connection.error().message);
  CoapRequest request;
  request.path = coaps_est_path(target.default_label, EstOperation::cacerts).value_or("/.well-known/est/crts");
  auto response = connection->send(request);
  connection->close();
  if (!response.ok()) return make_error(response.error().code, "pre-flight: GET coaps " + request.path + " on " + where + ": no answer: " + response.error().message);
  if (response->code.code_class() != 2 || response->code.detail() != 5)
    return make_error(ErrorCode::invalid_input, "pre-flight: GET coaps " + request.path + " on " + where + " answered " + response->code.to_string() + ", not 2.05");
  return {};
}

Result<std::chrono::milliseconds> wait_until_ready(const Target& target, std::chrono::milliseconds step_timeout) {
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + target.ready_timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ok = preflight(target, std::min(step_timeout, std::chrono::milliseconds(5000)));
    if (ok.ok()) return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    last = ok.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return make_error(ErrorCode::timeout, "the target did not answer within " + std::to_string(target.ready_timeout.count()) + " ms: " + last);
}

namespace {

// What an answer means, across the two transports as RFC 9148 4.5 and 5 map them.
std::string outcome_of(int status, bool coaps) {
  if (status == -1) return "refused";
  if (status == 0) return "";  // nothing seen: nothing to compare
  if (coaps) {
    if (status >= 200 && status < 300) return "served";
    if (status == 404) return "not available";
    if (status == 503) return "later";
    if (status >= 400 && status < 500) return "refused";
    return "server error";
  }
  if (status == 202 || status == 503) return "later";
  if (status == 204 || status == 404) return "not available";
  if (status >= 200 && status < 300) return "served";
  if (status >= 400 && status < 500) return "refused";
  return "server error";
}

}  // namespace

// The runs of one scenario over https and coaps must mean the same at every step (RFC 9148 5: the
// proxy translates, it does not decide differently). A difference is a failure of the coaps run
// under 9148-5-e, naming the step and both answers.
void compare_transports(std::vector<ScenarioResult>& results) {
  for (auto& coaps_run : results) {
    if (coaps_run.transport != "coaps" || coaps_run.transport_group.empty() || coaps_run.verdict == Verdict::skip) continue;
    for (const auto& https_run : results) {
      if (https_run.transport != "https" || https_run.transport_group != coaps_run.transport_group ||
          https_run.profile != coaps_run.profile || https_run.repetition != coaps_run.repetition || https_run.verdict == Verdict::skip)
        continue;
      const std::size_t steps = std::min(coaps_run.steps.size(), https_run.steps.size());
      for (std::size_t i = 0; i < steps; ++i) {
        auto& step = coaps_run.steps[i];
        const auto over_https = outcome_of(https_run.steps[i].observed_status, false);
        const auto over_coaps = outcome_of(step.observed_status, true);
        if (over_https.empty() || over_coaps.empty()) continue;
        const bool same = over_https == over_coaps;
        step.checks.push_back({"the same request over https was " + over_https + " (" + std::to_string(https_run.steps[i].observed_status) +
                                   "), over coaps " + over_coaps + " (" + std::to_string(step.observed_status) + ")" +
                                   (same ? "" : ": the transports differ where RFC 9148 says the proxy only translates"),
                               same ? Verdict::pass : Verdict::fail, "9148-5-e", "MUST"});
        if (!same) {
          step.verdict = worse(step.verdict, Verdict::fail);
          if (step.message.empty()) step.message = step.checks.back().what;
          if (!is_failure(coaps_run.verdict)) coaps_run.message = "step " + std::to_string(i + 1) + ": " + step.checks.back().what;
          coaps_run.verdict = worse(coaps_run.verdict, Verdict::fail);
        }
      }
    }
  }
}

std::vector<ScenarioResult> run_plan(const std::vector<PlannedRun>& runs, const RunOptions& options, const ProgressCallback& progress) {
  std::vector<ScenarioResult> results(runs.size());
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::atomic<bool> stop{false};
  std::mutex progress_mutex;
  std::shared_mutex exclusive_mutex;  // exclusive runs hold it alone; the others share it
  auto skipped = [](const PlannedRun& run, const std::string& reason) {
    ScenarioResult r;
    r.id = run.scenario->id;
    r.title = run.scenario->title;
    r.file = run.scenario->file.string();
    r.line = run.scenario->line;
    r.requirements = run.scenario->requirements;
    r.profile = run.profile;
    r.transport = run.scenario->transport;
    r.transport_group = run.scenario->transport_group;
    r.spec = run.scenario->spec;
    r.section = run.scenario->section;
    r.repetition = run.repetition;
    r.verdict = Verdict::skip;
    r.message = reason;
    return r;
  };
  // With several workers, runs that must be alone go first: interleaved, each would wait for the
  // shared runs in flight to finish (a stalling target makes that a deadline each) and then hold
  // everyone else up. One worker keeps the plan's order (what --fail-fast and -j 1 promise).
  std::vector<std::size_t> order(runs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Then runs over an impaired network: they spend seconds waiting on retransmission timers, so
  // started early they overlap the rest instead of trailing after it.
  if (options.jobs > 1) {
    auto alone = std::stable_partition(order.begin(), order.end(), [&](std::size_t i) { return runs[i].exclusive && runs[i].skip_reason.empty(); });
    std::stable_partition(alone, order.end(), [&](std::size_t i) { return runs[i].scenario->needs_network && runs[i].skip_reason.empty(); });
  }
  auto worker = [&] {
    for (std::size_t n = next++; n < runs.size(); n = next++) {
      const std::size_t i = order[n];
      const auto& run = runs[i];
      if (!run.skip_reason.empty()) results[i] = skipped(run, run.skip_reason);
      else if (stop) results[i] = skipped(run, "not run: --fail-fast after an earlier failure");
      else if (run.exclusive) {
        std::unique_lock lock(exclusive_mutex);
        results[i] = run_scenario(*run.scenario, *run.target, run.repetition, options);
        // A scenario that moved the target's clock leaves it as it found it, whatever its verdict.
        const bool moved_time = std::any_of(run.scenario->steps.begin(), run.scenario->steps.end(),
                                            [](const Step& step) { return step.kind == Step::Kind::control && step.control == "advance-time"; });
        if (moved_time && run.target->controls.count("reset-time") && run.target->control_hook) {
          auto reset = run.target->control_hook("reset-time", {});
          if (!reset.ok()) {
            results[i].verdict = worse(results[i].verdict, Verdict::error);
            results[i].message = "could not bring the clock back (reset-time): " + reset.error().message;
          }
        }
        // Likewise the target's other state a control changed (the IDM's reachability, its operator).
        std::set<std::string> undo;
        for (const auto& step : run.scenario->steps)
          if (auto it = run.target->undo_controls.find(step.control); step.kind == Step::Kind::control && it != run.target->undo_controls.end())
            undo.insert(it->second);
        for (const auto& name : undo) {
          auto undone = run.target->control_hook ? run.target->control_hook(name, {}) : Result<std::string>(std::string());
          if (!undone.ok()) {
            results[i].verdict = worse(results[i].verdict, Verdict::error);
            results[i].message = "could not undo the scenario's controls (" + name + "): " + undone.error().message;
          }
        }
      } else {
        std::shared_lock lock(exclusive_mutex);
        results[i] = run_scenario(*run.scenario, *run.target, run.repetition, options);
      }
      if (options.fail_fast && is_failure(results[i].verdict)) stop = true;
      const std::size_t finished = ++done;
      if (progress) {
        std::lock_guard lock(progress_mutex);
        progress(results[i], finished, runs.size());
      }
    }
  };
  const std::size_t workers = std::max<std::size_t>(1, std::min(options.jobs, runs.size()));
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < workers; ++w) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  compare_transports(results);
  return results;
}

}  // namespace estlab::conformance

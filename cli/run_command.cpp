// `estlab run`: the main job. Without --target it builds the embedded lab (fresh fixtures, the CA,
// one reference gateway per profile on ephemeral loopback ports), checks the lab's fixtures, then
// runs every selected scenario and writes console, JUnit, HTML and JSON reports. With --target it
// runs the scenarios against a vendor's gateway described by a target file.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>

#include "commands.hpp"
#include "paths.hpp"
#include "estlab/conformance/baseline.hpp"
#include "estlab/conformance/catalog.hpp"
#include "estlab/conformance/coverage.hpp"
#include "estlab/conformance/lab.hpp"
#include "estlab/conformance/runner.hpp"
#include "estlab/conformance/scenario.hpp"
#include "estlab/fixtures/check.hpp"
#include "estlab/fixtures/fixture_set.hpp"
#include "estlab/reports/console.hpp"
#include "estlab/reports/html.hpp"
#include "estlab/reports/json.hpp"
#include "estlab/reports/junit.hpp"

namespace estlab::cli {
namespace {

struct RunOptions {
  std::string out = "estlab-out";
  std::string key_type = "ec-p256";
  std::string target;
  std::string scenarios;
  bool list = false;
  std::string keyword;
  std::vector<std::string> requirement_ids;
  std::vector<std::string> profiles;
  std::vector<std::string> transports;
  std::size_t jobs = 2;
  bool fail_fast = false;
  int repeat = 1;
  double step_timeout = 15;
  std::vector<std::string> gateway_faults;
  std::vector<std::string> proxy_faults;
  bool transcripts = false;
  bool skip_lab_check = false;
  std::optional<std::uint64_t> seed;
  std::optional<std::uint64_t> network_seed;
  bool strict = false;
  bool show_secrets = false;
  std::optional<std::size_t> max_skips;
  std::string catalog;
  std::string baseline;
  std::string write_baseline;
};

std::string iso_now() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::filesystem::path scenario_dir(const RunOptions& o) {
  if (!o.scenarios.empty()) return o.scenarios;
  return builtin_scenario_dir();
}

std::filesystem::path catalog_file(const RunOptions& o) {
  if (!o.catalog.empty()) return o.catalog;
  return builtin_data_dir("catalog") / "requirements.yaml";
}

// Every requirement a scenario names must be a row of the catalog: a typo would otherwise judge
// nothing under a name that looks right.
void check_requirements(const std::vector<conformance::Scenario>& scenarios, const conformance::Catalog& catalog) {
  for (const auto& s : scenarios) {
    for (const auto& id : s.named_requirements())
      if (!catalog.find(id)) {
        const auto close = catalog.closest_id(id);
        throw ConfigError(s.file.string() + ":" + std::to_string(s.line) + ": requirement '" + id + "' is not in the catalog" +
                          (close.empty() ? "" : " (did you mean '" + close + "'?)"));
      }
    for (const auto& bug : s.field_bugs)
      if (!catalog.find_field_bug(bug))
        throw ConfigError(s.file.string() + ":" + std::to_string(s.line) + ": field bug '" + bug + "' is not in the catalog's field_bugs");
  }
}

// The fixtures judged by the lab's own path validation against the manifest: a lab that fails
// this would make every scenario's verdict meaningless.
int check_lab(const std::filesystem::path& lab_dir, const std::filesystem::path& out) {
  auto set = fixtures::load(lab_dir);
  if (!set.ok()) {
    std::cerr << "estlab run: " << set.error().message << "\n";
    return kExitUsage;
  }
  const TimePoint now = std::chrono::system_clock::now();
  std::size_t passed = 0, total = 0;
  std::ofstream json(out / "lab-check.json");
  json << "{\n  \"suite\": \"lab-self-check\",\n  \"results\": [\n";
  bool first = true;
  for (const auto& item : set->items) {
    if (!item.verify) continue;
    const auto r = fixtures::check_item(*set, item, now);
    ++total;
    passed += r.passed ? 1 : 0;
    if (!r.passed) std::cout << "FAIL lab fixture " << r.name << ": expected " << r.expected << ", got " << r.actual << "\n";
    json << (first ? "" : ",\n") << "    {\"name\": \"" << r.name << "\", \"verdict\": \"" << (r.passed ? "pass" : "fail") << "\"}";
    first = false;
  }
  json << "\n  ],\n  \"passed\": " << passed << ",\n  \"failed\": " << total - passed << "\n}\n";
  json.close();
  if (!json) {
    std::cerr << "estlab run: cannot write " << (out / "lab-check.json").string() << "\n";
    return kExitUsage;
  }
  std::cout << "lab self-check: " << passed << " passed, " << total - passed << " failed\n";
  return passed == total ? kExitOk : kExitFailed;
}

int run(const RunOptions& o) {
  auto key_type = parse_key_type(o.key_type);
  if (!key_type.ok()) {
    std::cerr << "estlab run: " << key_type.error().message << "\n";
    return kExitUsage;
  }
  std::set<gateway::Fault> faults;
  for (const auto& name : o.gateway_faults) {
    auto fault = gateway::parse_fault(name);
    if (!fault) {
      std::cerr << "estlab run: unknown gateway fault '" << name << "' (estlab gateway --fault list shows them)\n";
      return kExitUsage;
    }
    faults.insert(*fault);
  }
  if (!o.target.empty() && !faults.empty()) {
    std::cerr << "estlab run: --gateway-fault applies to the embedded lab only, not to --target\n";
    return kExitUsage;
  }
  coap_proxy::ProxyFaults proxy_faults;
  for (const auto& name : o.proxy_faults) {
    auto fault = coap_proxy::parse_proxy_fault(name);
    if (!fault) {
      std::cerr << "estlab run: unknown proxy fault '" << name << "' (estlab coap-proxy --fault list shows them)\n";
      return kExitUsage;
    }
    proxy_faults.insert(*fault);
  }
  if (!o.target.empty() && !proxy_faults.empty()) {
    std::cerr << "estlab run: --proxy-fault applies to the embedded lab only, not to --target\n";
    return kExitUsage;
  }
  const auto scenarios = conformance::load_scenarios(scenario_dir(o));  // ConfigError -> exit 2
  const auto catalog = std::make_shared<conformance::Catalog>(conformance::Catalog::load(catalog_file(o)));
  check_requirements(scenarios, *catalog);
  std::optional<conformance::Baseline> baseline;
  if (!o.baseline.empty()) baseline = conformance::load_baseline(o.baseline);  // ConfigError -> exit 2
  conformance::Selection selection;
  selection.keyword = o.keyword;
  selection.requirements = o.requirement_ids;
  selection.profiles = o.profiles;
  selection.transports = o.transports;
  for (const auto& p : o.profiles)
    if (p != "rfc7030" && p != "protocol-gateway") {
      std::cerr << "estlab run: --profile must be rfc7030 or protocol-gateway, not '" << p << "'\n";
      return kExitUsage;
    }

  const std::filesystem::path out = o.out;
  std::vector<conformance::Target> external;
  if (!o.target.empty()) external = conformance::load_target_file(o.target);  // ConfigError -> exit 2

  conformance::RunOptions run_options;
  run_options.jobs = o.jobs;
  run_options.fail_fast = o.fail_fast;
  run_options.repeat = o.repeat;
  run_options.step_timeout = std::chrono::milliseconds(static_cast<long long>(o.step_timeout * 1000));
  run_options.seed = o.seed ? *o.seed : std::random_device{}() * 4294967296ULL + std::random_device{}();
  run_options.strict = o.strict;
  run_options.show_secrets = o.show_secrets;
  run_options.network_seed = o.network_seed;
  run_options.level_of = conformance::levels_from(catalog);

  if (o.list) {
    // Without --target: what would run. With it: per scenario and profile, whether it runs or why it skips.
    std::vector<const conformance::Target*> list_targets;
    for (const auto& t : external) list_targets.push_back(&t);
    std::size_t shown = 0, skipping = 0;
    if (list_targets.empty()) {
      for (const auto& s : scenarios) {
        if (!selection.matches(s)) continue;
        std::string profiles, requirements;
        for (const auto& p : s.profiles)
          if (selection.profiles.empty() || std::find(selection.profiles.begin(), selection.profiles.end(), p) != selection.profiles.end())
            profiles += (profiles.empty() ? "" : ",") + p;
        if (profiles.empty()) continue;
        for (const auto& r : s.requirements) requirements += (requirements.empty() ? "" : ",") + r;
        std::cout << std::left << std::setw(44) << s.id << " " << std::setw(26) << profiles << " " << std::setw(6) << s.transport << " "
                  << requirements << "  " << s.title << "\n";
        ++shown;
      }
      std::cout << shown << " scenario(s)\n";
      return kExitOk;
    }
    for (const auto& run : conformance::plan(scenarios, list_targets, selection, run_options)) {
      std::string lacking;
      for (const auto& role : run.roles_lacking) lacking += (lacking.empty() ? "" : ", ") + role;
      std::cout << std::left << std::setw(44) << run.scenario->id << " " << std::setw(17) << run.profile << " "
                << (run.skip_reason.empty() ? std::string(lacking.empty() ? "runs" : "PARTLY: steps as " + lacking + " not judged (no identity)") +
                                                  (run.exclusive ? " (alone: it uses controls)" : "")
                                            : "SKIP: " + run.skip_reason)
                << "\n";
      ++shown;
      skipping += run.skip_reason.empty() ? 0 : 1;
    }
    std::cout << shown << " scenario run(s), " << skipping << " would skip\n";
    return kExitOk;
  }

  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec || !std::filesystem::is_directory(out)) {
    std::cerr << "estlab run: cannot create the output directory " << out.string() << (ec ? ": " + ec.message() : "") << "\n";
    return kExitUsage;
  }

  std::unique_ptr<conformance::EmbeddedLab> lab;
  std::vector<const conformance::Target*> targets;
  std::string target_name;
  if (o.target.empty()) {
    std::cout << "estlab run: building the embedded lab in " << (out / "lab").string() << "\n";
    conformance::LabOptions lab_options;
    lab_options.dir = out / "lab";
    lab_options.key_type = *key_type;
    lab_options.faults = faults;
    lab_options.proxy_faults = proxy_faults;
    lab_options.transcripts = o.transcripts;
    lab = conformance::EmbeddedLab::start(lab_options);
    if (!o.skip_lab_check) {
      if (int rc = check_lab(out / "lab", out); rc != kExitOk) return rc;
    }
    targets = lab->targets();
    target_name = "embedded lab";
    if (!faults.empty()) {
      target_name += " with gateway fault(s)";
      for (auto f : faults) target_name += " " + std::string(gateway::to_string(f));
    }
    if (!proxy_faults.empty()) {
      target_name += " with proxy fault(s)";
      for (auto f : proxy_faults) target_name += " " + std::string(coap_proxy::to_string(f));
    }
  } else {
    for (const auto& t : external) targets.push_back(&t);
    target_name = external.front().name + " (" + o.target + ")";
  }

  const auto planned = conformance::plan(scenarios, targets, selection, run_options);
  if (planned.empty()) {
    std::cerr << "estlab run: no scenario matches the selection\n";
    return kExitUsage;
  }
  // Pre-flight: one clear error instead of a failure per scenario when the target is unreachable
  // or its certificate does not validate against the trust anchors (EST-coaps too, where used).
  for (const auto* t : targets) {
    const bool runs_coaps = std::any_of(planned.begin(), planned.end(), [&](const conformance::PlannedRun& run) {
      return run.target == t && run.skip_reason.empty() && run.scenario->transport == "coaps";
    });
    Result<void> ready = conformance::preflight(*t, run_options.step_timeout);
    const char* keys = "base_url, trust_anchors and server_name";
    if (ready.ok() && runs_coaps) {
      ready = conformance::preflight_coaps(*t, run_options.step_timeout);
      keys = "coaps_port, trust_anchors and server_name";
    }
    if (!ready.ok()) {
      std::cerr << "estlab run: " << t->name << " [" << t->profile << "]: " << ready.error().message << "\n"
                << "estlab run: no scenario was run (check " << keys << " in the target file)\n";
      return kExitUsage;
    }
  }

  std::cout << "estlab run: " << planned.size() << " scenario run(s) against " << target_name << ", seed " << run_options.seed
            << (o.strict ? ", strict (warnings fail)" : "") << "\n";
  for (const auto& run : planned)
    if (run.scenario->needs_network && run.skip_reason.empty())
      std::cout << "estlab run: " << run.scenario->id << " [" << run.profile << "]: network "
                << conformance::network_impairment_for(*run.scenario, run_options).describe() << "\n";

  conformance::RunResult result;
  result.estlab_version = "0.1.0";
  result.target = target_name;
  result.started_at = iso_now();
  result.seed = run_options.seed;
  result.strict = o.strict;
  // The catalog's words beside every ID the reports show.
  for (const auto& run : planned) {
    auto ids = run.scenario->named_requirements();
    ids.push_back("7030-3.2.3-a");  // every 401 is checked for its challenge under this row
    for (const auto& id : ids)
      if (const auto* row = catalog->find(id)) result.requirement_texts[id] = row->level + ": " + row->text;
  }
  result.coverage = conformance::catalog_coverage(*catalog, scenarios);
  for (const auto* t : targets) {
    if (std::find(result.profiles.begin(), result.profiles.end(), t->profile) == result.profiles.end()) result.profiles.push_back(t->profile);
    if (!external.empty()) {
      // What the target file declared, so a reader of the report knows what the verdicts assumed.
      std::string features, roles;
      for (const auto& f : t->features) features += (features.empty() ? "" : ", ") + f;
      for (const auto& [role, identity] : t->identities) roles += (roles.empty() ? "" : ", ") + role;
      const std::string prefix = "target [" + t->profile + "] ";
      result.readings.emplace_back(prefix + "features", features.empty() ? "(none declared)" : features);
      result.readings.emplace_back(prefix + "roles", roles.empty() ? "(none)" : roles);
      result.readings.emplace_back(prefix + "subject template", t->subject_template);
    }
    for (const auto& reading : t->readings)
      if (std::find(result.readings.begin(), result.readings.end(), reading) == result.readings.end()) result.readings.push_back(reading);
  }
  // Gateways the lab started for scenarios that need a configuration of their own (needs.config):
  // the readings where they differ from the standing gateways', each saying whose it is.
  const auto standing_readings = result.readings;
  for (const auto& run : planned) {
    if (!run.skip_reason.empty() || std::find(targets.begin(), targets.end(), run.target) != targets.end()) continue;
    for (const auto& [what, reading] : run.target->readings) {
      if (std::find(standing_readings.begin(), standing_readings.end(), std::make_pair(what, reading)) != standing_readings.end()) continue;
      const std::pair<std::string, std::string> named{"[" + run.target->name + "] " + what, reading};
      if (std::find(result.readings.begin(), result.readings.end(), named) == result.readings.end()) result.readings.push_back(named);
    }
  }
  reports::ConsoleReporter console(std::cout);
  console.set_requirement_texts(result.requirement_texts);
  const auto started = std::chrono::steady_clock::now();
  result.scenarios = conformance::run_plan(planned, run_options, [&](const conformance::ScenarioResult& r, std::size_t done, std::size_t total) {
    console.scenario_finished(r, done, total);
  });
  result.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (!o.write_baseline.empty()) {
    // Recorded before the baseline applies, so known deviations are kept in the new file.
    std::ofstream file(o.write_baseline);
    file << conformance::write_baseline(result);
    if (!file) {
      std::cerr << "estlab run: cannot write the baseline " << o.write_baseline << "\n";
      return kExitUsage;
    }
    std::cout << "estlab run: wrote the baseline " << o.write_baseline << "\n";
  }
  if (baseline) {
    result.baseline = o.baseline;
    conformance::apply_baseline(*baseline, result);
    for (const auto& entry : conformance::unmatched_entries(*baseline, result))
      std::cout << "estlab run: " << o.baseline << ":" << entry.line << ": baseline entry for " << entry.scenario
                << " matched no scenario run (renamed, deselected or stale?)\n";
  }
  console.summary(result);

  bool written = true;
  auto report = [&](const char* name, Result<void> r) {
    if (!r.ok()) {
      std::cerr << "estlab run: cannot write " << (out / name).string() << ": " << r.error().message << "\n";
      written = false;
    }
  };
  report("junit.xml", reports::write_junit(result, out / "junit.xml"));
  report("report.html", reports::write_html(result, out / "report.html"));
  report("results.json", reports::write_json(result, out / "results.json"));
  if (lab) {
    std::ofstream log(out / "gateway.log");
    for (const auto& line : lab->log()) log << line << "\n";
  }
  std::cout << "reports: " << (out / "junit.xml").string() << ", " << (out / "report.html").string() << ", "
            << (out / "results.json").string() << "\n";
  if (!written) return kExitUsage;
  const std::size_t skipped = result.count(conformance::Verdict::skip);
  if (o.max_skips && skipped > *o.max_skips) {
    std::cout << "estlab run: " << skipped << " scenario run(s) skipped, more than --max-skips " << *o.max_skips << ": FAILED\n";
    return kExitFailed;
  }
  // Under --strict a stale baseline entry (xpass) fails the run too; warnings were already failures.
  if (o.strict && result.count(conformance::Verdict::xpass) > 0) return kExitFailed;
  return result.all_passed() ? kExitOk : kExitFailed;
}

}  // namespace

void register_run(CLI::App& app, Action& action) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run the conformance scenarios (embedded lab, or --target) and write reports");
  cmd->add_option("--out", o->out, "Directory for the lab and the reports (junit.xml, report.html, results.json)")->capture_default_str();
  cmd->add_option("--key-type", o->key_type, "Key type of the embedded lab's PKI")->capture_default_str();
  cmd->add_option("--target", o->target, "Target file describing an external EST gateway (see conformance/README.md)");
  cmd->add_option("--scenarios", o->scenarios, "Scenario directory (default: $ESTLAB_SCENARIOS, else the built-in set)");
  cmd->add_flag("--list", o->list, "List the selected scenarios and exit");
  cmd->add_option("-k", o->keyword, "Select scenarios whose id, title or file contains this (\"a or b\", \"not c\")");
  cmd->add_option("--id", o->requirement_ids, "Select scenarios tied to this requirement ID (or prefix, e.g. PG-ENR); repeatable");
  cmd->add_option("--profile", o->profiles, "rfc7030 or protocol-gateway; repeatable (default: both)");
  cmd->add_option("--transport", o->transports, "https or coaps; repeatable");
  cmd->add_option("-j,--jobs", o->jobs, "Scenarios run in parallel")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_flag("--fail-fast", o->fail_fast, "Stop starting scenarios after the first failure");
  cmd->add_option("--repeat", o->repeat, "Run each scenario N times")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--step-timeout", o->step_timeout, "Seconds each network step may take")->capture_default_str()->check(CLI::Range(0.1, 600.0));
  cmd->add_option("--gateway-fault", o->gateway_faults, "Make the embedded gateways wrong in one named way (testing the tester); repeatable");
  cmd->add_option("--proxy-fault", o->proxy_faults,
                  "Make the embedded CoAP proxies wrong in one named way (`estlab coap-proxy --fault list`); repeatable");
  cmd->add_flag("--transcripts", o->transcripts, "Record the embedded gateways' exchanges under OUT/lab/transcripts");
  cmd->add_flag("--skip-lab-check", o->skip_lab_check, "Do not judge the embedded lab's fixtures first");
  cmd->add_option("--seed", o->seed, "Seed of every randomness ({{unique}} subjects); printed and stored in every report, so a run can be replayed");
  cmd->add_flag("--strict", o->strict, "Count SHOULD-level deviations (warnings) as failures");
  cmd->add_option("--network-seed", o->network_seed,
                  "Seed of the impaired network of needs.network scenarios (mixed with each scenario's id); "
                  "default: each scenario's own, so runs repeat. The seed used is printed and in the reports");
  cmd->add_flag("--show-secrets", o->show_secrets, "Evidence shows Authorization values (passwords) as sent; they are redacted by default");
  cmd->add_option("--max-skips", o->max_skips, "Fail the run (exit 1) when more than N scenario runs are skipped");
  cmd->add_option("--baseline", o->baseline, "Known deviations (YAML): their failures are reported as xfail, and a pass of one as xpass");
  cmd->add_option("--write-baseline", o->write_baseline, "Write a baseline of this run's fail/error/warn scenarios to FILE");
  cmd->add_option("--catalog", o->catalog, "Requirement catalog (YAML) to judge against (default: the built-in one)");
  cmd->footer("Verdicts: pass, info, warn (a SHOULD row), skip, xfail/xpass (under --baseline), fail (a MUST row), error (could not judge).\n"
              "Exit codes: 0 nothing failed (skips, warnings and info are fine), 1 a fail or error (or --max-skips exceeded),\n"
              "2 usage or configuration error (a broken scenario or target file, an unknown name, a failed pre-flight).");
  cmd->callback([o, &action] { action = [o] { return run(*o); }; });
}

}  // namespace estlab::cli

#include "yaml_file.hpp"
#include "estlab/conformance/baseline.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>
#include <set>
#include <tuple>

#include "estlab/core/result.hpp"

namespace estlab::conformance {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const YAML::Node& node, const std::string& what) {
  throw ConfigError(file.string() + ":" + std::to_string(node.Mark().line + 1) + ": " + what);
}

std::string scalar(const std::filesystem::path& file, const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) fail(file, node, key + " must be a single value");
  return node.as<std::string>();
}

BaselineEntry parse_entry(const std::filesystem::path& file, const YAML::Node& node) {
  if (!node.IsMap()) fail(file, node, "an entry is a mapping (scenario, profile, step, verdict, reason, message)");
  static const std::vector<std::string> known = {"scenario", "profile", "step", "verdict", "reason", "message"};
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end())
      fail(file, kv.first, "unknown key '" + key + "' in a baseline entry (known: scenario, profile, step, verdict, reason, message)");
  }
  BaselineEntry e;
  e.line = node.Mark().line + 1;
  if (!node["scenario"]) fail(file, node, "entry without a scenario id");
  e.scenario = scalar(file, node["scenario"], "scenario");
  if (e.scenario.empty()) fail(file, node["scenario"], "empty scenario id");
  if (node["profile"]) {
    e.profile = scalar(file, node["profile"], "profile");
    if (e.profile != "rfc7030" && e.profile != "protocol-gateway")
      fail(file, node["profile"], "profile must be rfc7030 or protocol-gateway, not '" + e.profile + "'");
  }
  if (node["step"]) {
    const auto text = scalar(file, node["step"], "step");
    const bool digits = !text.empty() && text.size() < 6 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoul(text) < 1) fail(file, node["step"], "step must be a step number from 1, not '" + text + "'");
    e.step = std::stoul(text);
  }
  if (node["verdict"]) {
    const auto text = scalar(file, node["verdict"], "verdict");
    const auto verdict = parse_verdict(text);
    if (!verdict || (*verdict != Verdict::fail && *verdict != Verdict::error && *verdict != Verdict::warn))
      fail(file, node["verdict"], "verdict must be fail, error or warn (the verdict the scenario is known to have), not '" + text + "'");
    e.verdict = *verdict;
  }
  if (!node["reason"]) fail(file, node, "entry for '" + e.scenario + "' without a reason (why the deviation is accepted, e.g. a ticket)");
  e.reason = scalar(file, node["reason"], "reason");
  if (e.reason.empty()) fail(file, node["reason"], "empty reason for '" + e.scenario + "'");
  if (node["message"]) {
    e.message = scalar(file, node["message"], "message");
    try {
      std::regex check(e.message);
    } catch (const std::regex_error& error) {
      fail(file, node["message"], "message is not a valid regex: " + std::string(error.what()));
    }
  }
  return e;
}

bool passed(Verdict v) { return v == Verdict::pass || v == Verdict::info; }

bool message_matches(const BaselineEntry& e, const std::string& message) {
  return e.message.empty() || std::regex_search(message, std::regex(e.message));
}

std::string expectation(const Baseline& baseline, const BaselineEntry& e) {
  return "passed, but baseline " + (baseline.file.empty() ? std::string("entry") : baseline.file + ":" + std::to_string(e.line)) +
         " expects " + to_string(e.verdict) + " (" + e.reason + "): delete the entry";
}

bool applies_to(const BaselineEntry& e, const ScenarioResult& s) {
  return e.scenario == s.id && (e.profile.empty() || e.profile == s.profile);
}

void apply_step_entry(const Baseline& baseline, const BaselineEntry& e, ScenarioResult& s) {
  if (*e.step > s.steps.size()) return;
  StepResult& step = s.steps[*e.step - 1];
  if (step.verdict == Verdict::skip) return;
  if (step.verdict == e.verdict && message_matches(e, step.message)) {
    Verdict verdict = Verdict::xfail;
    for (auto& check : step.checks) {
      if (check.verdict == e.verdict) check.verdict = Verdict::xfail;
      verdict = worse(verdict, check.verdict);
    }
    step.verdict = verdict;
  } else if (passed(step.verdict)) {
    step.verdict = Verdict::xpass;
    step.message = expectation(baseline, e);
  } else {
    return;  // fails differently: a new problem, reported as it is
  }
  s.baseline_reason = e.reason;
  Verdict worst = Verdict::skip;
  for (const auto& st : s.steps) worst = worse(worst, st.verdict);
  s.verdict = worst;
  if (s.verdict == Verdict::xpass && step.verdict == Verdict::xpass) s.message = step.message;
}

void apply_scenario_entry(const Baseline& baseline, const BaselineEntry& e, ScenarioResult& s) {
  if (s.verdict == e.verdict && message_matches(e, s.message)) {
    s.verdict = Verdict::xfail;
    s.baseline_reason = e.reason;
  } else if (passed(s.verdict)) {
    s.verdict = Verdict::xpass;
    s.baseline_reason = e.reason;
    s.message = expectation(baseline, e);
  }
}

std::string first_line(const std::string& text, std::size_t limit) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > limit) line = line.substr(0, limit) + "...";
  return line;
}

}  // namespace

Baseline load_baseline(const std::filesystem::path& file) {
  const YAML::Node root = load_yaml_file(file, "baseline file");
  if (!root.IsMap()) throw ConfigError(file.string() + ":1: a baseline file holds one mapping with entries (and an optional seed)");
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    if (key != "seed" && key != "entries") fail(file, kv.first, "unknown key '" + key + "' (known: seed, entries)");
  }
  Baseline b;
  b.file = file.string();
  if (const auto& seed = root["seed"]) {
    try {
      b.seed = seed.as<std::uint64_t>();
    } catch (const YAML::Exception&) {
      fail(file, seed, "seed must be a non-negative integer");
    }
  }
  const auto& entries = root["entries"];
  if (!entries) throw ConfigError(file.string() + ":1: missing entries (a list; [] for none)");
  if (!entries.IsSequence()) fail(file, entries, "entries must be a list");
  std::set<std::tuple<std::string, std::string, std::size_t>> seen;
  for (const auto& node : entries) {
    auto e = parse_entry(file, node);
    if (!seen.emplace(e.scenario, e.profile, e.step.value_or(0)).second)
      fail(file, node, "a second entry for scenario '" + e.scenario + "'" + (e.profile.empty() ? "" : " under " + e.profile) +
                           (e.step ? " step " + std::to_string(*e.step) : ""));
    b.entries.push_back(std::move(e));
  }
  return b;
}

void apply_baseline(const Baseline& baseline, RunResult& run) {
  run.baseline = baseline.file;
  for (auto& s : run.scenarios) {
    if (s.verdict == Verdict::skip) continue;
    for (const auto& e : baseline.entries)
      if (e.step && applies_to(e, s)) apply_step_entry(baseline, e, s);
    if (s.verdict == Verdict::xfail) continue;  // the step entries covered it
    // The first scenario entry the verdict matches; else, if the scenario passed, the first
    // applicable one makes it xpass.
    const BaselineEntry* matched = nullptr;
    const BaselineEntry* applicable = nullptr;
    for (const auto& e : baseline.entries) {
      if (e.step || !applies_to(e, s)) continue;
      if (!applicable) applicable = &e;
      if (s.verdict == e.verdict && message_matches(e, s.message)) {
        matched = &e;
        break;
      }
    }
    if (matched) apply_scenario_entry(baseline, *matched, s);
    else if (applicable) apply_scenario_entry(baseline, *applicable, s);
  }
}

std::vector<BaselineEntry> unmatched_entries(const Baseline& baseline, const RunResult& run) {
  std::vector<BaselineEntry> unmatched;
  for (const auto& e : baseline.entries) {
    const bool found = std::any_of(run.scenarios.begin(), run.scenarios.end(), [&](const ScenarioResult& s) {
      return applies_to(e, s) && (!e.step || *e.step <= s.steps.size());
    });
    if (!found) unmatched.push_back(e);
  }
  return unmatched;
}

std::string write_baseline(const RunResult& run) {
  const std::string date = run.started_at.size() >= 10 ? run.started_at.substr(0, 10) : "an unknown date";
  const std::string target = run.target.empty() ? "an unnamed target" : run.target;
  YAML::Emitter out;
  out << YAML::Comment("estlab baseline: known deviations of " + target);
  out << YAML::Newline << YAML::Comment("recorded " + date + " by estlab " + run.estlab_version +
                                        "; replace each reason with why the deviation is accepted");
  out << YAML::BeginMap;
  if (run.seed != 0) out << YAML::Key << "seed" << YAML::Value << run.seed;
  out << YAML::Key << "entries" << YAML::Value;
  std::set<std::pair<std::string, std::string>> written;
  std::size_t count = 0;
  for (const auto& s : run.scenarios) {
    if (s.verdict != Verdict::fail && s.verdict != Verdict::error && s.verdict != Verdict::warn) continue;
    if (!written.emplace(s.id, s.profile).second) continue;  // --repeat: one entry per scenario and profile
    if (count++ == 0) out << YAML::BeginSeq;
    out << YAML::BeginMap;
    out << YAML::Key << "scenario" << YAML::Value << s.id;
    if (!s.profile.empty()) out << YAML::Key << "profile" << YAML::Value << s.profile;
    out << YAML::Key << "verdict" << YAML::Value << to_string(s.verdict);
    out << YAML::Key << "reason" << YAML::Value << YAML::DoubleQuoted
        << "recorded " + date + " from " + target + (s.message.empty() ? "" : ": " + first_line(s.message, 200));
    out << YAML::EndMap;
  }
  if (count == 0) out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
  else out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace estlab::conformance

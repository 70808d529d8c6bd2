#include "estlab/reports/junit.hpp"

#include <pugixml.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <regex>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "estlab/reports/text.hpp"

namespace estlab::reports {

using conformance::RunResult;
using conformance::ScenarioResult;
using conformance::Verdict;

namespace {

// pugixml escapes < & " but writes other control characters as &#xNN;, which XML 1.0 forbids;
// printable() leaves none, and no byte that is not UTF-8.
void set(pugi::xml_node node, const char* name, std::string_view value) {
  node.append_attribute(name).set_value(printable(value).c_str());
}

void set(pugi::xml_node node, const char* name, unsigned long long value) {
  node.append_attribute(name).set_value(value);
}

void text(pugi::xml_node node, std::string_view value) {
  node.append_child(pugi::node_pcdata).set_value(printable(value).c_str());
}

void property(pugi::xml_node properties, std::string_view name, std::string_view value) {
  auto node = properties.append_child("property");
  set(node, "name", name);
  set(node, "value", value);
}

std::string host_name() {
  char buffer[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "";
  return buffer;
}

// xs:dateTime; anything else is left out rather than making the file invalid.
bool is_xs_date_time(const std::string& text) {
  static const std::regex pattern(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)");
  return std::regex_match(text, pattern);
}

std::string classname(const ScenarioResult& scenario) {
  std::string spec, section;
  for (char c : spec_name(scenario)) {
    if (c != ' ') spec += c;
  }
  for (char c : scenario.section) section += c == '.' ? '_' : c;
  if (section.empty()) section = "general";
  return "estlab." + spec + "." + section;
}

// "ID [PROFILE]", " #N" for the second and later repetitions: unique per profile and repetition,
// so a CI server keeps one history per scenario run instead of merging the profiles.
std::string testcase_name(const ScenarioResult& scenario) {
  std::string name = scenario.id;
  if (!scenario.profile.empty()) name += " [" + scenario.profile + "]";
  return name + repetition_suffix(scenario);
}

// The steps with evidence (a failing scenario's warnings too) as text; the scenario's message alone
// when no step has any.
std::string transcript(const ScenarioResult& scenario) {
  std::string out;
  if (!scenario.baseline_reason.empty()) out += "baseline: " + scenario.baseline_reason + "\n\n";
  std::string steps;
  for (const auto* step : evidence_steps(scenario)) {
    if (!steps.empty()) steps += "\n";
    steps += step_evidence(*step);
  }
  return out + (steps.empty() ? scenario.message + "\n" : steps);
}

std::string step_summaries(const ScenarioResult& scenario) {
  std::string out;
  for (const auto& step : scenario.steps) {
    out += "[" + std::string(to_string(step.verdict)) + "] step " + std::to_string(step.index + 1);
    if (step.line > 0) out += ", line " + std::to_string(step.line);
    if (!step.kind.empty()) out += ", " + step.kind;
    out += ": " + step.summary + " (" + milliseconds_text(step.elapsed_ms) + ")";
    if (!step.message.empty()) out += ": " + step.message;
    out += "\n";
  }
  return out;
}

// What a passing testcase (pass, info, warn) says in <system-out>: a warning first, with its
// evidence; the info checks; then every step.
std::string system_out(const ScenarioResult& scenario) {
  std::string out;
  if (scenario.verdict == Verdict::warn) {
    out += "warn: " + scenario.message + "\n";
    for (const auto* step : evidence_steps(scenario)) out += step_evidence(*step) + "\n";
  }
  std::string infos;
  for (const auto& step : scenario.steps) {
    for (const auto& check : step.checks) {
      if (check.verdict == Verdict::info) infos += "  " + check_text(check) + "\n";
    }
  }
  if (scenario.verdict == Verdict::info && !scenario.message.empty()) out += "info: " + scenario.message + "\n";
  if (!infos.empty()) out += "recorded:\n" + infos;
  if (!out.empty() && !scenario.steps.empty()) out += "\n";
  return out + step_summaries(scenario);
}

void outcome(pugi::xml_node testcase, const char* element, std::string_view message, const char* type,
             const ScenarioResult& scenario) {
  auto node = testcase.append_child(element);
  set(node, "message", message);
  set(node, "type", type);
  text(node, transcript(scenario));
}

void add_testcase(pugi::xml_node suite, const ScenarioResult& scenario, const std::string& name, bool strict) {
  auto testcase = suite.append_child("testcase");
  set(testcase, "name", name);
  set(testcase, "classname", classname(scenario));
  set(testcase, "time", seconds_text(scenario.elapsed_ms));
  if (!scenario.file.empty()) set(testcase, "file", scenario.file);
  if (scenario.line > 0) set(testcase, "line", static_cast<unsigned long long>(scenario.line));

  auto properties = testcase.append_child("properties");
  property(properties, "verdict", to_string(scenario.verdict));
  property(properties, "scenario", scenario.id);
  for (const auto& requirement : scenario.requirements) property(properties, "requirement", requirement);
  property(properties, "profile", scenario.profile);
  property(properties, "transport", scenario.transport);
  if (scenario.repetition > 0) property(properties, "repetition", std::to_string(scenario.repetition));
  if (!scenario.unique.empty()) property(properties, "unique", scenario.unique);
  if (!scenario.baseline_reason.empty()) property(properties, "baseline_reason", scenario.baseline_reason);
  if (const auto skipped = scenario.skipped_steps(); skipped > 0) property(properties, "skipped_steps", std::to_string(skipped));

  const std::string baseline_reason = scenario.baseline_reason.empty() ? scenario.message : scenario.baseline_reason;
  bool has_system_out = true;
  switch (scenario.verdict) {
    case Verdict::pass:
    case Verdict::info:
      break;
    case Verdict::warn:
      // --strict counts a warning as a failure: so does the CI server.
      if (strict) {
        outcome(testcase, "failure", "warn (--strict): " + scenario.message, "warn", scenario);
      }
      break;
    case Verdict::fail:
      outcome(testcase, "failure", scenario.message, "assertion", scenario);
      break;
    case Verdict::xpass:
      outcome(testcase, "failure", "xpass: the baseline says it fails (" + baseline_reason + ") but it passed", "xpass",
              scenario);
      break;
    case Verdict::error:
      outcome(testcase, "error", scenario.message, "error", scenario);
      break;
    case Verdict::skip: {
      auto skipped = testcase.append_child("skipped");
      set(skipped, "message", scenario.message);
      has_system_out = !scenario.steps.empty();
      break;
    }
    case Verdict::xfail: {
      auto skipped = testcase.append_child("skipped");
      set(skipped, "message", "xfail: " + baseline_reason);
      text(skipped, transcript(scenario));
      break;
    }
  }
  if (has_system_out) {
    const std::string out = system_out(scenario);
    if (!out.empty()) text(testcase.append_child("system-out"), out);
  }
}

// JUnit knows failures, errors and skips: xpass (and, under --strict, warn) counts as a failure,
// xfail as a skip; pass, info and warn are passed tests.
struct Counts {
  unsigned long long tests = 0, failures = 0, errors = 0, skipped = 0;
  std::array<unsigned long long, 8> by_verdict{};
  double elapsed_ms = 0;

  void add(const ScenarioResult& scenario, bool strict) {
    ++tests;
    const Verdict v = scenario.verdict;
    if (v == Verdict::fail || v == Verdict::xpass || (strict && v == Verdict::warn)) ++failures;
    if (v == Verdict::error) ++errors;
    if (v == Verdict::skip || v == Verdict::xfail) ++skipped;
    for (std::size_t i = 0; i < all_verdicts().size(); ++i) {
      if (all_verdicts()[i] == v) ++by_verdict[i];
    }
    if (scenario.elapsed_ms > 0) elapsed_ms += scenario.elapsed_ms;
  }

  void set_on(pugi::xml_node node) const {
    set(node, "tests", tests);
    set(node, "failures", failures);
    set(node, "errors", errors);
    set(node, "skipped", skipped);
  }
};

// The testcase names of a run, in run order: testcase_name, and should two runs still share a
// name (the same id, profile and repetition twice) " (2)", " (3)"... after the later ones.
std::vector<std::string> testcase_names(const RunResult& run) {
  std::vector<std::string> names;
  std::set<std::string> used;
  for (const auto& scenario : run.scenarios) {
    const std::string name = testcase_name(scenario);
    std::string unique = name;
    for (std::size_t n = 2; used.count(unique) != 0; ++n) unique = name + " (" + std::to_string(n) + ")";
    used.insert(unique);
    names.push_back(unique);
  }
  return names;
}

}  // namespace

std::string junit_xml(const RunResult& run) {
  // One suite per spec, in the order the specs first appear in the run.
  const auto names = testcase_names(run);
  std::vector<std::pair<std::string, std::vector<std::size_t>>> suites;  // spec -> indexes into run.scenarios
  for (std::size_t i = 0; i < run.scenarios.size(); ++i) {
    const std::string spec = spec_name(run.scenarios[i]);
    auto it = std::find_if(suites.begin(), suites.end(), [&](const auto& suite) { return suite.first == spec; });
    if (it == suites.end()) it = suites.insert(suites.end(), {spec, {}});
    it->second.push_back(i);
  }

  pugi::xml_document document;
  auto declaration = document.append_child(pugi::node_declaration);
  declaration.append_attribute("version") = "1.0";
  declaration.append_attribute("encoding") = "UTF-8";

  auto root = document.append_child("testsuites");
  set(root, "name", "estlab");
  Counts total;
  for (const auto& scenario : run.scenarios) total.add(scenario, run.strict);
  total.set_on(root);
  set(root, "time", seconds_text(run.elapsed_ms > 0 ? run.elapsed_ms : total.elapsed_ms));

  const std::string hostname = host_name();
  const bool timestamp = is_xs_date_time(run.started_at);
  std::string profiles;
  for (const auto& profile : run_profiles(run)) profiles += (profiles.empty() ? "" : ",") + profile;

  unsigned long long id = 0;
  for (const auto& [spec, scenarios] : suites) {
    auto suite = root.append_child("testsuite");
    set(suite, "name", spec);
    Counts counts;
    for (const auto i : scenarios) counts.add(run.scenarios[i], run.strict);
    counts.set_on(suite);
    set(suite, "time", seconds_text(counts.elapsed_ms));
    if (timestamp) set(suite, "timestamp", run.started_at);
    if (!hostname.empty()) set(suite, "hostname", hostname);
    set(suite, "id", id++);
    set(suite, "package", "estlab");

    auto properties = suite.append_child("properties");
    property(properties, "estlab.version", run.estlab_version);
    property(properties, "target", run.target);
    property(properties, "profiles", profiles);
    property(properties, "seed", std::to_string(run.seed));
    property(properties, "replay", "--seed " + std::to_string(run.seed));
    property(properties, "strict", run.strict ? "true" : "false");
    if (!run.baseline.empty()) property(properties, "baseline", run.baseline);
    for (const auto& [name, value] : run.readings) property(properties, "reading." + name, value);
    // JUnit has attributes for failures, errors and skips only; every level is counted here.
    for (std::size_t v = 0; v < all_verdicts().size(); ++v) {
      property(properties, std::string("count.") + to_string(all_verdicts()[v]), std::to_string(counts.by_verdict[v]));
    }

    for (const auto i : scenarios) add_testcase(suite, run.scenarios[i], names[i], run.strict);
  }

  std::ostringstream out;
  document.save(out, "  ", pugi::format_indent, pugi::encoding_utf8);
  return out.str();
}

Result<void> write_junit(const RunResult& run, const std::filesystem::path& path) {
  return write_text_file(path, junit_xml(run));
}

}  // namespace estlab::reports

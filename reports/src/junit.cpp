#include "estlab/reports/junit.hpp"

#include <pugixml.hpp>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <regex>
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

std::string testcase_name(const ScenarioResult& scenario) {
  std::string name = scenario.id;
  if (scenario.repetition > 0) name += " [rep " + std::to_string(scenario.repetition) + "]";
  return name;
}

// Each failing step's checks and exchange; the scenario's message alone when no step failed.
std::string transcript(const ScenarioResult& scenario) {
  std::string out;
  for (const auto* step : failing_steps(scenario)) {
    if (!out.empty()) out += "\n";
    out += step_evidence(*step);
  }
  if (out.empty()) out = scenario.message + "\n";
  return out;
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

void add_testcase(pugi::xml_node suite, const ScenarioResult& scenario) {
  auto testcase = suite.append_child("testcase");
  set(testcase, "name", testcase_name(scenario));
  set(testcase, "classname", classname(scenario));
  set(testcase, "time", seconds_text(scenario.elapsed_ms));
  if (!scenario.file.empty()) set(testcase, "file", scenario.file);
  if (scenario.line > 0) set(testcase, "line", static_cast<unsigned long long>(scenario.line));

  auto properties = testcase.append_child("properties");
  for (const auto& requirement : scenario.requirements) property(properties, "requirement", requirement);
  property(properties, "profile", scenario.profile);
  property(properties, "transport", scenario.transport);
  if (scenario.repetition > 0) property(properties, "repetition", std::to_string(scenario.repetition));

  switch (scenario.verdict) {
    case Verdict::pass:
      break;
    case Verdict::fail: {
      auto failure = testcase.append_child("failure");
      set(failure, "message", scenario.message);
      set(failure, "type", "assertion");
      text(failure, transcript(scenario));
      break;
    }
    case Verdict::error: {
      auto error = testcase.append_child("error");
      set(error, "message", scenario.message);
      set(error, "type", "error");
      text(error, transcript(scenario));
      break;
    }
    case Verdict::skip: {
      auto skipped = testcase.append_child("skipped");
      set(skipped, "message", scenario.message);
      break;
    }
  }
  if (!scenario.steps.empty()) text(testcase.append_child("system-out"), step_summaries(scenario));
}

struct Counts {
  unsigned long long tests = 0, failures = 0, errors = 0, skipped = 0;
  double elapsed_ms = 0;

  void add(const ScenarioResult& scenario) {
    ++tests;
    if (scenario.verdict == Verdict::fail) ++failures;
    if (scenario.verdict == Verdict::error) ++errors;
    if (scenario.verdict == Verdict::skip) ++skipped;
    if (scenario.elapsed_ms > 0) elapsed_ms += scenario.elapsed_ms;
  }

  void set_on(pugi::xml_node node) const {
    set(node, "tests", tests);
    set(node, "failures", failures);
    set(node, "errors", errors);
    set(node, "skipped", skipped);
  }
};

}  // namespace

std::string junit_xml(const RunResult& run) {
  // One suite per spec, in the order the specs first appear in the run.
  std::vector<std::pair<std::string, std::vector<const ScenarioResult*>>> suites;
  for (const auto& scenario : run.scenarios) {
    const std::string spec = spec_name(scenario);
    auto it = std::find_if(suites.begin(), suites.end(), [&](const auto& suite) { return suite.first == spec; });
    if (it == suites.end()) it = suites.insert(suites.end(), {spec, {}});
    it->second.push_back(&scenario);
  }

  pugi::xml_document document;
  auto declaration = document.append_child(pugi::node_declaration);
  declaration.append_attribute("version") = "1.0";
  declaration.append_attribute("encoding") = "UTF-8";

  auto root = document.append_child("testsuites");
  set(root, "name", "estlab");
  Counts total;
  for (const auto& scenario : run.scenarios) total.add(scenario);
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
    for (const auto* scenario : scenarios) counts.add(*scenario);
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
    for (const auto& [name, value] : run.readings) property(properties, "reading." + name, value);

    for (const auto* scenario : scenarios) add_testcase(suite, *scenario);
  }

  std::ostringstream out;
  document.save(out, "  ", pugi::format_indent, pugi::encoding_utf8);
  return out.str();
}

Result<void> write_junit(const RunResult& run, const std::filesystem::path& path) {
  return write_text_file(path, junit_xml(run));
}

}  // namespace estlab::reports

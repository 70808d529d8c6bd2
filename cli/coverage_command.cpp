// `estlab coverage`: which gateway-side rows of the requirement catalog a scenario names, per spec
// and per level, so "PASSED" can be read against how much of the standard was judged. Rows that
// bind only clients are out of scope until client testing exists; rows the catalog calls
// untestable are listed with its reason; the field bugs with the scenarios that catch them.
#include <iomanip>
#include <iostream>
#include <map>
#include <set>

#include "commands.hpp"
#include "estlab/conformance/catalog.hpp"
#include "estlab/conformance/coverage.hpp"
#include "estlab/conformance/scenario.hpp"
#include "estlab/reports/json.hpp"
#include "paths.hpp"

namespace estlab::cli {
namespace {

struct CoverageOptions {
  std::string scenarios;
  std::string catalog;
  std::string format = "text";
  bool uncovered = false;
};

using conformance::CoverageState;

struct Tally {
  std::size_t gateway = 0, covered = 0, untestable = 0, client_side = 0;
  void add(CoverageState state) {
    if (state == CoverageState::client_side) ++client_side;
    else if (state == CoverageState::untestable) ++untestable;
    else {
      ++gateway;
      covered += state == CoverageState::covered;
    }
  }
  double percent() const { return gateway == 0 ? 100.0 : 100.0 * static_cast<double>(covered) / static_cast<double>(gateway); }
};

int coverage(const CoverageOptions& o) {
  const std::filesystem::path scenario_dir = o.scenarios.empty() ? builtin_scenario_dir() : std::filesystem::path(o.scenarios);
  const std::filesystem::path catalog_file = o.catalog.empty() ? builtin_data_dir("catalog") / "requirements.yaml" : std::filesystem::path(o.catalog);
  const auto catalog = conformance::Catalog::load(catalog_file);     // ConfigError -> exit 2
  const auto scenarios = conformance::load_scenarios(scenario_dir);  // ConfigError -> exit 2
  const auto coverage = conformance::catalog_coverage(catalog, scenarios);
  std::map<std::string, std::map<std::string, Tally>> by_spec;  // spec -> verdict level -> tally
  Tally total;
  for (const auto& row : coverage.rows) {
    by_spec[row.spec][row.verdict_level].add(row.state);
    by_spec[row.spec]["all"].add(row.state);
    total.add(row.state);
  }
  std::size_t bugs_covered = 0;
  for (const auto& bug : coverage.field_bugs) bugs_covered += !bug.scenarios.empty();
  auto id_list = [](const std::vector<std::string>& ids) {
    std::string out;
    for (const auto& id : ids) out += std::string(out.empty() ? "" : ", ") + reports::json_string(id);
    return out;
  };

  if (o.format == "json") {
    std::cout << "{\n  \"catalog\": " << reports::json_string(catalog_file.string()) << ",\n  \"scenarios\": " << scenarios.size()
              << ",\n  \"total\": {\"gateway_rows\": " << total.gateway << ", \"covered\": " << total.covered << ", \"percent\": "
              << std::fixed << std::setprecision(1) << total.percent() << ", \"untestable\": " << total.untestable
              << ", \"client_side\": " << total.client_side << "},\n  \"specs\": {";
    bool first_spec = true;
    for (const auto& [spec, levels] : by_spec) {
      std::cout << (first_spec ? "\n" : ",\n") << "    " << reports::json_string(spec) << ": {";
      bool first_level = true;
      for (const auto& [level, t] : levels) {
        std::cout << (first_level ? "" : ", ") << "\"" << level << "\": {\"gateway_rows\": " << t.gateway << ", \"covered\": " << t.covered
                  << ", \"percent\": " << t.percent() << ", \"untestable\": " << t.untestable << ", \"client_side\": " << t.client_side << "}";
        first_level = false;
      }
      std::cout << "}";
      first_spec = false;
    }
    std::cout << "\n  },\n  \"rows\": [";
    bool first_row = true;
    for (const auto& row : coverage.rows) {
      std::cout << (first_row ? "\n" : ",\n") << "    {\"id\": " << reports::json_string(row.id) << ", \"spec\": " << reports::json_string(row.spec)
                << ", \"level\": " << reports::json_string(row.level) << ", \"side\": \"" << row.side
                << "\", \"state\": \"" << to_string(row.state) << "\", \"scenarios\": [" << id_list(row.scenarios) << "]"
                << (row.state == CoverageState::untestable ? ", \"reason\": " + reports::json_string(row.reason) : std::string()) << "}";
      first_row = false;
    }
    std::cout << "\n  ],\n  \"field_bugs\": {\"total\": " << coverage.field_bugs.size() << ", \"covered\": " << bugs_covered << ", \"bugs\": [";
    bool first_bug = true;
    for (const auto& bug : coverage.field_bugs) {
      std::cout << (first_bug ? "\n" : ",\n") << "    {\"id\": " << reports::json_string(bug.id) << ", \"name\": " << reports::json_string(bug.name)
                << ", \"requirements\": [" << id_list(bug.requirements) << "], \"scenarios\": [" << id_list(bug.scenarios) << "]}";
      first_bug = false;
    }
    std::cout << "\n  ]}\n}\n";
    return kExitOk;
  }

  std::cout << "Coverage of the requirement catalog by " << scenarios.size() << " scenarios (" << catalog_file.string() << ")\n\n";
  std::cout << std::left << std::setw(18) << "spec" << std::setw(7) << "level" << std::right << std::setw(9) << "gateway" << std::setw(9)
            << "covered" << std::setw(8) << "%" << std::setw(12) << "untestable" << std::setw(13) << "client-side" << "\n";
  for (const auto& [spec, levels] : by_spec) {
    bool first_line = true;
    for (const char* level : {"fail", "warn", "info", "all"}) {
      auto it = levels.find(level);
      if (it == levels.end()) continue;
      const auto& t = it->second;
      const std::string shown = std::string(level) == "fail" ? "MUST" : std::string(level) == "warn" ? "SHOULD" : std::string(level) == "info" ? "MAY" : "all";
      std::cout << std::left << std::setw(18) << (first_line ? spec : "") << std::setw(7) << shown
                << std::right << std::setw(9) << t.gateway << std::setw(9) << t.covered << std::setw(7) << std::fixed << std::setprecision(0)
                << t.percent() << "%" << std::setw(12) << t.untestable << std::setw(13) << t.client_side << "\n";
      first_line = false;
    }
  }
  std::cout << std::left << std::setw(25) << "total" << std::right << std::setw(9) << total.gateway << std::setw(9) << total.covered
            << std::setw(7) << std::fixed << std::setprecision(0) << total.percent() << "%" << std::setw(12) << total.untestable
            << std::setw(13) << total.client_side << "\n";
  std::cout << "\nlevel: the row's verdict level (MUST fails, SHOULD warns, MAY is recorded); gateway: rows that bind the\n"
               "server or proxy; client-side rows are out of scope until client testing exists.\n";
  for (const auto& row : coverage.rows)
    if (row.state == CoverageState::untestable) std::cout << "untestable " << row.id << ": " << row.reason << "\n";
  std::cout << "\nfield bugs (field-bugs.md): " << bugs_covered << " of " << coverage.field_bugs.size() << " named by a scenario\n";
  for (const auto& bug : coverage.field_bugs) {
    std::string names;
    for (const auto& id : bug.scenarios) names += (names.empty() ? "" : ", ") + id;
    std::cout << "  " << std::left << std::setw(7) << bug.id << std::setw(36) << bug.name << (names.empty() ? "NOT COVERED" : names) << "\n";
  }
  if (o.uncovered) {
    std::cout << "\nnot covered:\n";
    for (const auto& row : coverage.rows)
      if (row.state == CoverageState::not_covered) std::cout << "  " << std::left << std::setw(16) << row.id << row.level << ": " << row.text << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_coverage(CLI::App& app, Action& action) {
  auto o = std::make_shared<CoverageOptions>();
  CLI::App* cmd = app.add_subcommand("coverage", "Which gateway-side rows of the requirement catalog the scenarios judge, per spec and level");
  cmd->add_option("--scenarios", o->scenarios, "Scenario directory (default: $ESTLAB_SCENARIOS, else the built-in set)");
  cmd->add_option("--catalog", o->catalog, "Requirement catalog (YAML) (default: the built-in one)");
  cmd->add_option("--format", o->format, "text or json")->capture_default_str()->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--uncovered", o->uncovered, "List the gateway-side rows no scenario names, with their text");
  cmd->footer("Exit codes: 0 the coverage was computed, 2 a broken catalog or scenario file (file:line: what).");
  cmd->callback([o, &action] { action = [o] { return coverage(*o); }; });
}

}  // namespace estlab::cli

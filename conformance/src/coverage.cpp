#include "estlab/conformance/coverage.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace estlab::conformance {

CatalogCoverage catalog_coverage(const Catalog& catalog, const std::vector<Scenario>& scenarios) {
  std::map<std::string, std::set<std::string>> named_by, bug_named_by;  // ID -> scenario ids
  for (const auto& s : scenarios) {
    for (const auto& r : s.named_requirements()) named_by[r].insert(s.id);
    for (const auto& bug : s.field_bugs) bug_named_by[bug].insert(s.id);
  }
  CatalogCoverage out;
  for (const auto& row : catalog.all()) {
    CoverageRow c;
    c.id = row.id;
    c.spec = row.spec;
    c.level = row.level;
    c.verdict_level = to_string(row.verdict_level);
    c.side = to_string(row.side);
    c.text = row.text;
    const auto& names = named_by[row.id];
    c.scenarios.assign(names.begin(), names.end());
    // A client-only row stays out of scope even if a scenario names it; an untestable row named by
    // a scenario is a contradiction the catalog test catches, so the catalog's word wins here.
    if (row.side == Side::client) c.state = CoverageState::client_side;
    else if (!row.untestable.empty()) {
      c.state = CoverageState::untestable;
      c.reason = row.untestable;
    } else c.state = names.empty() ? CoverageState::not_covered : CoverageState::covered;
    out.rows.push_back(std::move(c));
  }
  for (const auto& bug : catalog.field_bugs()) {
    FieldBugCoverage c;
    c.id = bug.id;
    c.name = bug.name;
    c.symptom = bug.symptom;
    c.requirements = bug.requirements;
    const auto& names = bug_named_by[bug.id];
    c.scenarios.assign(names.begin(), names.end());
    out.field_bugs.push_back(std::move(c));
  }
  return out;
}

}  // namespace estlab::conformance

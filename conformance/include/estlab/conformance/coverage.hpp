// The catalog against a set of scenarios: which gateway-side rows a scenario names, which the
// catalog calls untestable (with its reason), which bind clients only; and which field bugs a
// scenario names. One computation for `estlab coverage` and the reports.
#pragma once

#include <vector>

#include "estlab/conformance/catalog.hpp"
#include "estlab/conformance/result.hpp"
#include "estlab/conformance/scenario.hpp"

namespace estlab::conformance {

CatalogCoverage catalog_coverage(const Catalog& catalog, const std::vector<Scenario>& scenarios);

}  // namespace estlab::conformance

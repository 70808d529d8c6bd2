// JUnit XML as CI servers read it (Jenkins, GitLab, GitHub test reporters); valid against
// ../shared/junit/junit.xsd. One <testsuite> per spec ("RFC 7030", "protocol-gateway",
// "RFC 9148"), one <testcase> per scenario result.
#pragma once

#include <filesystem>
#include <string>

#include "estlab/conformance/result.hpp"
#include "estlab/core/result.hpp"

namespace estlab::reports {

// <testsuites name="estlab"> with totals; per spec a <testsuite> with tests/failures/errors/
// skipped/time/timestamp/hostname and properties (estlab version, target, profiles, readings);
// per scenario result <testcase name="ID[ [rep N]]" classname="estlab.SPEC.SECTION" time file line>
// with properties (requirement per ID, profile, transport), <failure type="assertion">,
// <error type="error"> or <skipped>, and the step summaries in <system-out>.
// classname is "estlab." + the spec without spaces + "." + the section with '.' as '_'
// ("estlab.RFC7030.4_2_1", "estlab.protocol-gateway.PG-ENR"), because CI servers split
// classnames at dots into a package tree.
std::string junit_xml(const conformance::RunResult& run);

Result<void> write_junit(const conformance::RunResult& run, const std::filesystem::path& path);

}  // namespace estlab::reports

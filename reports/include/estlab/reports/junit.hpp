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
// skipped/time/timestamp/hostname and properties (estlab version, target, profiles, seed, replay,
// strict, baseline, readings, count.V for each of the eight verdicts); per scenario result
// <testcase name="ID [PROFILE][ #N]" classname="estlab.SPEC.SECTION" time file line> with
// properties (verdict, scenario, requirement per ID, profile, transport, repetition, unique,
// baseline_reason, skipped_steps) and the outcome of its verdict (the mapping in
// reports/README.md):
//   pass   passed
//   info   passed; the recorded observations in <system-out>
//   warn   passed; the warning and its evidence in <system-out> (under --strict: <failure type="warn">)
//   skip   <skipped message="REASON">
//   xfail  <skipped message="xfail: BASELINE REASON">, the evidence inside
//   xpass  <failure type="xpass" message="xpass: the baseline says it fails (REASON) but it passed">
//   fail   <failure type="assertion" message="...">, checks, request and response inside
//   error  <error type="error" message="...">
// The step summaries follow in <system-out>. A testcase name is unique in the file: "ID
// [PROFILE]", " #N" for repetition N (1-based) after the first, and " (2)"... should two runs
// still share a name. classname is "estlab." + the spec without spaces + "." + the section with
// '.' as '_' ("estlab.RFC7030.4_2_1", "estlab.protocol-gateway.PG-ENR"), because CI servers split
// classnames at dots into a package tree.
std::string junit_xml(const conformance::RunResult& run);

Result<void> write_junit(const conformance::RunResult& run, const std::filesystem::path& path);

}  // namespace estlab::reports

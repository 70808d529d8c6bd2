#include "estlab/reports/console.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace estlab::reports::testing {
conformance::RunResult sample_run();

namespace {

using conformance::Verdict;

ConsoleReporter::Options plain() {
  ConsoleReporter::Options options;
  options.tty = false;
  options.color = false;
  return options;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void feed(ConsoleReporter& reporter, const conformance::RunResult& run) {
  const auto total = run.scenarios.size();
  for (std::size_t i = 0; i < total; ++i) {
    reporter.scenario_started(run.scenarios[i].id, total);
    reporter.scenario_finished(run.scenarios[i], i + 1, total);
  }
}

TEST(ConsoleReporterTest, PlainLinesWhenNotATerminal) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  feed(reporter, sample_run());
  const auto text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  const auto lines = lines_of(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "[ 1/13] PASS  cacerts-basic (rfc7030, https, 12 ms)");
  EXPECT_NE(text.find("\n[ 2/13] FAIL  enroll-revoked-refused (protocol-gateway, https, 12 ms)\n"), std::string::npos);
  EXPECT_NE(text.find("\n[ 4/13] SKIP  serverkeygen-encrypted (rfc7030, https, 12 ms): encrypted key delivery is not "
                      "implemented (501)\n"),
            std::string::npos);
  EXPECT_NE(text.find("\n[ 5/13] ERROR coaps-cacerts (rfc7030, coaps, 12 ms)\n"), std::string::npos);
  EXPECT_NE(text.find("\n[ 6/13] PASS  enroll-basic (rfc7030, https, 12 ms)\n"), std::string::npos);
  EXPECT_NE(text.find("\n[ 7/13] PASS  enroll-basic #2 (rfc7030, https, 12 ms)\n"), std::string::npos);
}

TEST(ConsoleReporterTest, EveryLevelHasItsLine) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  feed(reporter, sample_run());
  const auto text = out.str();
  // warn: the line, then its evidence at once (the evidence block carries the message).
  EXPECT_NE(text.find("\n[ 8/13] WARN  enroll-retry-after (rfc7030, https, 12 ms)\nWARN  enroll-retry-after  [rfc7030, "
                      "https]  7030-4.2.3-a, 7030-4.2.3-b\n"),
            std::string::npos)
      << text;
  // info: why, and what was recorded, without the exchange.
  EXPECT_NE(text.find("\n[ 9/13] INFO  csrattrs-optional (rfc7030, https, 12 ms): csrattrs: 204 No Content (none "
                      "offered)\n    info  csrattrs offered: 204 No Content (7030-4.5.2-a, MAY)\n[10/13]"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("GET /.well-known/est/csrattrs"), std::string::npos);
  // xfail: known, one line with the baseline's reason and no evidence.
  EXPECT_NE(text.find("\n[10/13] XFAIL enroll-wrong-content-type (protocol-gateway, https, 12 ms): step 1 (line 8): "
                      "status: expected 415, got 200 (baseline: vendor bug 12: answers 200 to text/plain)\n[11/13]"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("Content-Type: text/plain"), std::string::npos);
  // xpass: the stale baseline entry is shown at once.
  EXPECT_NE(text.find("\n[11/13] XPASS pg-enr-4-last-issued-only (protocol-gateway, https, 12 ms)\nXPASS "
                      "pg-enr-4-last-issued-only  [protocol-gateway, https]  PG-ENR-4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  baseline: PG-ENR-4 is not implemented before firmware 2.3 (listed as failing, but it passed: "
                      "the baseline entry is stale)\n"),
            std::string::npos)
      << text;
  // A partially skipped run says so.
  EXPECT_NE(text.find("\n[12/13] PASS  revoked-at-ca-then-refused (protocol-gateway, https, 12 ms) [1 of 2 steps "
                      "skipped]\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n[13/13] SKIP  serverkeygen-revoked-role (protocol-gateway, https, 12 ms): the target lacks "
                      "feature 'serverkeygen', an identity for role 'device-revoked'\n"),
            std::string::npos)
      << text;
}

TEST(ConsoleReporterTest, WarningPrintedAtOnceWithChecksLevelsRequestAndResponse) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  const auto run = sample_run();
  reporter.scenario_finished(run.scenarios[7], 8, 13);
  const auto text = out.str();
  const auto head = text.find("WARN  enroll-retry-after  [rfc7030, https]");
  const auto message = text.find("\n  step 2 (line 9): no Retry-After with 202\n");
  const auto unique = text.find("\n  unique: u1234-7\n");
  const auto step = text.find("\n  step 2, line 9, send: POST simpleenroll as device-pending\n    warn: no Retry-After "
                              "with 202\n");
  const auto checks = text.find("    checks:\n      pass  status 202 == 202 (7030-4.2.3-a, MUST)\n      warn  "
                                "Retry-After header present (7030-4.2.3-b, SHOULD)\n");
  const auto request = text.find("    request (https TLSv1.3 as device-pending):\n      POST /.well-known/est/simpleenroll");
  const auto response = text.find("    response:\n      HTTP/1.1 202 Accepted\n");
  for (const auto at : {head, message, unique, step, checks, request, response}) ASSERT_NE(at, std::string::npos) << text;
  EXPECT_LT(head, message);
  EXPECT_LT(message, step);
  EXPECT_LT(step, checks);
  EXPECT_LT(checks, request);
  EXPECT_LT(request, response);
  EXPECT_EQ(text.find("wait 1 s"), std::string::npos);  // passing steps are not evidence
}

TEST(ConsoleReporterTest, EachLevelHasItsOwnColour) {
  const auto run = sample_run();
  std::set<std::string> colours;
  for (const Verdict verdict : {Verdict::pass, Verdict::info, Verdict::warn, Verdict::skip, Verdict::xfail,
                                Verdict::xpass, Verdict::fail, Verdict::error}) {
    auto scenario = run.scenarios[0];
    scenario.verdict = verdict;
    std::ostringstream out;
    auto options = plain();
    options.color = true;
    ConsoleReporter reporter(out, options);
    reporter.scenario_finished(scenario, 1, 1);
    std::string word = to_string(verdict);
    for (auto& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    word.resize(5, ' ');
    const std::regex painted("\x1b\\[([0-9;]+)m" + word + "\x1b\\[0m");
    std::smatch match;
    const auto text = out.str();
    ASSERT_TRUE(std::regex_search(text, match, painted)) << word << ": " << text;
    colours.insert(match[1].str());
  }
  EXPECT_EQ(colours.size(), 8u);  // no two levels look alike
}

TEST(ConsoleReporterTest, FailurePrintedAtOnceWithChecksThenRequestThenResponse) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  const auto run = sample_run();
  reporter.scenario_finished(run.scenarios[1], 2, 7);
  const auto text = out.str();
  const auto head = text.find("FAIL  enroll-revoked-refused  [protocol-gateway, https]  PG-ENR-3\n");
  const auto checks = text.find("checks:\n      fail  status 200 == 403 (PG-ENR-3, MUST)\n");
  const auto request = text.find("request (https TLSv1.3 as device-revoked):\n      POST /.well-known/est/simpleenroll");
  const auto response = text.find("response:\n      HTTP/1.1 200 OK\n");
  ASSERT_NE(head, std::string::npos) << text;
  ASSERT_NE(checks, std::string::npos) << text;
  ASSERT_NE(request, std::string::npos) << text;
  ASSERT_NE(response, std::string::npos) << text;
  EXPECT_LT(head, checks);
  EXPECT_LT(checks, request);
  EXPECT_LT(request, response);
  EXPECT_NE(text.find("  at conformance/scenarios/enroll-revoked-refused.yaml:1\n"), std::string::npos);
  EXPECT_NE(text.find("  status: expected 403, got 200 \\x01\n"), std::string::npos) << text;
  // The target's bytes never reach the terminal as control sequences.
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("\\x1B[31mred"), std::string::npos);
  EXPECT_EQ(text.find("decoded"), std::string::npos);  // in the HTML and JSON reports
}

TEST(ConsoleReporterTest, ErrorWithoutExchangeShowsTheStep) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.scenario_finished(sample_run().scenarios[4], 5, 7);
  EXPECT_NE(out.str().find("step 1, line 3, connect: DTLS as anonymous\n    error: DTLS handshake timed out after 5000 ms\n"),
            std::string::npos)
      << out.str();
}

TEST(ConsoleReporterTest, EvidenceIsCutAtTheConfiguredLines) {
  auto run = sample_run();
  auto& exchange = *run.scenarios[1].steps[1].exchange;
  exchange.response.clear();
  for (int i = 1; i <= 200; ++i) exchange.response += "header-" + std::to_string(i) + ": x\r\n";
  exchange.request = std::string(5000, 'A');
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.scenario_finished(run.scenarios[1], 1, 1);
  const auto text = out.str();
  EXPECT_NE(text.find("header-60: x\n"), std::string::npos);
  EXPECT_EQ(text.find("header-61: x"), std::string::npos);
  EXPECT_NE(text.find("... 140 more lines"), std::string::npos) << text;
  EXPECT_NE(text.find(std::string(200, 'A') + "... (+4800 bytes)"), std::string::npos);
  EXPECT_LT(lines_of(text).size(), 80u);
}

TEST(ConsoleReporterTest, ProgressBarOnATerminal) {
  std::ostringstream out;
  auto options = plain();
  options.tty = true;
  options.width = 60;
  ConsoleReporter reporter(out, options);
  const auto run = sample_run();
  reporter.scenario_started("cacerts-basic", 4);
  reporter.scenario_finished(run.scenarios[0], 1, 4);
  const auto text = out.str();
  EXPECT_NE(text.find("\r[....................] 0/4  cacerts-basic\x1b[K"), std::string::npos) << text;
  EXPECT_NE(text.find("\r[#####...............] 1/4  cacerts-basic\x1b[K"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos);  // one line, redrawn

  out.str("");
  reporter.scenario_finished(run.scenarios[1], 2, 4);
  const auto failed = out.str();
  EXPECT_EQ(failed.rfind("\r\x1b[KFAIL  enroll-revoked-refused", 0), 0u) << failed;  // bar cleared first
  EXPECT_NE(failed.find("\r[##########..........] 2/4  1 failed  enroll-revoked-ref...\x1b[K"), std::string::npos)
      << failed;

  // Never wider than the terminal.
  out.str("");
  auto long_one = run.scenarios[0];
  long_one.id = std::string(100, 'x');
  reporter.scenario_finished(long_one, 3, 4);
  const auto drawn = out.str();
  EXPECT_EQ(drawn.find("\x1b[K"), drawn.size() - 3);
  EXPECT_LE(drawn.size() - 4, 60u) << drawn;  // \r and \x1b[K take no columns
  EXPECT_NE(drawn.find("xxx..."), std::string::npos);

  out.str("");
  reporter.summary(run);
  EXPECT_EQ(out.str().rfind("\r\x1b[K", 0), 0u);  // the summary starts on a clean line
}

TEST(ConsoleReporterTest, ProgressBarCountsWarningsApartFromFailures) {
  std::ostringstream out;
  auto options = plain();
  options.tty = true;
  options.width = 80;
  ConsoleReporter reporter(out, options);
  const auto run = sample_run();
  reporter.scenario_finished(run.scenarios[1], 1, 4);   // fail
  reporter.scenario_finished(run.scenarios[7], 2, 4);   // warn
  reporter.scenario_finished(run.scenarios[10], 3, 4);  // xpass
  reporter.scenario_finished(run.scenarios[9], 4, 4);   // xfail: neither
  const auto text = out.str();
  EXPECT_NE(text.find("] 4/4  1 failed  2 warned  "), std::string::npos) << text;
  EXPECT_NE(text.find("\r\x1b[KWARN  enroll-retry-after"), std::string::npos) << text;  // evidence at once
  EXPECT_NE(text.find("\r\x1b[KXPASS pg-enr-4-last-issued-only"), std::string::npos) << text;
  EXPECT_EQ(text.find("XFAIL"), std::string::npos) << text;
}

TEST(ConsoleReporterTest, ColourOnlyWhenAskedFor) {
  const auto run = sample_run();
  std::ostringstream out;
  auto options = plain();
  options.color = true;
  ConsoleReporter coloured(out, options);
  coloured.scenario_finished(run.scenarios[1], 1, 1);
  EXPECT_NE(out.str().find("\x1b[1;31mFAIL \x1b[0m"), std::string::npos);
  // A stream that is not std::cout/std::cerr is never a terminal.
  std::ostringstream other;
  const auto detected = ConsoleReporter::detect(other);
  EXPECT_FALSE(detected.tty);
  EXPECT_FALSE(detected.color);
}

TEST(ConsoleReporterTest, SummaryLeadsWithSkipsThenCountsEveryLevelAndTheSeed) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.summary(sample_run());
  const auto text = out.str();
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 6u) << text;
  EXPECT_EQ(lines[0],
            "SKIPPED 3 scenario runs (1 partially) \xE2\x80\x94 the target lacks: an identity for role 'device-revoked' (1), "
            "control 'revoke' (1), feature 'serverkeygen' (1); other reasons: encrypted key delivery is not "
            "implemented (501) (1)");
  EXPECT_EQ(lines[1], "13 scenarios: 5 passed, 1 info, 1 warn, 2 skipped, 1 xfail, 1 xpass, 1 failed, 1 error in 1.234 s  "
                      "FAILED");
  EXPECT_EQ(lines[2], "seed 1234 (replay with --seed 1234), baseline ci/baseline.txt");
  EXPECT_EQ(lines[3], "failed: enroll-revoked-refused [protocol-gateway], coaps-cacerts [rfc7030]");
  EXPECT_EQ(lines[4], "xpass (stale baseline entries): pg-enr-4-last-issued-only [protocol-gateway]");
  EXPECT_EQ(lines[5], "warnings: enroll-retry-after [rfc7030]");
}

TEST(ConsoleReporterTest, SummaryBySectionAndProfileWithTotalsAndReadings) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.summary(sample_run());
  const auto text = out.str();
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 20u) << text;
  EXPECT_EQ(lines[7], "Results by spec section and profile");
  EXPECT_EQ(lines[8], "                                                                  rfc7030                       "
                      "           protocol-gateway");
  EXPECT_EQ(lines[9], "spec / section             pass  info  warn  skip xfail xpass  fail error    pass  info  warn  "
                      "skip xfail xpass  fail error");
  EXPECT_EQ(lines[10], "RFC 7030 4.1.2                1     -     -     -     -     -     -     -       -     -     -  "
                       "   -     -     -     -     -");
  EXPECT_EQ(lines[11], "RFC 7030 4.2.1                2     -     -     -     -     -     -     -       -     -     -  "
                       "   -     1     -     -     -");
  EXPECT_EQ(lines[12], "RFC 7030 4.2.3                -     -     1     -     -     -     -     -       -     -     -  "
                       "   -     -     -     -     -");
  EXPECT_EQ(lines[15], "RFC 7030 4.5.2                -     1     -     -     -     -     -     -       -     -     -  "
                       "   -     -     -     -     -");
  EXPECT_EQ(lines[16], "RFC 9148 2                    -     -     -     -     -     -     -     1       -     -     -  "
                       "   -     -     -     -     -");
  EXPECT_EQ(lines[17], "protocol-gateway PG-ENR       1     -     -     -     -     -     -     -       -     -     -  "
                       "   -     -     1     1     -");
  EXPECT_EQ(lines[19], "total                         4     1     1     1     -     -     -     1       1     -     -  "
                       "   1     1     1     1     -");
  EXPECT_NE(text.find("\ntarget: embedded lab, estlab 0.1.0, started 2025-01-02T03:04:05Z\n"), std::string::npos);
  EXPECT_NE(text.find("\nreadings:\n  PG-ENR-4 polarity: documented\n  TLS 1.3 linking: exporter (RFC 9266)\n"),
            std::string::npos);
}

TEST(ConsoleReporterTest, SummaryOfAPassingRun) {
  auto run = sample_run();
  run.scenarios.resize(1);
  run.baseline.clear();
  run.seed = 42;
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.summary(run);
  const auto lines = lines_of(out.str());
  ASSERT_GE(lines.size(), 6u) << out.str();
  EXPECT_EQ(lines[0], "SKIPPED 0 scenario runs");
  EXPECT_EQ(lines[1], "1 scenarios: 1 passed, 0 info, 0 warn, 0 skipped, 0 xfail, 0 xpass, 0 failed, 0 errors in 1.234 s  "
                      "PASSED");
  EXPECT_EQ(lines[2], "seed 42 (replay with --seed 42)");
  // Only the levels that occur (pass and fail always); a group as wide as its profile's name.
  EXPECT_EQ(lines[5], "                     rfc7030  protocol-gateway");
  EXPECT_EQ(lines[6], "spec / section    pass  fail        pass  fail");
  EXPECT_EQ(lines[7], "RFC 7030 4.1.2       1     -           -     -");
  EXPECT_EQ(out.str().find("failed:"), std::string::npos);
  EXPECT_EQ(out.str().find("warnings:"), std::string::npos);
}

TEST(ConsoleReporterTest, StrictRunFailsOnAWarning) {
  auto run = sample_run();
  run.scenarios = {run.scenarios[0], run.scenarios[7]};
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.summary(run);
  EXPECT_NE(out.str().find("0 errors in 1.234 s  PASSED\n"), std::string::npos) << out.str();
  run.strict = true;
  out.str("");
  reporter.summary(run);
  EXPECT_NE(out.str().find("0 errors in 1.234 s  FAILED\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("\nseed 1234 (replay with --seed 1234), --strict (warn and xpass count as failures), baseline "
                           "ci/baseline.txt\n"),
            std::string::npos)
      << out.str();
}

// Parallel workers (-j) report at once; every line stays whole and every result is counted.
TEST(ConsoleReporterTest, ThreadSafe) {
  const auto run = sample_run();
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  constexpr std::size_t kThreads = 8, kEach = 50, kTotal = kThreads * kEach;
  std::atomic<std::size_t> done{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < kEach; ++i) {
        const auto& scenario = run.scenarios[(t + i) % 2 == 0 ? 0 : 3];  // pass and skip
        reporter.scenario_started(scenario.id, kTotal);
        reporter.scenario_finished(scenario, ++done, kTotal);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), kTotal);
  const std::regex line(R"(\[ *\d+/400\] (PASS  cacerts-basic|SKIP  serverkeygen-encrypted) \(rfc7030, https, 12 ms\).*)");
  for (const auto& l : lines) EXPECT_TRUE(std::regex_match(l, line)) << l;
}

// The catalog's words stand beside the rows that did not hold, and only those.
TEST(ConsoleRequirementTexts, EvidenceNamesTheBrokenRowsInTheCatalogsWords) {
  conformance::ScenarioResult s;
  s.id = "csrattrs-anonymous";
  s.profile = "rfc7030";
  s.requirements = {"7030-4.5-a", "7030-4.5.2-b"};
  s.verdict = Verdict::fail;
  conformance::StepResult step;
  step.verdict = Verdict::fail;
  step.checks = {{"status 200", Verdict::pass, "7030-4.5-a", "MUST"},
                 {"the body is base64 of a DER CsrAttrs", Verdict::fail, "7030-4.5.2-b", "MUST"}};
  s.steps = {step};
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.set_requirement_texts({{"7030-4.5-a", "MUST: csrattrs is served"}, {"7030-4.5.2-b", "MUST: the body is base64 DER CsrAttrs"}});
  reporter.scenario_finished(s, 1, 1);
  EXPECT_NE(out.str().find("  7030-4.5.2-b: MUST: the body is base64 DER CsrAttrs\n"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("csrattrs is served"), std::string::npos) << "a row that held is not spelled out\n" << out.str();
}

}  // namespace
}  // namespace estlab::reports::testing

#include "estlab/reports/console.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <regex>
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
  EXPECT_EQ(lines[0], "[1/7] PASS  cacerts-basic (rfc7030, https, 12 ms)");
  EXPECT_NE(text.find("\n[2/7] FAIL  enroll-revoked-refused (protocol-gateway, https, 12 ms)\n"), std::string::npos);
  EXPECT_NE(text.find("\n[4/7] SKIP  serverkeygen-encrypted (rfc7030, https, 12 ms): encrypted key delivery is not "
                      "implemented (501)\n"),
            std::string::npos);
  EXPECT_NE(text.find("\n[5/7] ERROR coaps-cacerts (rfc7030, coaps, 12 ms)\n"), std::string::npos);
  EXPECT_NE(text.find("\n[7/7] PASS  enroll-basic [rep 1] (rfc7030, https, 12 ms)\n"), std::string::npos);
}

TEST(ConsoleReporterTest, FailurePrintedAtOnceWithChecksThenRequestThenResponse) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  const auto run = sample_run();
  reporter.scenario_finished(run.scenarios[1], 2, 7);
  const auto text = out.str();
  const auto head = text.find("FAIL  enroll-revoked-refused  [protocol-gateway, https]  PG-ENR-3\n");
  const auto checks = text.find("checks:\n      status 200 == 403\n");
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

TEST(ConsoleReporterTest, SummaryBySectionAndProfileWithTotalsAndReadings) {
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.summary(sample_run());
  const auto text = out.str();
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 12u) << text;
  EXPECT_EQ(lines[0], "Results by spec section and profile");
  EXPECT_EQ(lines[1], "                                          rfc7030          protocol-gateway");
  EXPECT_EQ(lines[2], "spec / section             pass  fail  skip error    pass  fail  skip error");
  EXPECT_EQ(lines[3], "RFC 7030 4.1.2                1     -     -     -       -     -     -     -");
  EXPECT_EQ(lines[4], "RFC 7030 4.2.1                2     -     -     -       -     -     -     -");
  EXPECT_EQ(lines[5], "RFC 7030 4.4.2                -     -     1     -       -     -     -     -");
  EXPECT_EQ(lines[6], "RFC 9148 2                    -     -     -     1       -     -     -     -");
  EXPECT_EQ(lines[7], "protocol-gateway PG-ENR       1     -     -     -       -     1     -     -");
  EXPECT_EQ(lines[8], "total                         4     -     1     1       -     1     -     -");
  EXPECT_NE(text.find("\n7 scenarios: 4 passed, 1 failed, 1 skipped, 1 error in 1.234 s  FAILED\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\nfailed: enroll-revoked-refused [protocol-gateway], coaps-cacerts [rfc7030]\n"),
            std::string::npos);
  EXPECT_NE(text.find("\ntarget: embedded lab, estlab 0.1.0, started 2025-01-02T03:04:05Z\n"), std::string::npos);
  EXPECT_NE(text.find("\nreadings:\n  PG-ENR-4 polarity: documented\n  TLS 1.3 linking: exporter (RFC 9266)\n"),
            std::string::npos);
}

TEST(ConsoleReporterTest, SummaryOfAPassingRun) {
  auto run = sample_run();
  run.scenarios.resize(1);
  std::ostringstream out;
  ConsoleReporter reporter(out, plain());
  reporter.summary(run);
  EXPECT_NE(out.str().find("1 scenarios: 1 passed, 0 failed, 0 skipped, 0 errors in 1.234 s  PASSED\n"),
            std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("failed:"), std::string::npos);
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

}  // namespace
}  // namespace estlab::reports::testing

// The result model's functions, and the sample run and helpers the other report tests share
// (declared in each of them: tests/reports holds only *_test.cpp files).
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include "estlab/conformance/result.hpp"

namespace estlab::reports::testing {

using conformance::CheckResult;
using conformance::Exchange;
using conformance::RunResult;
using conformance::ScenarioResult;
using conformance::StepResult;
using conformance::Verdict;

struct CommandResult {
  int status = -1;  // the exit status; -1 when it could not run
  std::string output;
};

namespace {

StepResult step(std::size_t index, int line, std::string kind, std::string summary, Verdict verdict = Verdict::pass) {
  StepResult s;
  s.index = index;
  s.line = line;
  s.kind = std::move(kind);
  s.summary = std::move(summary);
  s.verdict = verdict;
  s.elapsed_ms = 1.5;
  return s;
}

CheckResult check(std::string what, Verdict verdict, std::string requirement, std::string level) {
  return CheckResult{std::move(what), verdict, std::move(requirement), std::move(level)};
}

ScenarioResult scenario(std::string id, std::string profile, std::string spec, std::string section,
                        std::vector<std::string> requirements, Verdict verdict) {
  ScenarioResult s;
  s.id = std::move(id);
  s.title = "title of " + s.id;
  s.file = "conformance/scenarios/" + s.id + ".yaml";
  s.line = 1;
  s.profile = std::move(profile);
  s.transport = "https";
  s.spec = std::move(spec);
  s.section = std::move(section);
  s.requirements = std::move(requirements);
  s.verdict = verdict;
  s.elapsed_ms = 12.25;
  return s;
}

}  // namespace

// Thirteen results, every level: 5 pass (one of them partially skipped), 1 info, 1 warn, 2 skip,
// 1 xfail, 1 xpass, 1 fail, 1 error; two profiles; three specs; one ID under both profiles, one
// ID repeated; evidence with quotes, markup, a script, non-ASCII, control characters, a terminal
// escape, a byte that is not UTF-8 and CRLF. The first seven are the four levels there were
// before (indexes 0-6); 7-12 the new ones.
RunResult sample_run() {
  RunResult run;
  run.estlab_version = "0.1.0";
  run.target = "embedded lab";
  run.started_at = "2025-01-02T03:04:05Z";
  run.elapsed_ms = 1234.5;
  run.profiles = {"rfc7030", "protocol-gateway"};
  run.readings = {{"PG-ENR-4 polarity", "documented"}, {"TLS 1.3 linking", "exporter (RFC 9266)"}};
  run.seed = 1234;
  run.baseline = "ci/baseline.txt";

  auto cacerts = scenario("cacerts-basic", "rfc7030", "RFC 7030", "4.1.2", {"7030-4.1.2-a", "7030-4.1.3-a"}, Verdict::pass);
  cacerts.steps.push_back(step(0, 5, "connect", "TLS as anonymous"));
  auto get = step(1, 7, "send", "GET cacerts");
  get.checks = {check("status 200 == 200", Verdict::pass, "7030-4.1.2-a", "MUST"),
                check("media type certs-only", Verdict::pass, "7030-4.1.3-a", "MUST")};
  get.exchange = Exchange{"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Type: application/pkcs7-mime\r\n\r\nMIIB...", "", "https TLSv1.3", 3.0};
  cacerts.steps.push_back(get);
  run.scenarios.push_back(cacerts);

  auto revoked = scenario("enroll-revoked-refused", "protocol-gateway", "protocol-gateway", "PG-ENR", {"PG-ENR-3"},
                          Verdict::fail);
  revoked.title = "Revoked \"device\" <refused> & logged \xE2\x80\x94 Gr\xC3\xBC\xC3\x9F" "e \xC3\x9C" "BER";
  revoked.message = "status: expected 403, got 200 \x01";
  revoked.steps.push_back(step(0, 10, "connect", "TLS as device-revoked"));
  auto post = step(1, 12, "send", "POST simpleenroll as device-revoked", Verdict::fail);
  post.message = "status: expected 403, got 200 \x01";
  post.checks = {check("status 200 == 403", Verdict::fail, "PG-ENR-3", "MUST"),
                 check("body contains \"PG-ENR-3\"", Verdict::fail, "", "MUST")};
  post.exchange = Exchange{
      "POST /.well-known/est/simpleenroll HTTP/1.1\r\nContent-Type: application/pkcs10\r\n\r\nMIIC<csr>&amp;",
      "HTTP/1.1 200 OK\r\nX-Odd: \x1b[31mred\x1b[0m \xFF\xFE tab\there\r\n\r\n<script>alert('x')</script> & \"quoted\" "
      "\xE2\x9C\x93 \xF0\x9F\x98\x80 \x01\x02\x7F",
      "Certificate:\n    Subject: CN=device-revoked", "https TLSv1.3 as device-revoked", 4.0};
  revoked.steps.push_back(post);
  run.scenarios.push_back(revoked);

  auto revoked_7030 = scenario("enroll-revoked-refused", "rfc7030", "protocol-gateway", "PG-ENR", {"PG-ENR-3"},
                               Verdict::pass);
  run.scenarios.push_back(revoked_7030);

  auto keygen = scenario("serverkeygen-encrypted", "rfc7030", "RFC 7030", "4.4.2", {"7030-4.4.2-a"}, Verdict::skip);
  keygen.message = "encrypted key delivery is not implemented (501)";
  run.scenarios.push_back(keygen);

  auto coaps = scenario("coaps-cacerts", "rfc7030", "RFC 9148", "2", {"9148-2-a"}, Verdict::error);
  coaps.transport = "coaps";
  coaps.message = "connect: DTLS handshake timed out";
  auto dtls = step(0, 3, "connect", "DTLS as anonymous", Verdict::error);
  dtls.message = "DTLS handshake timed out after 5000 ms";
  coaps.steps.push_back(dtls);
  run.scenarios.push_back(coaps);

  for (int rep = 0; rep < 2; ++rep) {
    auto enroll = scenario("enroll-basic", "rfc7030", "RFC 7030", "4.2.1", {"7030-4.2.1-a", "7030-4.10-a"}, Verdict::pass);
    enroll.repetition = rep;
    run.scenarios.push_back(enroll);
  }

  // 7: a SHOULD that did not hold.
  auto retry = scenario("enroll-retry-after", "rfc7030", "RFC 7030", "4.2.3", {"7030-4.2.3-a", "7030-4.2.3-b"},
                        Verdict::warn);
  retry.message = "step 2 (line 9): no Retry-After with 202";
  retry.unique = "u1234-7";
  retry.steps.push_back(step(0, 4, "connect", "TLS as device-pending"));
  auto pending = step(1, 9, "send", "POST simpleenroll as device-pending", Verdict::warn);
  pending.message = "no Retry-After with 202";
  pending.checks = {check("status 202 == 202", Verdict::pass, "7030-4.2.3-a", "MUST"),
                    check("Retry-After header present", Verdict::warn, "7030-4.2.3-b", "SHOULD")};
  pending.exchange = Exchange{"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: pending.example\r\n\r\nMIIC",
                              "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", "", "https TLSv1.3 as device-pending", 2.0};
  retry.steps.push_back(pending);
  retry.steps.push_back(step(2, 11, "wait", "wait 1 s"));
  run.scenarios.push_back(retry);

  // 8: an observation the catalog only records.
  auto csrattrs = scenario("csrattrs-optional", "rfc7030", "RFC 7030", "4.5.2", {"7030-4.5.2-a"}, Verdict::info);
  csrattrs.message = "csrattrs: 204 No Content (none offered)";
  auto attrs = step(0, 6, "send", "GET csrattrs", Verdict::info);
  attrs.checks = {check("csrattrs offered: 204 No Content", Verdict::info, "7030-4.5.2-a", "MAY")};
  attrs.exchange = Exchange{"GET /.well-known/est/csrattrs HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "",
                            "https TLSv1.3 as anonymous", 1.0};
  csrattrs.steps.push_back(attrs);
  run.scenarios.push_back(csrattrs);

  // 9: failed as the baseline says it is known to.
  auto content_type = scenario("enroll-wrong-content-type", "protocol-gateway", "RFC 7030", "4.2.1", {"7030-4.2.1-a"},
                               Verdict::xfail);
  content_type.message = "step 1 (line 8): status: expected 415, got 200";
  content_type.baseline_reason = "vendor bug 12: answers 200 to text/plain";
  auto wrong = step(0, 8, "send", "POST simpleenroll as text/plain", Verdict::fail);
  wrong.message = "status: expected 415, got 200";
  wrong.checks = {check("status 200 == 415", Verdict::fail, "7030-4.2.1-a", "MUST")};
  wrong.exchange = Exchange{"POST /.well-known/est/simpleenroll HTTP/1.1\r\nContent-Type: text/plain\r\n\r\nhello",
                            "HTTP/1.1 200 OK\r\n\r\n", "", "https TLSv1.3 as device-factory", 2.0};
  content_type.steps.push_back(wrong);
  run.scenarios.push_back(content_type);

  // 10: passed although the baseline says it fails.
  auto last_issued = scenario("pg-enr-4-last-issued-only", "protocol-gateway", "protocol-gateway", "PG-ENR", {"PG-ENR-4"},
                              Verdict::xpass);
  last_issued.message = "passed; the baseline lists it as failing";
  last_issued.baseline_reason = "PG-ENR-4 is not implemented before firmware 2.3";
  auto reenroll = step(0, 14, "send", "POST simplereenroll with the older certificate");
  reenroll.checks = {check("status 403 == 403", Verdict::pass, "PG-ENR-4", "MUST")};
  last_issued.steps.push_back(reenroll);
  run.scenarios.push_back(last_issued);

  // 11: passed what it could judge, skipped a step the target has no control for.
  auto revoke = scenario("revoked-at-ca-then-refused", "protocol-gateway", "protocol-gateway", "PG-REV", {"PG-REV-1"},
                         Verdict::pass);
  revoke.steps.push_back(step(0, 3, "send", "POST simpleenroll as device-factory"));
  auto control = step(1, 5, "control", "control revoke", Verdict::skip);
  control.message = "the target has no 'revoke' control";
  revoke.steps.push_back(control);
  run.scenarios.push_back(revoke);

  // 12: the target lacks what the scenario needs.
  auto keygen_role = scenario("serverkeygen-revoked-role", "protocol-gateway", "RFC 7030", "4.4.1", {"7030-4.4.1-a"},
                              Verdict::skip);
  keygen_role.message = "the target lacks feature 'serverkeygen', an identity for role 'device-revoked'";
  run.scenarios.push_back(keygen_role);
  return run;
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool have_tool(const std::string& name) { return run_command("command -v " + name + " >/dev/null").status == 0; }

// A fresh directory for one test, removed by the next run of the same test.
std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("estlab-reports-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

namespace {

TEST(VerdictTest, StableStrings) {
  EXPECT_STREQ(to_string(Verdict::pass), "pass");
  EXPECT_STREQ(to_string(Verdict::info), "info");
  EXPECT_STREQ(to_string(Verdict::warn), "warn");
  EXPECT_STREQ(to_string(Verdict::skip), "skip");
  EXPECT_STREQ(to_string(Verdict::xfail), "xfail");
  EXPECT_STREQ(to_string(Verdict::xpass), "xpass");
  EXPECT_STREQ(to_string(Verdict::fail), "fail");
  EXPECT_STREQ(to_string(Verdict::error), "error");
  for (const char* name : {"pass", "info", "warn", "skip", "xfail", "xpass", "fail", "error"}) {
    const auto parsed = conformance::parse_verdict(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_STREQ(to_string(*parsed), name);
  }
  EXPECT_FALSE(conformance::parse_verdict("PASS").has_value());
}

TEST(RunResultTest, CountsEachVerdict) {
  const auto run = sample_run();
  ASSERT_EQ(run.scenarios.size(), 13u);
  EXPECT_EQ(run.count(Verdict::pass), 5u);
  EXPECT_EQ(run.count(Verdict::info), 1u);
  EXPECT_EQ(run.count(Verdict::warn), 1u);
  EXPECT_EQ(run.count(Verdict::skip), 2u);
  EXPECT_EQ(run.count(Verdict::xfail), 1u);
  EXPECT_EQ(run.count(Verdict::xpass), 1u);
  EXPECT_EQ(run.count(Verdict::fail), 1u);
  EXPECT_EQ(run.count(Verdict::error), 1u);
  EXPECT_EQ(run.partially_skipped(), 1u);
  EXPECT_EQ(run.scenarios[11].skipped_steps(), 1u);
}

TEST(RunResultTest, AllPassedIgnoresSkipsButNotErrors) {
  RunResult run;
  EXPECT_TRUE(run.all_passed());
  run.scenarios.resize(2);
  run.scenarios[1].verdict = Verdict::skip;
  EXPECT_TRUE(run.all_passed());
  run.scenarios[0].verdict = Verdict::error;
  EXPECT_FALSE(run.all_passed());
  run.scenarios[0].verdict = Verdict::fail;
  EXPECT_FALSE(run.all_passed());
  EXPECT_FALSE(sample_run().all_passed());
}

}  // namespace
}  // namespace estlab::reports::testing

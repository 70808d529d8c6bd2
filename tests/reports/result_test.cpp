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

// Seven results: 4 pass, 1 fail, 1 skip, 1 error; two profiles; three specs; one ID under both
// profiles, one ID repeated; evidence with quotes, markup, a script, non-ASCII, control
// characters, a terminal escape, a byte that is not UTF-8 and CRLF.
RunResult sample_run() {
  RunResult run;
  run.estlab_version = "0.1.0";
  run.target = "embedded lab";
  run.started_at = "2025-01-02T03:04:05Z";
  run.elapsed_ms = 1234.5;
  run.profiles = {"rfc7030", "protocol-gateway"};
  run.readings = {{"PG-ENR-4 polarity", "documented"}, {"TLS 1.3 linking", "exporter (RFC 9266)"}};

  auto cacerts = scenario("cacerts-basic", "rfc7030", "RFC 7030", "4.1.2", {"7030-4.1.2-a", "7030-4.1.3-a"}, Verdict::pass);
  cacerts.steps.push_back(step(0, 5, "connect", "TLS as anonymous"));
  auto get = step(1, 7, "send", "GET cacerts");
  get.checks = {"status 200 == 200", "media type certs-only"};
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
  post.checks = {"status 200 == 403", "body contains \"PG-ENR-3\""};
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
  EXPECT_STREQ(to_string(Verdict::fail), "fail");
  EXPECT_STREQ(to_string(Verdict::skip), "skip");
  EXPECT_STREQ(to_string(Verdict::error), "error");
}

TEST(RunResultTest, CountsEachVerdict) {
  const auto run = sample_run();
  EXPECT_EQ(run.count(Verdict::pass), 4u);
  EXPECT_EQ(run.count(Verdict::fail), 1u);
  EXPECT_EQ(run.count(Verdict::skip), 1u);
  EXPECT_EQ(run.count(Verdict::error), 1u);
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

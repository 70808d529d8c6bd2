// SIGKILL during issuance, at the level of the simulated CA: a child process issues certificates
// in a loop and reports each serial after issue() returned; the parent kills it at an arbitrary
// moment, reopens the CA and checks that the store is intact, that every reported certificate is
// there and chains, and that no serial is ever handed out twice. Three kill cycles on one file.
#include "estlab/ca/ca.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "estlab/core/verify.hpp"

namespace estlab::ca {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr long long kStart = 1'767'225'600;  // 2026-01-01T00:00:00Z
constexpr std::size_t kSerialsPerCycle = 100;
constexpr int kCycles = 3;
constexpr int kIssuedAfterReopen = 20;
constexpr auto kReportDeadline = std::chrono::seconds(60);
constexpr auto kDrainDeadline = std::chrono::seconds(10);
constexpr auto kReapDeadline = std::chrono::seconds(10);

// Exit codes of the child, so a failure in the child is told apart from the kill.
enum ChildExit : int {
  kChildOpenFailed = 20,
  kChildCsrFailed = 21,
  kChildIssueFailed = 22,
  kChildWriteFailed = 23,
  kChildException = 24,
  kChildRanTooLong = 25,
};

template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result.ok()) throw std::runtime_error(what + ": " + result.error().message);
  return std::move(result).value();
}

DistinguishedName dn(const std::string& text) { return must(DistinguishedName::parse(text), "DN " + text); }

SimulatedCa::Options ca_options(const fs::path& path) {
  SimulatedCa::Options options;
  options.store_path = path;
  options.clock = std::make_shared<ManualClock>(from_unix(kStart));
  options.random = openssl_random();
  return options;
}

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Runs in the forked child and never returns into GoogleTest: every path ends in _exit.
[[noreturn]] void issue_until_killed(const fs::path& path, int report_fd, const std::vector<PrivateKey>& keys) {
  try {
    ::alarm(120);  // a safety net should the parent never kill this child
    auto ca = SimulatedCa::open(ca_options(path));
    if (!ca.ok()) _exit(kChildOpenFailed);
    for (std::size_t i = 0; i < 1'000'000; ++i) {
      auto csr = CsrBuilder()
                     .subject(dn("CN=crash-device-" + std::to_string(::getpid()) + "-" + std::to_string(i) + ",O=estlab"))
                     .add_subject_alt_name(SubjectAltName::dns("crash-device-" + std::to_string(i) + ".example"))
                     .sign(keys[i % keys.size()]);
      if (!csr.ok()) _exit(kChildCsrFailed);
      auto cert = (*ca)->issue("issuing", *csr, CertificateProfile::device());
      if (!cert.ok()) {
        std::fprintf(stderr, "crash child: issue failed: %s\n", cert.error().message.c_str());
        _exit(kChildIssueFailed);
      }
      // One line per write(), shorter than PIPE_BUF: the parent never sees half a serial.
      if (!write_all(report_fd, cert->serial_hex() + "\n")) _exit(kChildWriteFailed);
    }
    _exit(kChildRanTooLong);
  } catch (...) {
    _exit(kChildException);
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Reads lines from fd until `want` lines arrived (want 0: until end of file) or the deadline.
// Returns false on timeout or a read error.
bool read_lines(int fd, std::string& pending, std::vector<std::string>& lines, std::size_t want,
                SteadyClock::time_point deadline) {
  char buffer[4096];
  while (want == 0 || lines.size() < want) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return false;
    if (ready == 0) return false;
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return want == 0;  // end of file: the child is gone
    pending.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
      lines.push_back(pending.substr(0, end));
      pending.erase(0, end + 1);
    }
  }
  return true;
}

// waitpid with a deadline; returns the status or nullopt on timeout.
std::optional<int> reap(pid_t pid, SteadyClock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (SteadyClock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

class SimulatedCaCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("estlab-ca-crash-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (child_ > 0) {  // a failed assertion left a child running
      ::kill(child_, SIGKILL);
      (void)reap(child_, SteadyClock::now() + kReapDeadline);
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  fs::path dir_;
  pid_t child_ = -1;
};

TEST_F(SimulatedCaCrashTest, SigkillDuringIssuanceLosesNoReportedCertificateAndRepeatsNoSerial) {
  const fs::path path = dir_ / "ca.db";
  Certificate root, issuing;
  {
    auto ca = must(SimulatedCa::open(ca_options(path)), "open");
    root = must(ca->create_root("root", dn("CN=estlab Crash Root,O=estlab"), KeyType::ec_p256), "root");
    issuing = must(ca->create_subordinate("issuing", "root", dn("CN=estlab Crash Issuing,O=estlab"), KeyType::ec_p256),
                   "issuing");
  }  // closed before fork: the child opens its own connection, never a copy of ours
  std::vector<PrivateKey> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(must(PrivateKey::generate(KeyType::ec_p256), "key"));

  const TimePoint validation_time = from_unix(kStart);
  auto chains = [&](const Certificate& leaf) {
    PathValidation options;
    options.trust_anchors = {root};
    options.intermediates = {issuing};
    options.at = validation_time;
    auto verdict = validate_path(leaf, options);
    return verdict.ok() && verdict->valid;
  };

  std::set<std::string> ever_seen{root.serial_hex(), issuing.serial_hex()};
  std::vector<std::string> reported_so_far;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("kill cycle " + std::to_string(cycle));
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0) << std::strerror(errno);
    std::fflush(nullptr);  // nothing buffered may be written twice by the child
    const auto started = SteadyClock::now();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0) << std::strerror(errno);
    if (pid == 0) {
      ::close(fds[0]);
      issue_until_killed(path, fds[1], keys);  // never returns
    }
    child_ = pid;
    ::close(fds[1]);

    std::vector<std::string> reported;
    std::string pending;
    const bool enough = read_lines(fds[0], pending, reported, kSerialsPerCycle, started + kReportDeadline);
    const auto reported_at_kill = reported.size();
    ::kill(pid, SIGKILL);
    // Lines written before the kill are still in the pipe: they were reported too.
    const bool drained = read_lines(fds[0], pending, reported, 0, SteadyClock::now() + kDrainDeadline);
    ::close(fds[0]);
    auto status = reap(pid, SteadyClock::now() + kReapDeadline);
    child_ = -1;
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
    ASSERT_TRUE(status.has_value()) << "the child was not reaped within the deadline";
    ASSERT_TRUE(enough) << "only " << reported.size() << " serials within " << kReportDeadline.count()
                        << " s; child " << describe_status(*status);
    ASSERT_TRUE(drained) << "the pipe did not close after SIGKILL";
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << "child " << describe_status(*status);
    EXPECT_TRUE(pending.empty()) << "a partial line: '" << pending << "'";
    std::printf("[ crash    ] cycle %d: %zu serials reported (%zu when killed) in %lld ms\n", cycle, reported.size(),
                reported_at_kill, static_cast<long long>(elapsed.count()));

    auto ca = must(SimulatedCa::open(ca_options(path)), "reopen after SIGKILL");
    EXPECT_EQ(must(ca->store().integrity_check(), "integrity_check"), "ok");

    // Every serial the child reported, in this cycle and the ones before, is there and chains.
    reported_so_far.insert(reported_so_far.end(), reported.begin(), reported.end());
    for (const auto& serial : reported_so_far) {
      auto found = ca->find_issued(serial);
      ASSERT_TRUE(found.ok()) << serial << ": " << found.error().message;
      ASSERT_TRUE(found->has_value()) << "reported serial " << serial << " is missing after SIGKILL";
      EXPECT_EQ((*found)->certificate.serial_hex(), serial);
      EXPECT_EQ((*found)->ca_label, "issuing");
      EXPECT_TRUE(chains((*found)->certificate)) << serial << " does not validate against root/issuing";
    }
    for (const auto& serial : reported) {
      EXPECT_TRUE(ever_seen.insert(serial).second) << "the child reported serial " << serial << " twice";
    }
    // The store may hold certificates committed just before the kill but never reported.
    auto listed = must(ca->list_issued(), "list_issued");
    std::set<std::string> in_store;
    for (const auto& info : listed) {
      EXPECT_TRUE(in_store.insert(info.certificate.serial_hex()).second)
          << "serial " << info.certificate.serial_hex() << " stored twice";
      ever_seen.insert(info.certificate.serial_hex());
    }
    EXPECT_GE(listed.size(), reported_so_far.size() + 1);  // + the issuing CA's certificate

    for (int i = 0; i < kIssuedAfterReopen; ++i) {
      auto csr = must(CsrBuilder()
                          .subject(dn("CN=after-crash-" + std::to_string(cycle) + "-" + std::to_string(i)))
                          .sign(keys[static_cast<std::size_t>(i) % keys.size()]),
                      "CSR");
      auto cert = ca->issue("issuing", csr, CertificateProfile::device());
      ASSERT_TRUE(cert.ok()) << cert.error().message;
      EXPECT_TRUE(ever_seen.insert(cert->serial_hex()).second)
          << "serial " << cert->serial_hex() << " issued after SIGKILL repeats an earlier one";
      EXPECT_TRUE(chains(*cert));
    }
    EXPECT_EQ(must(ca->store().integrity_check(), "integrity_check"), "ok");
  }
}

}  // namespace
}  // namespace estlab::ca

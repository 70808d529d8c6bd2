// SIGKILL durability: a child process issues certificates as fast as it can and reports each one
// after its commit returned; the parent kills it at an arbitrary point and checks that the file is
// intact, every reported commit survived, and no counter or serial is ever handed out twice.
#include "estlab/ca/store.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace estlab::ca {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kCaLabel = "crash-ca";
constexpr auto kReportDeadline = std::chrono::seconds(30);
constexpr auto kExitDeadline = std::chrono::seconds(10);

std::string serial_for(std::uint64_t counter) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "c0%016llx", static_cast<unsigned long long>(counter));
  return buffer;
}

// DER-looking bytes whose length and content depend on the counter, so a torn or misplaced
// write shows up as a mismatch.
std::vector<std::uint8_t> der_for(std::uint64_t counter) {
  const std::size_t length = 100 + counter % 400;
  std::vector<std::uint8_t> der = {0x30, 0x82, static_cast<std::uint8_t>(length >> 8),
                                   static_cast<std::uint8_t>(length & 0xff)};
  for (std::size_t i = 0; i < length; ++i) der.push_back(static_cast<std::uint8_t>(counter * 31 + i * 7));
  return der;
}

IssuedCertificate cert_for(std::uint64_t counter) {
  IssuedCertificate cert;
  cert.serial_hex = serial_for(counter);
  cert.ca_label = kCaLabel;
  cert.subject = "CN=device-" + std::to_string(counter);
  cert.profile = "device";
  cert.cert_der = der_for(counter);
  cert.not_before = 1'700'000'000;
  cert.not_after = 1'800'000'000;
  cert.issued_at = 1'700'000'000 + static_cast<long long>(counter);
  return cert;
}

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// The forked child: never returns into GoogleTest, and leaves with _exit so no atexit handler
// or inherited stdio buffer of the parent runs twice.
[[noreturn]] void child_main(const fs::path& db, int report_fd) {
  try {
    auto store = CaStore::open({.path = db});
    if (!store) {
      write_all(2, "child: " + store.error().message + "\n");
      ::_exit(2);
    }
    for (;;) {
      auto counter = (*store)->allocate_serial_counter();
      if (!counter) {
        write_all(2, "child: " + counter.error().message + "\n");
        ::_exit(3);
      }
      auto recorded = (*store)->record_issued(cert_for(*counter));
      if (!recorded) {
        write_all(2, "child: " + recorded.error().message + "\n");
        ::_exit(4);
      }
      // Reported only after the commit returned: everything reported must survive the kill.
      if (!write_all(report_fd, std::to_string(*counter) + " " + serial_for(*counter) + "\n")) ::_exit(5);
    }
  } catch (...) {
    ::_exit(6);
  }
}

struct Report {
  std::uint64_t counter = 0;
  std::string serial;
};

// Parses complete lines out of buffer, leaving a partial last line in place.
bool take_lines(std::string& buffer, std::vector<Report>& out) {
  std::size_t start = 0;
  for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = buffer.substr(start, nl - start);
    const auto space = line.find(' ');
    if (space == std::string::npos) return false;
    out.push_back({std::stoull(line.substr(0, space)), line.substr(space + 1)});
  }
  buffer.erase(0, start);
  return true;
}

// Waits for the child to be reaped, with a deadline; returns the wait status or -1.
int reap(pid_t child) {
  const auto deadline = Clock::now() + kExitDeadline;
  while (Clock::now() < deadline) {
    int status = 0;
    const pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) return status;
    if (r < 0 && errno != EINTR) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

class CaStoreCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("estlab-store-crash-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
};

TEST_F(CaStoreCrashTest, SigkillLosesNoReportedCommitAndNeverRepeatsCounters) {
  const fs::path db = dir_ / "crash.db";
  {
    auto store = CaStore::open({.path = db});
    ASSERT_TRUE(store.ok()) << store.error().message;
    StoredCa ca;
    ca.label = kCaLabel;
    ca.subject = "CN=crash CA";
    ca.cert_der = {0x30, 0x00};
    ASSERT_TRUE((*store)->put_ca(ca).ok());
  }  // closed before fork: a SQLite connection must not cross fork()

  std::set<std::uint64_t> counters_seen;
  std::set<std::string> serials_seen;
  std::uint64_t highest_counter = 0;
  std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> jitter(0, 3000);

  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("kill cycle " + std::to_string(cycle));
    const std::size_t target = 200 + 100 * static_cast<std::size_t>(cycle);  // vary the kill point

    int fds[2];
    ASSERT_EQ(::pipe(fds), 0) << std::strerror(errno);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0) << std::strerror(errno);
    if (child == 0) {
      ::close(fds[0]);
      child_main(db, fds[1]);
    }
    ::close(fds[1]);

    std::vector<Report> reported;
    std::string buffer;
    bool parse_ok = true;
    bool eof = false;
    const auto deadline = Clock::now() + kReportDeadline;
    while (reported.size() < target && !eof && parse_ok) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      pollfd pfd{fds[0], POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) break;
      char chunk[4096];
      const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof = true;
        break;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      parse_ok = take_lines(buffer, reported);
    }

    // A short random pause so the kill lands at different points of an insert or a commit.
    std::this_thread::sleep_for(std::chrono::microseconds(jitter(random)));
    ::kill(child, SIGKILL);
    const int status = reap(child);
    // Lines already in the pipe were committed too; the write end is closed now, so this ends.
    for (;;) {
      pollfd pfd{fds[0], POLLIN, 0};
      if (::poll(&pfd, 1, 1000) <= 0) break;
      char chunk[4096];
      const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
      parse_ok = parse_ok && take_lines(buffer, reported);
    }
    ::close(fds[0]);

    ASSERT_TRUE(parse_ok) << "garbled report line";
    ASSERT_NE(status, -1) << "child did not exit within the deadline";
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child ended on its own before the kill (exit code "
        << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "), see its stderr";
    ASSERT_GE(reported.size(), target) << "child reported too few commits within "
                                        << kReportDeadline.count() << " s";
    std::cout << "[ crash    ] cycle " << cycle << ": child reported " << reported.size()
              << " committed serials before SIGKILL\n";
    RecordProperty("cycle" + std::to_string(cycle) + "_reported", static_cast<int>(reported.size()));
    // The killed writer could not checkpoint and remove its WAL; reopening must recover from it.
    EXPECT_TRUE(fs::exists(fs::path(db.string() + "-wal")));

    auto reopened = CaStore::open({.path = db});
    ASSERT_TRUE(reopened.ok()) << reopened.error().message;
    CaStore& store = **reopened;
    auto integrity = store.integrity_check();
    ASSERT_TRUE(integrity.ok()) << integrity.error().message;
    EXPECT_EQ(*integrity, "ok");

    for (const Report& r : reported) {
      ASSERT_EQ(r.serial, serial_for(r.counter));
      EXPECT_GT(r.counter, highest_counter) << "counter " << r.counter << " repeats an earlier cycle's";
      EXPECT_TRUE(counters_seen.insert(r.counter).second) << "counter " << r.counter << " handed out twice";
      EXPECT_TRUE(serials_seen.insert(r.serial).second) << "serial " << r.serial << " issued twice";
      auto found = store.find_by_serial(r.serial);
      ASSERT_TRUE(found.ok()) << found.error().message;
      ASSERT_TRUE(found->has_value()) << "reported serial " << r.serial << " lost after SIGKILL";
      EXPECT_EQ(**found, cert_for(r.counter));
    }
    for (const Report& r : reported) highest_counter = std::max(highest_counter, r.counter);
    auto count = store.count_issued();
    ASSERT_TRUE(count.ok());
    EXPECT_GE(*count, serials_seen.size());

    // Whatever the child allocated but never reported is still consumed: new values are above
    // everything seen, and issuing with them never collides with a record the child left.
    for (int i = 0; i < 20; ++i) {
      auto counter = store.allocate_serial_counter();
      ASSERT_TRUE(counter.ok()) << counter.error().message;
      EXPECT_GT(*counter, highest_counter);
      EXPECT_TRUE(counters_seen.insert(*counter).second) << "counter " << *counter << " handed out twice";
      highest_counter = std::max(highest_counter, *counter);
      const IssuedCertificate cert = cert_for(*counter);
      EXPECT_TRUE(serials_seen.insert(cert.serial_hex).second);
      auto recorded = store.record_issued(cert);
      ASSERT_TRUE(recorded.ok()) << recorded.error().message;
    }
    EXPECT_EQ(*store.integrity_check(), "ok");
  }  // the parent's store closes here, before the next fork
}

}  // namespace
}  // namespace estlab::ca

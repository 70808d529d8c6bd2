// The main of every unit-test binary: GoogleTest's, plus a watchdog. A test still running after
// ESTLAB_TEST_WATCHDOG_SECONDS (default 240, under ctest's 300 s timeout) gets the stack of every
// thread printed and the binary ended, so a hang in CI leaves evidence instead of a bare
// "Timeout" (exit code 1). 0 turns the watchdog off (a debugger session).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace {

namespace fs = std::filesystem;

std::string first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// What the kernel says each thread waits in: without gdb, this still tells a lock (futex) from a
// socket read (poll, recvfrom) or a sleep.
void print_kernel_waits() {
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
    std::cerr << "  thread " << task.path().filename().string() << " (" << first_line(task.path() / "comm") << "): wchan "
              << first_line(task.path() / "wchan") << ", syscall " << first_line(task.path() / "syscall") << "\n";
  }
}

// gdb attached to this process from a child; Yama's ptrace_scope 1 lets it only because this
// process names it as its tracer.
void print_gdb_stacks() {
  const char* gdb = "/usr/bin/gdb";
  if (access(gdb, X_OK) != 0) {
    std::cerr << "  (install gdb for the full stacks)\n";
    return;
  }
  const std::string pid = std::to_string(getpid());  // made before fork: the child only calls what is safe there
  const pid_t child = fork();
  if (child < 0) return;
  if (child == 0) {
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execl(gdb, gdb, "-p", pid.c_str(), "-batch", "-nx", "-ex", "set pagination off", "-ex", "thread apply all bt 40", static_cast<char*>(nullptr));
    _exit(127);
  }
  prctl(PR_SET_PTRACER, child, 0, 0, 0);
  // gdb needs a few seconds to read the symbols; never more than a minute of ctest's margin.
  for (int waited = 0; waited < 600; ++waited) {
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

class Watchdog : public testing::EmptyTestEventListener {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { watch(); }) {}
  ~Watchdog() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  void OnTestStart(const testing::TestInfo& info) override {
    std::lock_guard lock(mutex_);
    running_ = std::string(info.test_suite_name()) + "." + info.name();
    deadline_ = std::chrono::steady_clock::now() + limit_;
    changed_.notify_all();
  }
  void OnTestEnd(const testing::TestInfo&) override {
    std::lock_guard lock(mutex_);
    running_.clear();
    changed_.notify_all();
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (running_.empty()) {
        changed_.wait(lock);
        continue;
      }
      const auto deadline = deadline_;
      if (changed_.wait_until(lock, deadline) == std::cv_status::no_timeout || deadline != deadline_ || running_.empty()) continue;
      std::cerr << "\nestlab test watchdog: " << running_ << " is still running after " << limit_.count()
                << " s; every thread's wait and stack follow, then exit 1\n";
      print_kernel_waits();
      print_gdb_stacks();
      std::cerr.flush();
      std::_Exit(1);  // not abort(): ctest would call a signal an exception, and no core file is wanted
    }
  }

  const std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string running_;
  std::chrono::steady_clock::time_point deadline_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  long seconds = 240;
  if (const char* text = std::getenv("ESTLAB_TEST_WATCHDOG_SECONDS"); text && *text) seconds = std::strtol(text, nullptr, 10);
  if (seconds > 0 && !testing::GTEST_FLAG(list_tests)) {
    // GoogleTest would own a listener it is given; released before main returns, the watchdog's
    // thread is joined here, not in a static destructor.
    auto watchdog = std::make_unique<Watchdog>(std::chrono::seconds(seconds));
    testing::UnitTest::GetInstance()->listeners().Append(watchdog.get());
    const int result = RUN_ALL_TESTS();
    testing::UnitTest::GetInstance()->listeners().Release(watchdog.get());
    return result;
  }
  return RUN_ALL_TESTS();
}

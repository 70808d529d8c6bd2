// The test watchdog's own test: a deadlocked test, run only by the ctest entry
// TestWatchdog.AHungTestIsAbortedWithItsStacks (tests/CMakeLists.txt), which sets a 1 s limit and
// requires the watchdog's report in the output.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

TEST(Watchdog, DISABLED_Deadlock) {
  std::mutex held;
  std::lock_guard lock(held);
  std::thread other([&] { std::lock_guard never(held); });  // waits on the lock this thread keeps
  other.join();
}

// A sanitized build really is one: CI's run of these tests under ASan + UBSan (scripts/fuzz.sh
// --unit-tests, which sets ESTLAB_EXPECT_SANITIZERS=1) fails here, not silently passes, when the
// instrumentation went missing. Other builds skip them.
#include <gtest/gtest.h>

#include <climits>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "sanitized.hpp"

namespace {

[[maybe_unused]] bool sanitizers_expected() {
  const char* expected = std::getenv("ESTLAB_EXPECT_SANITIZERS");
  return expected != nullptr && std::string_view(expected) == "1";
}

}  // namespace

TEST(Sanitizers, AHeapOverflowIsReportedByAsan) {
#ifndef ESTLAB_ASAN
  if (sanitizers_expected()) FAIL() << "ESTLAB_EXPECT_SANITIZERS=1, but this build has no ASan";
  GTEST_SKIP() << "built without ASan";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto buffer = std::make_unique<char[]>(8);
  volatile std::size_t past_the_end = 8;
  EXPECT_DEATH(buffer[past_the_end] = 1, "heap-buffer-overflow");
#endif
}

TEST(Sanitizers, ASignedOverflowIsReportedByUbsan) {
#ifndef ESTLAB_UBSAN
  if (sanitizers_expected()) FAIL() << "ESTLAB_EXPECT_SANITIZERS=1, but this build has no UBSan";
  GTEST_SKIP() << "built without UBSan";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  volatile int largest = INT_MAX;
  // UBSAN_OPTIONS=halt_on_error=1 (fuzz.sh, sanitize.sh) or -fno-sanitize-recover makes it fatal.
  EXPECT_DEATH(
      {
        volatile int sum = largest + 1;
        (void)sum;
      },
      "signed integer overflow");
#endif
}

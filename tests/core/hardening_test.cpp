// The build's cheap checks are on (ESTLAB_HARDENING, the default): an out-of-bounds operator[]
// aborts and names the broken precondition, instead of reading past the end.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

TEST(Hardening, AnOutOfBoundsIndexAborts) {
#ifndef _GLIBCXX_ASSERTIONS
  GTEST_SKIP() << "built with ESTLAB_HARDENING=OFF";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<int> values(3);
  volatile std::size_t past_the_end = 3;
  EXPECT_DEATH((void)values[past_the_end], "Assertion '__n < this->size\\(\\)' failed");
#endif
}

// The lab's virtual clock and the duration syntax of `control: {advance-time: 400d}`.
#include "estlab/core/clock.hpp"

#include <gtest/gtest.h>

namespace estlab {
namespace {

TEST(ParseDuration, UnitsSignsAndGarbage) {
  EXPECT_EQ(parse_duration("400d"), Seconds(400 * 86400));
  EXPECT_EQ(parse_duration("12h"), Seconds(12 * 3600));
  EXPECT_EQ(parse_duration("30m"), Seconds(1800));
  EXPECT_EQ(parse_duration("90s"), Seconds(90));
  EXPECT_EQ(parse_duration("-1d"), Seconds(-86400));
  for (const char* bad : {"", "d", "400", "400y", "4 d", "1.5d", "d400", "99999999999999999999d", "40000000d"})
    EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
}

TEST(OffsetClock, AdvancesFromRealTimeAndResets) {
  OffsetClock clock;
  const auto real = std::chrono::system_clock::now();
  EXPECT_LT(std::chrono::abs(clock.now() - real), std::chrono::seconds(5));
  clock.advance(std::chrono::hours(24 * 400));
  EXPECT_GT(clock.now() - real, std::chrono::hours(24 * 399));
  EXPECT_EQ(clock.offset(), std::chrono::hours(24 * 400));
  clock.reset();
  EXPECT_LT(std::chrono::abs(clock.now() - std::chrono::system_clock::now()), std::chrono::seconds(5));
}

}  // namespace
}  // namespace estlab

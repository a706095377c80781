#include "common/clock.h"

#include <gtest/gtest.h>

namespace tripline {
namespace {

TEST(ClockTest, FormatTime) {
  EXPECT_EQ(FormatTimeNs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeNs(1'764'042'067'123'456'789LL), "2025-11-25T03:41:07.123Z");
}

TEST(ClockTest, ParseTimeRoundTrips) {
  auto t = ParseTimeNs("2025-11-25T03:41:07.123Z");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, 1'764'042'067'123'000'000LL);
  EXPECT_EQ(FormatTimeNs(*t), "2025-11-25T03:41:07.123Z");
}

TEST(ClockTest, ParseTimeWithOffset) {
  auto utc = ParseTimeNs("2025-11-25T03:41:07Z");
  auto plus1 = ParseTimeNs("2025-11-25T04:41:07+01:00");
  ASSERT_TRUE(utc.ok());
  ASSERT_TRUE(plus1.ok());
  EXPECT_EQ(*utc, *plus1);
}

TEST(ClockTest, ParseTimeRejectsGarbage) {
  for (const char* bad : {"", "2025-11-25", "2025-13-25T00:00:00Z", "2025-11-25T03:41:07",
                          "2025-11-25T03:41:07Zjunk", "2025-11-25T03:41:07.Z", "yesterday"}) {
    EXPECT_FALSE(ParseTimeNs(bad).ok()) << bad;
  }
}

TEST(ClockTest, ParseTimeRefusesTimesBeyondInt64Nanoseconds) {
  EXPECT_TRUE(ParseTimeNs("2261-12-31T23:59:59Z").ok());
  for (const char* far : {"9999-12-31T23:59:59Z", "2263-01-01T00:00:00Z", "1600-01-01T00:00:00Z"}) {
    auto r = ParseTimeNs(far);
    EXPECT_FALSE(r.ok()) << far;
  }
}

TEST(ClockTest, ParseDuration) {
  EXPECT_EQ(*ParseDurationNs("500ms"), 500 * kNanosPerMilli);
  EXPECT_EQ(*ParseDurationNs("30s"), 30 * kNanosPerSecond);
  EXPECT_EQ(*ParseDurationNs("30"), 30 * kNanosPerSecond);
  EXPECT_EQ(*ParseDurationNs("10m"), 600 * kNanosPerSecond);
  EXPECT_EQ(*ParseDurationNs("2h"), 7200 * kNanosPerSecond);
  EXPECT_EQ(*ParseDurationNs("7d"), 7 * 86400 * kNanosPerSecond);
  for (const char* bad : {"", "m", "-5s", "10x", "99999999999999999999d", "1.5s"}) {
    auto r = ParseDurationNs(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsInvalidArgument());
    }
  }
}

TEST(ClockTest, FormatDuration) {
  EXPECT_EQ(FormatDurationNs(250 * kNanosPerMilli), "250 ms");
  EXPECT_EQ(FormatDurationNs(40 * kNanosPerSecond), "40 s");
  EXPECT_EQ(FormatDurationNs(185 * kNanosPerSecond), "3 min 5 s");
  EXPECT_EQ(FormatDurationNs(7260 * kNanosPerSecond), "2 h 1 min");
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(1000);
  EXPECT_EQ(clock.NowNs(), 1000);
  clock.AdvanceNs(5);
  EXPECT_EQ(clock.NowNs(), 1005);
  EXPECT_EQ(clock.MonotonicNs(), 1005);
}

TEST(ClockTest, SystemClockIsPlausible) {
  const int64_t now = SystemClock::Get().NowNs();
  EXPECT_GT(now, 1'700'000'000LL * kNanosPerSecond);
  const int64_t a = SystemClock::Get().MonotonicNs();
  const int64_t b = SystemClock::Get().MonotonicNs();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace tripline

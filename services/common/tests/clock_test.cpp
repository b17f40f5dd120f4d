// The clock helpers read the clocks their names say: Unix time for the wall clock, a
// clock that never goes back for durations.
#include <gtest/gtest.h>

#include <chrono>
#include <vigil/service/clock.hpp>

namespace vigil::service {
namespace {

TEST(ClockTest, TheWallClockIsUnixTime) {
  const auto system = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::int64_t millis = WallClockMillis();
  const std::int64_t seconds = WallClockSeconds();
  EXPECT_GE(millis, system);
  EXPECT_LT(millis - system, 60'000) << "read a minute apart at most";
  EXPECT_GE(seconds, millis / 1000);
  EXPECT_LE(seconds - millis / 1000, 60);
  EXPECT_GT(seconds, 1'700'000'000) << "after November 2023: Unix time, not time since boot";
}

TEST(ClockTest, TheMonotonicClockNeverGoesBack) {
  std::int64_t previous = MonotonicMillis();
  for (int i = 0; i < 100000; ++i) {
    const std::int64_t now = MonotonicMillis();
    ASSERT_GE(now, previous);
    previous = now;
  }
  const auto steady = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  EXPECT_LE(previous, steady) << "the steady clock, read before it";
}

TEST(ClockTest, AStopwatchMeasuresFromItsConstruction) {
  const Stopwatch outer;
  const auto start = std::chrono::steady_clock::now();
  const Stopwatch inner;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2)) {
  }
  const double inner_seconds = inner.Seconds();
  EXPECT_GE(inner_seconds, 0.002);
  EXPECT_LT(inner_seconds, 60.0);
  EXPECT_GE(outer.Seconds(), inner_seconds) << "started earlier, read later";
}

}  // namespace
}  // namespace vigil::service

// Which answers are retried, Retry-After in both forms (RFC 9110 section 10.2.3) and the
// bounds of the exponential backoff.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <set>

#include "otlp/retry.hpp"

namespace vigil::telemetry::otlp {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// 1994-11-06T08:49:37Z, the RFC's example date.
constexpr system_clock::time_point kExample{seconds{784111777}};
// 2024-03-01T00:00:00Z
constexpr system_clock::time_point kNow2024{seconds{1709251200}};

TEST(OtlpRetry, RetryableStatuses) {
  for (long s : {429L, 502L, 503L, 504L}) {
    EXPECT_TRUE(IsRetryableStatus(s)) << s;
  }
  for (long s : {200L, 204L, 301L, 400L, 401L, 403L, 404L, 408L, 413L, 500L, 501L, 505L}) {
    EXPECT_FALSE(IsRetryableStatus(s)) << s;
  }
}

TEST(OtlpRetry, HttpDateAllThreeForms) {
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", kNow2024), kExample);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", kNow2024), kExample);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994", kNow2024), kExample);
  EXPECT_EQ(ParseHttpDate("Sun Nov 16 08:49:37 1994", kNow2024), kExample + std::chrono::days{10});
  EXPECT_EQ(ParseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT ", kNow2024), kExample) << "OWS trimmed";
}

TEST(OtlpRetry, Rfc850TwoDigitYearIsNeverMoreThan50YearsAhead) {
  // From 2024: "30" is 2030 (6 years ahead), "80" would be 2080 (56 ahead) so it is 1980.
  const auto y2030 = ParseHttpDate("Tuesday, 01-Jan-30 00:00:00 GMT", kNow2024);
  ASSERT_TRUE(y2030.has_value());
  EXPECT_EQ(*y2030, system_clock::time_point{seconds{1893456000}});
  const auto y1980 = ParseHttpDate("Tuesday, 01-Jan-80 00:00:00 GMT", kNow2024);
  ASSERT_TRUE(y1980.has_value());
  EXPECT_EQ(*y1980, system_clock::time_point{seconds{315532800}});
}

TEST(OtlpRetry, MalformedDates) {
  for (const char* bad : {
           "", "Sun, 06 Nov 1994 08:49:37",        // no zone
           "Sun, 06 Nov 1994 08:49:37 UTC",        // only GMT is allowed
           "Sun, 06 Nov 1994 08:49:37 gmt",        // case-sensitive
           "Sun, 6 Nov 1994 08:49:37 GMT",         // day must be two digits
           "Sun, 06 nov 1994 08:49:37 GMT",        // month is case-sensitive
           "Xyz, 06 Nov 1994 08:49:37 GMT",        // no such day
           "Sun, 31 Feb 2024 08:49:37 GMT",        // no such date
           "Sun, 06 Nov 1994 24:00:00 GMT",        // hour out of range
           "Sun, 06 Nov 1994 08:60:00 GMT",        // minute out of range
           "Sun, 06 Nov 1994 08:49:37 GMT extra",  // trailing text
           "Sun,06 Nov 1994 08:49:37 GMT",         // missing space
           "Sun Nov 6 08:49:37 1994",              // asctime pads the day with a space
           "Sunday, 06-Nov-1994 08:49:37 GMT",     // RFC 850 has a two-digit year
       }) {
    EXPECT_FALSE(ParseHttpDate(bad, kNow2024).has_value()) << bad;
  }
}

TEST(OtlpRetry, RetryAfterSeconds) {
  EXPECT_EQ(ParseRetryAfter("0", kNow2024), milliseconds{0});
  EXPECT_EQ(ParseRetryAfter("2", kNow2024), milliseconds{2000});
  EXPECT_EQ(ParseRetryAfter(" 120 ", kNow2024), milliseconds{120000});
  EXPECT_EQ(ParseRetryAfter("0007", kNow2024), milliseconds{7000});
  // Absurd values are capped at a year rather than overflowing.
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", kNow2024),
            milliseconds{365LL * 24 * 3600 * 1000});
}

TEST(OtlpRetry, RetryAfterDate) {
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kExample - seconds{10}),
            milliseconds{10000});
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kExample - milliseconds{1500}),
            milliseconds{1500});
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kExample + seconds{5}),
            milliseconds{0})
      << "a date in the past means now";
}

TEST(OtlpRetry, RetryAfterGarbage) {
  for (const char* bad : {"", "  ", "abc", "-1", "1.5", "+3", "3s", "0x10", "1 2", "tomorrow"}) {
    EXPECT_FALSE(ParseRetryAfter(bad, kNow2024).has_value()) << bad;
  }
}

TEST(OtlpRetry, BackoffStaysWithinHalfToFullBase) {
  const milliseconds initial{100}, max{1000};
  const std::uint64_t randoms[] = {
      0, 1, 7, 50, 51, 12345, std::numeric_limits<std::uint64_t>::max()};
  for (unsigned retry = 0; retry < 12; ++retry) {
    const std::int64_t base = std::min<std::int64_t>(100LL << std::min(retry, 20u), 1000);
    for (std::uint64_t r : randoms) {
      const auto d = BackoffDelay(retry, initial, max, r);
      EXPECT_GE(d.count(), base / 2) << "retry " << retry << " random " << r;
      EXPECT_LE(d.count(), base) << "retry " << retry << " random " << r;
    }
  }
}

TEST(OtlpRetry, BackoffGrowsThenCaps) {
  // random 0 picks the lower bound, so the sequence shows the base doubling.
  EXPECT_EQ(BackoffDelay(0, milliseconds{1000}, milliseconds{5000}, 0), milliseconds{500});
  EXPECT_EQ(BackoffDelay(1, milliseconds{1000}, milliseconds{5000}, 0), milliseconds{1000});
  EXPECT_EQ(BackoffDelay(2, milliseconds{1000}, milliseconds{5000}, 0), milliseconds{2000});
  EXPECT_EQ(BackoffDelay(3, milliseconds{1000}, milliseconds{5000}, 0), milliseconds{2500});
  EXPECT_EQ(BackoffDelay(1000, milliseconds{1000}, milliseconds{5000}, 0), milliseconds{2500})
      << "huge retry counts do not overflow";
  // The top of the range is reachable: random = span - 1.
  EXPECT_EQ(BackoffDelay(0, milliseconds{1000}, milliseconds{5000}, 500), milliseconds{1000});
  EXPECT_EQ(BackoffDelay(3, milliseconds{1000}, milliseconds{5000}, 2500), milliseconds{5000});
}

TEST(OtlpRetry, BackoffJitterSpreads) {
  std::set<std::int64_t> seen;
  for (std::uint64_t r = 0; r < 200; ++r) {
    seen.insert(BackoffDelay(2, milliseconds{1000}, milliseconds{5000}, r * 7919).count());
  }
  EXPECT_GT(seen.size(), 100u);
}

TEST(OtlpRetry, BackoffDegenerateSettings) {
  EXPECT_EQ(BackoffDelay(3, milliseconds{0}, milliseconds{5000}, 99), milliseconds{0});
  EXPECT_EQ(BackoffDelay(3, milliseconds{-5}, milliseconds{5000}, 99), milliseconds{0});
  // A max below the initial value wins.
  EXPECT_LE(BackoffDelay(0, milliseconds{1000}, milliseconds{200}, 99), milliseconds{200});
}

}  // namespace
}  // namespace vigil::telemetry::otlp

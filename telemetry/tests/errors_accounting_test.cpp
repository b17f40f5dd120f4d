// What the reporter keeps count of: Sentry's rate limits (X-Sentry-Rate-Limits per
// category, a bare 429 with or without Retry-After), the discards its client reports
// tell, and the per-minute session aggregates of release health.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "errors/outcomes.hpp"
#include "errors/rate_limits.hpp"
#include "errors/session_aggregates.hpp"

namespace vigil::telemetry::internal {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RateLimitHeaderTest, ParsesEachQuotaLimit) {
  const auto limits = ParseRateLimits(
      "60:transaction:key, 2700:default;error;security:organization:quota, "
      "2.5::organization, bogus:error, 10:error;session");
  ASSERT_EQ(limits.size(), 4u);
  EXPECT_EQ(limits[0].retry_after, seconds(60));
  EXPECT_EQ(limits[0].categories, (std::vector<std::string_view>{"transaction"}));
  EXPECT_EQ(limits[1].retry_after, seconds(2700));
  EXPECT_EQ(limits[1].categories, (std::vector<std::string_view>{"default", "error", "security"}));
  EXPECT_EQ(limits[2].retry_after, milliseconds(2500));
  EXPECT_TRUE(limits[2].categories.empty()) << "empty: every category";
  EXPECT_EQ(limits[3].categories, (std::vector<std::string_view>{"error", "session"}));
}

TEST(RateLimitsTest, AHeaderLimitsExactlyItsCategoriesEvenOnA200) {
  RateLimits limits;
  const auto now = Clock::now();
  limits.Update(200, "60:error:key", std::nullopt, now);
  EXPECT_TRUE(limits.IsLimited(Category::kError, now + seconds(59)));
  EXPECT_FALSE(limits.IsLimited(Category::kError, now + seconds(61)));
  EXPECT_FALSE(limits.IsLimited(Category::kSession, now));
}

TEST(RateLimitsTest, TheHeaderTakesPrecedenceOverRetryAfter) {
  RateLimits limits;
  const auto now = Clock::now();
  limits.Update(429, "5:session", milliseconds(100'000), now);
  EXPECT_TRUE(limits.IsLimited(Category::kSession, now + seconds(4)));
  EXPECT_FALSE(limits.IsLimited(Category::kSession, now + seconds(6)));
  EXPECT_FALSE(limits.IsLimited(Category::kError, now)) << "not named";
}

TEST(RateLimitsTest, TheLongestLimitOfACategoryWinsAndUnknownOnesAreIgnored) {
  RateLimits limits;
  const auto now = Clock::now();
  limits.Update(429, "10:error, 100:default;error, 1000:transaction;profile", std::nullopt, now);
  EXPECT_TRUE(limits.IsLimited(Category::kError, now + seconds(99)));
  EXPECT_FALSE(limits.IsLimited(Category::kError, now + seconds(101)));
  EXPECT_FALSE(limits.IsLimited(Category::kSession, now));
}

TEST(RateLimitsTest, ABare429LimitsEverythingForItsRetryAfterOrAMinute) {
  RateLimits with;
  const auto now = Clock::now();
  with.Update(429, std::nullopt, milliseconds(3000), now);
  EXPECT_TRUE(with.IsLimited(Category::kError, now + seconds(2)));
  EXPECT_TRUE(with.IsLimited(Category::kSession, now + seconds(2)));
  EXPECT_FALSE(with.IsLimited(Category::kError, now + seconds(4)));

  RateLimits without;
  without.Update(429, std::nullopt, std::nullopt, now);
  EXPECT_TRUE(without.IsLimited(Category::kError, now + seconds(59)));
  EXPECT_FALSE(without.IsLimited(Category::kError, now + seconds(61)));
}

TEST(RateLimitsTest, OtherAnswersWithoutTheHeaderChangeNothing) {
  RateLimits limits;
  const auto now = Clock::now();
  limits.Update(503, std::nullopt, milliseconds(60'000), now);
  limits.Update(200, std::nullopt, std::nullopt, now);
  EXPECT_FALSE(limits.IsLimited(Category::kError, now));
}

TEST(OutcomesTest, PendingCountsAreTakenOnceTotalsStay) {
  Outcomes outcomes;
  EXPECT_FALSE(outcomes.HasPending());
  outcomes.Add(DiscardReason::kQueueOverflow, Category::kError);
  outcomes.Add(DiscardReason::kQueueOverflow, Category::kError, 2);
  outcomes.Add(DiscardReason::kRateLimitBackoff, Category::kSession);
  EXPECT_TRUE(outcomes.HasPending());
  auto pending = outcomes.TakePending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].reason, DiscardReason::kQueueOverflow);
  EXPECT_EQ(pending[0].quantity, 3u);
  EXPECT_EQ(pending[1].category, Category::kSession);
  EXPECT_FALSE(outcomes.HasPending());
  EXPECT_TRUE(outcomes.TakePending().empty());
  outcomes.Restore(pending);
  EXPECT_EQ(outcomes.TakePending().size(), 2u);
  EXPECT_EQ(outcomes.Total(DiscardReason::kQueueOverflow), 3u);
  EXPECT_EQ(outcomes.Total(DiscardReason::kRateLimitBackoff), 0u) << "sessions are not events";
}

TEST(SessionAggregatesTest, CountsPerMinuteAndHandsFinishedMinutesOver) {
  SessionAggregates aggregates;
  const std::int64_t t = 1'700'000'040;  // a minute's start
  aggregates.Record(RequestOutcome::kOk, t);
  aggregates.Record(RequestOutcome::kOk, t + 59);
  aggregates.Record(RequestOutcome::kErrored, t + 30);
  aggregates.Record(RequestOutcome::kCrashed, t + 61);
  EXPECT_TRUE(aggregates.Take(t + 59, false).empty()) << "the current minute stays";
  auto minutes = aggregates.Take(t + 61, false);
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].start_unix_seconds, t);
  EXPECT_EQ(minutes[0].exited, 2u);
  EXPECT_EQ(minutes[0].errored, 1u);
  EXPECT_EQ(minutes[0].crashed, 0u);
  minutes = aggregates.Take(t + 61, true);
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].start_unix_seconds, t + 60);
  EXPECT_EQ(minutes[0].crashed, 1u);
  EXPECT_TRUE(aggregates.Take(t + 1000, true).empty());
}

TEST(SessionAggregatesTest, AMinuteWhoseBucketIsReusedIsCarriedNotLost) {
  SessionAggregates aggregates;
  const std::int64_t t = 1'700'000'040;
  aggregates.Record(RequestOutcome::kOk, t);
  // The same bucket, kBuckets minutes later, before anyone took the first minute.
  aggregates.Record(RequestOutcome::kErrored, t + 60 * SessionAggregates::kBuckets);
  const auto minutes = aggregates.Take(t + 60 * (SessionAggregates::kBuckets + 1), false);
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].start_unix_seconds, t);
  EXPECT_EQ(minutes[0].exited, 1u);
  EXPECT_EQ(minutes[1].errored, 1u);
}

TEST(SessionAggregatesTest, ConcurrentRecordsAreAllCounted) {
  SessionAggregates aggregates;
  const std::int64_t t = 1'700'000'040;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < 10000; ++n) aggregates.Record(RequestOutcome::kOk, t + n % 120);
    });
  }
  for (auto& th : threads) th.join();
  std::uint64_t total = 0;
  for (const auto& m : aggregates.Take(t + 1000, true)) total += m.exited;
  EXPECT_EQ(total, 40000u);
}

}  // namespace
}  // namespace vigil::telemetry::internal

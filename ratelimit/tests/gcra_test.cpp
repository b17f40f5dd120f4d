// GCRA decisions and the memory store that keeps them.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>
#include <vigil/ratelimit/gcra.hpp>
#include <vigil/ratelimit/memory_store.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace rl = vigil::ratelimit;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;  // a Unix time in microseconds
constexpr std::int64_t kSecond = 1'000'000;

TEST(GcraTest, RateOfAQuotaPerWindowWithABurst) {
  const rl::Rate rate = rl::Rate::Of(10, seconds(60), 5);
  EXPECT_EQ(rate.interval_us, 6 * kSecond);
  EXPECT_EQ(rate.tolerance_us, 30 * kSecond);
  // Degenerate values are clamped, never a division by zero.
  const rl::Rate clamped = rl::Rate::Of(0, milliseconds(0), 0);
  EXPECT_EQ(clamped.interval_us, 1000);
  EXPECT_EQ(clamped.tolerance_us, 1000);
}

TEST(GcraTest, ABurstIsAllowedThenTheRateHolds) {
  const rl::Rate rate = rl::Rate::Of(10, seconds(10), 3);  // 1 per second, 3 at once
  std::int64_t tat = 0;
  for (int i = 0; i < 3; ++i) {
    const rl::Decision d = rl::Decide(kNow, tat, rate, 1);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.reset_us, (i + 1) * kSecond);
    EXPECT_EQ(d.retry_after_us, 0);
    tat = d.tat_us;
  }
  const rl::Decision refused = rl::Decide(kNow, tat, rate, 1);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_us, kSecond);
  EXPECT_EQ(refused.reset_us, 3 * kSecond);
  EXPECT_EQ(refused.tat_us, tat) << "a refused request changes nothing";
  // One interval later exactly one more is allowed.
  const rl::Decision later = rl::Decide(kNow + kSecond, tat, rate, 1);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.remaining, 0);
  EXPECT_FALSE(rl::Decide(kNow + kSecond, later.tat_us, rate, 1).allowed);
}

TEST(GcraTest, CostTakesSeveralUnitsAndZeroOnlyAsks) {
  const rl::Rate rate = rl::Rate::Of(10, seconds(10), 10);
  const rl::Decision heavy = rl::Decide(kNow, 0, rate, 4);
  EXPECT_TRUE(heavy.allowed);
  EXPECT_EQ(heavy.remaining, 6);
  const rl::Decision too_heavy = rl::Decide(kNow, heavy.tat_us, rate, 7);
  EXPECT_FALSE(too_heavy.allowed);
  EXPECT_EQ(too_heavy.remaining, 6) << "what is left, even if below the cost";
  EXPECT_EQ(too_heavy.retry_after_us, kSecond);
  const rl::Decision ask = rl::Decide(kNow, heavy.tat_us, rate, 0);
  EXPECT_TRUE(ask.allowed);
  EXPECT_EQ(ask.tat_us, heavy.tat_us);
  EXPECT_EQ(ask.remaining, 6);
}

TEST(GcraTest, AnOldTatIsAWholeQuota) {
  const rl::Rate rate = rl::Rate::Of(5, seconds(5), 5);
  const rl::Decision fresh = rl::Decide(kNow, 0, rate, 1);
  const rl::Decision idle = rl::Decide(kNow, kNow - 60 * kSecond, rate, 1);
  EXPECT_EQ(fresh.allowed, idle.allowed);
  EXPECT_EQ(fresh.remaining, idle.remaining);
  EXPECT_EQ(fresh.tat_us, idle.tat_us);
}

TEST(GcraTest, CeilSecondsRoundsUp) {
  EXPECT_EQ(rl::CeilSeconds(0), 0);
  EXPECT_EQ(rl::CeilSeconds(-5), 0);
  EXPECT_EQ(rl::CeilSeconds(1), 1);
  EXPECT_EQ(rl::CeilSeconds(kSecond), 1);
  EXPECT_EQ(rl::CeilSeconds(kSecond + 1), 2);
}

TEST(MemoryStoreTest, KeysAreLimitedApart) {
  rl::MemoryStore store;
  const rl::Rate rate = rl::Rate::Of(2, seconds(60), 2);
  EXPECT_TRUE(store.Decide("a", rate, 1, kNow).allowed);
  EXPECT_TRUE(store.Decide("a", rate, 1, kNow).allowed);
  EXPECT_FALSE(store.Decide("a", rate, 1, kNow).allowed);
  EXPECT_TRUE(store.Decide("b", rate, 1, kNow).allowed);
  EXPECT_EQ(store.size(), 2U);
  // A refused request stores nothing new.
  EXPECT_FALSE(store.Decide("a", rate, 1, kNow).allowed);
  EXPECT_TRUE(store.Decide("a", rate, 1, kNow + 30 * kSecond).allowed);
}

TEST(MemoryStoreTest, MemoryIsBoundedIdleKeysGoFirstAndEvictionsAreCounted) {
  vigil::telemetry::Registry registry;
  rl::MemoryStore store(64, &registry.AddCounter("evicted_total", "test"));  // one key a shard
  const rl::Rate rate = rl::Rate::Of(1, seconds(1), 1);
  for (int i = 0; i < 1000; ++i) store.Decide("busy" + std::to_string(i), rate, 1, kNow);
  EXPECT_LE(store.size(), 64U);
  EXPECT_GT(store.size(), 0U);
  // Each key that found its shard full of busy keys took the place of one.
  EXPECT_EQ(store.evictions(), 1000U - store.size());
  const std::string exposed = registry.Expose(vigil::telemetry::ExpositionFormat::kPrometheusText);
  EXPECT_NE(exposed.find("evicted_total " + std::to_string(store.evictions()) + "\n"),
            std::string::npos)
      << exposed;
  // Two seconds later every key is idle: a new key sweeps its shard and evicts nothing.
  const std::uint64_t evicted = store.evictions();
  const std::size_t before = store.size();
  EXPECT_TRUE(store.Decide("new", rate, 1, kNow + 2 * kSecond).allowed);
  EXPECT_EQ(store.evictions(), evicted);
  EXPECT_LE(store.size(), before);
}

TEST(MemoryStoreTest, ThreadsOnOneKeyShareItsQuotaExactly) {
  rl::MemoryStore store;
  const rl::Rate rate = rl::Rate::Of(1000, seconds(3600), 1000);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) allowed += store.Decide("shared", rate, 1, kNow).allowed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

}  // namespace

// LruCache: eviction order, replacement, erase, the capacity split over shards, its
// metrics, and concurrent use (the ASan+UBSan build runs it too).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>
#include <vigil/service/lru_cache.hpp>

namespace vigil::service {
namespace {

class LruCacheTest : public ::testing::Test {
 protected:
  double Requests(std::string_view cache, std::string_view result) {
    return registry_.CounterFamily("vigil_cache_requests_total", "", {"cache", "result"})
        .WithLabels({cache, result})
        .Value();
  }
  double Evictions(std::string_view cache) {
    return registry_.CounterFamily("vigil_cache_evictions_total", "", {"cache"})
        .WithLabels({cache})
        .Value();
  }

  telemetry::Registry registry_;
};

TEST_F(LruCacheTest, EvictsTheLeastRecentlyUsed) {
  LruCache<std::string, int> cache(3, registry_, "t", /*shards=*/1);
  cache.Put("a", 1);
  cache.Put("b", 2);
  cache.Put("c", 3);
  EXPECT_EQ(cache.Get("a"), 1);  // a is now the most recent; b the least
  cache.Put("d", 4);
  EXPECT_EQ(cache.Get("b"), std::nullopt);
  EXPECT_EQ(cache.Get("a"), 1);
  EXPECT_EQ(cache.Get("c"), 3);
  EXPECT_EQ(cache.Get("d"), 4);
  // Order now (most recent first): d c a.
  cache.Put("e", 5);
  EXPECT_EQ(cache.Get("a"), std::nullopt);
  cache.Put("f", 6);
  EXPECT_EQ(cache.Get("c"), std::nullopt);
  EXPECT_EQ(cache.Get("d"), 4);
  EXPECT_EQ(cache.Get("e"), 5);
  EXPECT_EQ(cache.Get("f"), 6);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(Evictions("t"), 3);
}

TEST_F(LruCacheTest, PutReplacesAndRefreshes) {
  LruCache<std::string, std::string> cache(2, registry_, "t", 1);
  cache.Put("a", "old");
  cache.Put("b", "b");
  cache.Put("a", "new");  // replaces, and makes a the most recent
  EXPECT_EQ(cache.size(), 2u);
  cache.Put("c", "c");  // evicts b, not a
  EXPECT_EQ(cache.Get("a"), "new");
  EXPECT_EQ(cache.Get("b"), std::nullopt);
  EXPECT_EQ(Evictions("t"), 1);
}

TEST_F(LruCacheTest, EraseRemovesOnlyThatKey) {
  LruCache<std::string, int> cache(4, registry_, "t", 1);
  cache.Put("a", 1);
  cache.Put("b", 2);
  EXPECT_TRUE(cache.Erase("a"));
  EXPECT_FALSE(cache.Erase("a"));
  EXPECT_FALSE(cache.Erase("zzz"));
  EXPECT_EQ(cache.Get("a"), std::nullopt);
  EXPECT_EQ(cache.Get("b"), 2);
  EXPECT_EQ(cache.size(), 1u);
  // Erased entries free their room: no eviction for the next two.
  cache.Put("c", 3);
  cache.Put("d", 4);
  cache.Put("e", 5);
  EXPECT_EQ(Evictions("t"), 0);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Get("b"), std::nullopt);
}

TEST_F(LruCacheTest, GetReturnsACopy) {
  LruCache<int, std::vector<int>> cache(2, registry_, "t", 1);
  cache.Put(1, {1, 2, 3});
  auto copy = cache.Get(1);
  ASSERT_TRUE(copy.has_value());
  copy->push_back(4);
  EXPECT_EQ(cache.Get(1)->size(), 3u);
}

TEST_F(LruCacheTest, CountsHitsAndMissesPerCache) {
  LruCache<std::string, int> items(10, registry_, "items");
  LruCache<std::string, int> users(10, registry_, "users");
  items.Put("a", 1);
  EXPECT_TRUE(items.Get("a"));
  EXPECT_TRUE(items.Get("a"));
  EXPECT_FALSE(items.Get("b"));
  EXPECT_FALSE(users.Get("a"));
  EXPECT_EQ(Requests("items", "hit"), 2);
  EXPECT_EQ(Requests("items", "miss"), 1);
  EXPECT_EQ(Requests("users", "hit"), 0);
  EXPECT_EQ(Requests("users", "miss"), 1);
  const std::string text = registry_.Expose(telemetry::ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find(R"(vigil_cache_requests_total{cache="items",result="hit"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(vigil_cache_evictions_total{cache="items"} 0)"), std::string::npos);
}

TEST_F(LruCacheTest, ShardsShareTheCapacityExactly) {
  LruCache<int, int> cache(100, registry_, "t", 16);
  EXPECT_EQ(cache.shard_count(), 16u);
  for (int i = 0; i < 1000; ++i) cache.Put(i, i);
  // Each shard is full at its share; the total never exceeds the capacity.
  EXPECT_LE(cache.size(), 100u);
  EXPECT_GE(cache.size(), 90u) << "keys spread over the shards";
  EXPECT_EQ(Evictions("t"), 1000 - static_cast<double>(cache.size()));
  // The most recent key of every shard survives.
  EXPECT_EQ(cache.Get(999), 999);

  LruCache<int, int> tiny(3, registry_, "tiny", 16);
  EXPECT_EQ(tiny.shard_count(), 3u) << "never more shards than entries";
}

TEST_F(LruCacheTest, ZeroCapacityDisablesCaching) {
  LruCache<std::string, int> cache(0, registry_, "off");
  cache.Put("a", 1);
  EXPECT_EQ(cache.Get("a"), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(Evictions("off"), 0);
  EXPECT_EQ(Requests("off", "miss"), 1);
}

TEST_F(LruCacheTest, ConcurrentUseKeepsItsInvariants) {
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  constexpr std::size_t kCapacity = 64;
  LruCache<int, std::string> cache(kCapacity, registry_, "race", 4);
  std::atomic<int> wrong{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      unsigned state = 12345u + static_cast<unsigned>(t);
      for (int i = 0; i < kOps; ++i) {
        state = state * 1103515245u + 12345u;
        const int key = static_cast<int>((state >> 16) % 200);
        switch ((state >> 8) % 4) {
          case 0:
          case 1:
            if (auto v = cache.Get(key); v && *v != std::to_string(key)) ++wrong;
            break;
          case 2:
            cache.Put(key, std::to_string(key));
            break;
          default:
            cache.Erase(key);
        }
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0) << "a value never belongs to another key";
  EXPECT_LE(cache.size(), kCapacity);
  const double lookups = Requests("race", "hit") + Requests("race", "miss");
  EXPECT_GT(lookups, 0);
  EXPECT_LE(lookups, static_cast<double>(kThreads * kOps));
}

}  // namespace
}  // namespace vigil::service

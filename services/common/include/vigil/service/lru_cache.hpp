// A bounded in-memory cache with least-recently-used eviction, for reads that are hot
// and cheap to invalidate (an item by id). Entries are split over shards by key hash,
// each shard an LRU list of its own behind its own mutex, so that workers looking up
// different keys rarely wait for each other. Eviction is LRU within a shard, which
// approximates global LRU closely when keys hash evenly.
//
//   service::LruCache<std::string, Item> cache(10000, telemetry.metrics(), "items");
//   if (auto item = cache.Get(id)) return *item;     // a copy, safe after the lock
//   cache.Put(id, item);                             // after a read from the database
//   cache.Erase(id);                                 // after every write to it
//
// Lookups count in vigil_cache_requests_total{cache, result="hit"|"miss"}, evictions in
// vigil_cache_evictions_total{cache}. A capacity of 0 disables caching (every Get is a
// miss, Put does nothing).
//
// Thread-safety: all methods may be called concurrently from any number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::service {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruCache {
 public:
  // `capacity` entries in all (split over at most `shards` shards, never more shards
  // than entries); registers the cache's metrics in `registry` under label cache=`name`.
  LruCache(std::size_t capacity, telemetry::Registry& registry, std::string_view name,
           std::size_t shards = 16)
      : capacity_(capacity),
        hits_(RequestsFamily(registry).WithLabels({name, "hit"})),
        misses_(RequestsFamily(registry).WithLabels({name, "miss"})),
        evictions_(registry
                       .CounterFamily("vigil_cache_evictions_total",
                                      "Entries evicted from in-memory caches to make room.",
                                      {"cache"})
                       .WithLabels({name})) {
    const std::size_t count = std::max<std::size_t>(1, std::min(shards, capacity));
    shards_ = std::make_unique<Shard[]>(count);
    shard_count_ = count;
    // The capacity is divided exactly: the first `capacity % count` shards hold one more.
    for (std::size_t i = 0; i < count; ++i) {
      shards_[i].capacity = capacity / count + (i < capacity % count ? 1 : 0);
    }
  }
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // A copy of the value for `key`, making it the most recently used; nullopt on a miss.
  std::optional<Value> Get(const Key& key) {
    Shard& shard = ShardFor(key);
    {
      std::lock_guard lock(shard.mu);
      auto it = shard.index.find(key);
      if (it != shard.index.end()) {
        shard.order.splice(shard.order.begin(), shard.order, it->second);
        std::optional<Value> value(it->second->second);
        hits_.Inc();
        return value;
      }
    }
    misses_.Inc();
    return std::nullopt;
  }

  // Stores `value` under `key` (replacing any value there) as the most recently used,
  // evicting the least recently used entry of its shard when the shard is full.
  void Put(Key key, Value value) {
    Shard& shard = ShardFor(key);
    if (shard.capacity == 0) return;
    bool evicted = false;
    {
      std::lock_guard lock(shard.mu);
      auto it = shard.index.find(key);
      if (it != shard.index.end()) {
        it->second->second = std::move(value);
        shard.order.splice(shard.order.begin(), shard.order, it->second);
        return;
      }
      if (shard.index.size() >= shard.capacity) {
        shard.index.erase(shard.order.back().first);
        shard.order.pop_back();
        evicted = true;
      }
      shard.order.emplace_front(std::move(key), std::move(value));
      try {
        shard.index.emplace(shard.order.front().first, shard.order.begin());
      } catch (...) {
        shard.order.pop_front();  // keep the list and the index in step
        throw;
      }
    }
    if (evicted) evictions_.Inc();
  }

  // Removes `key`; returns whether it was cached.
  bool Erase(const Key& key) {
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.index.find(key);
    if (it == shard.index.end()) return false;
    shard.order.erase(it->second);
    shard.index.erase(it);
    return true;
  }

  void Clear() {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      shards_[i].index.clear();
      shards_[i].order.clear();
    }
  }

  // Entries now (a snapshot: other threads may change it meanwhile).
  std::size_t size() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      n += shards_[i].index.size();
    }
    return n;
  }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t shard_count() const noexcept { return shard_count_; }

 private:
  using Entry = std::pair<Key, Value>;
  using Order = std::list<Entry>;  // most recently used first

  struct Shard {
    mutable std::mutex mu;
    std::size_t capacity = 0;
    Order order;
    std::unordered_map<Key, typename Order::iterator, Hash> index;
  };

  static telemetry::Family<telemetry::Counter>& RequestsFamily(telemetry::Registry& registry) {
    return registry.CounterFamily("vigil_cache_requests_total",
                                  "Lookups in in-memory caches, by outcome.", {"cache", "result"});
  }

  Shard& ShardFor(const Key& key) {
    if (shard_count_ == 1) return shards_[0];
    // The shard takes the high bits of a remixed hash; the shard's own map uses the low
    // bits of the plain hash, so the two choices stay independent.
    std::uint64_t h = static_cast<std::uint64_t>(Hash{}(key));
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return shards_[static_cast<std::size_t>((h >> 32) % shard_count_)];
  }

  std::size_t capacity_;
  std::size_t shard_count_ = 1;
  std::unique_ptr<Shard[]> shards_;
  telemetry::Counter& hits_;
  telemetry::Counter& misses_;
  telemetry::Counter& evictions_;
};

}  // namespace vigil::service

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vigil/ratelimit/memory_store.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::ratelimit {

namespace {

constexpr std::size_t kShards = 64;
// Idle keys are swept from a shard at most this often: every 10 s as keys come, and when
// the shard is full, unless it was swept in the last second (a flood of new keys then
// costs one eviction each, never a scan of the shard under its lock).
constexpr std::int64_t kSweepEveryUs = 10'000'000;
constexpr std::int64_t kFullSweepEveryUs = 1'000'000;

std::uint64_t Mix(std::uint64_t x) noexcept {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

// Keys are chosen by clients (an address, a header): hashed with a seed drawn per
// process, so that nobody can prepare keys that all land in one bucket.
std::uint64_t Seed() noexcept {
  static const std::uint64_t seed =
      Mix(static_cast<std::uint64_t>(std::random_device{}()) << 32 ^ std::random_device{}());
  return seed;
}

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const noexcept {
    std::uint64_t h = Seed();
    std::size_t i = 0;
    for (; i + 8 <= key.size(); i += 8) {
      std::uint64_t word;
      std::memcpy(&word, key.data() + i, 8);
      h = Mix(h ^ word);
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, key.data() + i, key.size() - i);
    return Mix(h ^ tail ^ (static_cast<std::uint64_t>(key.size()) << 56));
  }
};

}  // namespace

struct alignas(64) MemoryStore::Shard {
  struct Entry {
    std::int64_t tat;
    std::list<const std::string*>::iterator use;  // its place in `uses`
  };
  std::mutex mu;
  std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> tat;
  // The keys from least to most recently decided: a full shard of busy keys evicts the
  // front, in constant time whatever the flood of new keys.
  std::list<const std::string*> uses;
  std::int64_t last_sweep_us = 0;

  // Forgets every key whose quota is whole again at `now_us`.
  void Sweep(std::int64_t now_us) {
    for (auto it = tat.begin(); it != tat.end();) {
      if (it->second.tat <= now_us) {
        uses.erase(it->second.use);
        it = tat.erase(it);
      } else {
        ++it;
      }
    }
    last_sweep_us = now_us;
  }

  // Forgets the least recently decided key (the shard is not empty).
  void EvictOne() {
    const std::string* oldest = uses.front();
    uses.pop_front();
    tat.erase(tat.find(*oldest));
  }
};

MemoryStore::MemoryStore(std::size_t max_keys, telemetry::Counter* evicted)
    : shard_capacity_(std::max<std::size_t>(max_keys / kShards, 1)),
      shards_(std::make_unique<Shard[]>(kShards)),
      evicted_(evicted) {}

MemoryStore::~MemoryStore() = default;

Decision MemoryStore::Decide(std::string_view key, const Rate& rate, std::int64_t cost,
                             std::int64_t now_us) noexcept {
  const std::size_t hash = KeyHash{}(key);
  Shard& shard = shards_[(hash >> 7) % kShards];
  std::lock_guard lock(shard.mu);
  const auto found = shard.tat.find(key);
  const std::int64_t stored = found == shard.tat.end() ? 0 : found->second.tat;
  const Decision d = ratelimit::Decide(now_us, stored, rate, cost);
  if (found != shard.tat.end()) {
    if (std::next(found->second.use) != shard.uses.end()) {
      shard.uses.splice(shard.uses.end(), shard.uses, found->second.use);
    }
    found->second.tat = d.tat_us;
    return d;
  }
  if (!d.allowed) return d;
  try {
    if (now_us - shard.last_sweep_us > kSweepEveryUs) shard.Sweep(now_us);
    if (shard.tat.size() >= shard_capacity_) {
      if (now_us - shard.last_sweep_us > kFullSweepEveryUs) shard.Sweep(now_us);
      if (shard.tat.size() >= shard_capacity_) {
        shard.EvictOne();
        evictions_.fetch_add(1, std::memory_order_relaxed);
        if (evicted_ != nullptr) evicted_->Inc();
      }
    }
    const auto inserted = shard.tat.emplace(key, Shard::Entry{d.tat_us, {}}).first;
    try {
      inserted->second.use = shard.uses.insert(shard.uses.end(), &inserted->first);
    } catch (...) {
      shard.tat.erase(inserted);
      throw;
    }
  } catch (...) {
    // No memory for the key: decided as if new, which it is (nothing was stored).
  }
  return d;
}

std::size_t MemoryStore::size() const noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    total += shards_[i].tat.size();
  }
  return total;
}

std::int64_t NowMicros() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace vigil::ratelimit

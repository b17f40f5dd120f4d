#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vigil/ratelimit/memory_store.hpp>

namespace vigil::ratelimit {

namespace {

constexpr std::size_t kShards = 64;
// Idle keys are swept from a shard at most this often (and whenever it is full).
constexpr std::int64_t kSweepEveryUs = 10'000'000;
// A full shard of busy keys evicts the one whose quota comes back soonest among this
// many: a sample, so that a flood of new keys costs a bounded amount of work each.
constexpr int kEvictionSample = 8;

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const noexcept {
    return std::hash<std::string_view>{}(key);
  }
};

}  // namespace

struct alignas(64) MemoryStore::Shard {
  std::mutex mu;
  std::unordered_map<std::string, std::int64_t, KeyHash, std::equal_to<>> tat;
  std::int64_t last_sweep_us = 0;

  // Forgets every key whose quota is whole again at `now_us`.
  void Sweep(std::int64_t now_us) {
    std::erase_if(tat, [now_us](const auto& entry) { return entry.second <= now_us; });
    last_sweep_us = now_us;
  }

  // Forgets the key whose quota comes back soonest among a few (the shard is not empty).
  void EvictOne() {
    auto victim = tat.begin();
    auto it = victim;
    for (int i = 0; i < kEvictionSample && it != tat.end(); ++i, ++it) {
      if (it->second < victim->second) victim = it;
    }
    tat.erase(victim);
  }
};

MemoryStore::MemoryStore(std::size_t max_keys)
    : shard_capacity_(std::max<std::size_t>(max_keys / kShards, 1)),
      shards_(std::make_unique<Shard[]>(kShards)) {}

MemoryStore::~MemoryStore() = default;

Decision MemoryStore::Decide(std::string_view key, const Rate& rate, std::int64_t cost,
                             std::int64_t now_us) noexcept {
  const std::size_t hash = KeyHash{}(key);
  Shard& shard = shards_[(hash >> 7) % kShards];
  std::lock_guard lock(shard.mu);
  const auto found = shard.tat.find(key);
  const std::int64_t stored = found == shard.tat.end() ? 0 : found->second;
  const Decision d = ratelimit::Decide(now_us, stored, rate, cost);
  if (!d.allowed) return d;
  if (found != shard.tat.end()) {
    found->second = d.tat_us;
    return d;
  }
  try {
    if (now_us - shard.last_sweep_us > kSweepEveryUs) shard.Sweep(now_us);
    if (shard.tat.size() >= shard_capacity_) {
      shard.Sweep(now_us);
      if (shard.tat.size() >= shard_capacity_) {
        shard.EvictOne();
        evictions_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    shard.tat.emplace(key, d.tat_us);
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
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace vigil::ratelimit

// Decisions kept in this process: the default store, and the one a process falls back to
// while a shared store is unreachable.
//
// Keys are spread over shards by hash, each with its own small lock, so threads deciding
// on different keys rarely meet. A shard holds at most max_keys / shards keys; when it is
// full it first forgets keys whose quota is whole again (GCRA: the same as never seen),
// then the key whose quota comes back soonest, and counts that as an eviction (a client
// evicted early gets a fresh quota: memory stays bounded at the price of some leniency).
//
// Thread-safety: Decide() may be called from any number of threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vigil/ratelimit/gcra.hpp>

namespace vigil::ratelimit {

class MemoryStore {
 public:
  // `max_keys` (>= 1): the bound on keys held, over all shards.
  explicit MemoryStore(std::size_t max_keys = 1'000'000);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Decides a request of `cost` for `key` at `now_us` (a Unix time in microseconds) and
  // records it when allowed. Never throws: a key that cannot be stored (no memory) is
  // decided as if new.
  Decision Decide(std::string_view key, const Rate& rate, std::int64_t cost,
                  std::int64_t now_us) noexcept;

  // Keys currently held, and keys forgotten early because a shard was full.
  std::size_t size() const noexcept;
  std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_relaxed); }

 private:
  struct Shard;
  std::size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<std::uint64_t> evictions_{0};
};

// The current Unix time in microseconds (the clock the memory store decides with).
std::int64_t NowMicros() noexcept;

}  // namespace vigil::ratelimit

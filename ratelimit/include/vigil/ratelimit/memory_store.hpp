// Decisions kept in this process: the default store, and the one a process falls back to
// while a shared store is unreachable.
//
// Keys are spread over shards by a hash seeded per process, each shard with its own small
// lock, so threads deciding on different keys rarely meet. A shard holds at most
// max_keys / shards keys; when it is full it forgets keys whose quota is whole again
// (GCRA: the same as never seen; at most once a second), else the least recently decided
// key, and counts that as an eviction (a client evicted early gets a fresh quota: memory
// and the work per new key stay bounded at the price of some leniency).
//
// Thread-safety: Decide() may be called from any number of threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vigil/ratelimit/gcra.hpp>

namespace vigil::telemetry {
class Counter;
}

namespace vigil::ratelimit {

class MemoryStore {
 public:
  // `max_keys` (>= 1): the bound on keys held, over all shards. `evicted`, when given,
  // counts each eviction too (a metric; it must outlive the store).
  explicit MemoryStore(std::size_t max_keys = 1'000'000, telemetry::Counter* evicted = nullptr);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Decides a request of `cost` for `key` at `now_us` (NowMicros(), or any clock of the
  // caller's, used consistently) and
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
  telemetry::Counter* evicted_;
};

// The clock the memory store decides with, in microseconds: steady (a wall clock stepped
// back would refuse every busy key for the length of the step). Only Redis decisions need
// a shared clock, and they use Redis's own.
std::int64_t NowMicros() noexcept;

}  // namespace vigil::ratelimit

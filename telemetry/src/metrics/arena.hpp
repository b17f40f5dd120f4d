// Per-thread value arenas behind counters and histograms.
//
// A slot index names one 8-byte value in every thread's arena at once. Metrics own slot
// ranges (AllocateSlots); each thread adds into its own copy (internal::LocalSlot in the
// public header); a reader sums the range over all arenas while holding the arena lock
// (ArenaReader). Arenas are never freed: when a thread exits its arena goes to a pool and
// the next new thread continues in it, so values outlive the threads that wrote them.
//
//   std::uint32_t first = AllocateSlots(16);
//   { ArenaReader r; r.ForEach(first, [&](const Slot* s) { total += s->load(...); }); }
//   ReleaseSlots({{first, 16}});
//
// Thread-safety: every function here may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry::internal {

struct alignas(64) Chunk {
  Slot slots[kChunkSlots];
};

struct Arena {
  // Chunk pointers indexed by chunk number; null where the owner never wrote. Written by
  // the owner and read by readers, both under the arena lock only.
  std::unique_ptr<Slot*[]> table;
  std::uint32_t table_size = 0;
  std::vector<std::unique_ptr<Chunk>> chunks;
};

struct SlotRange {
  std::uint32_t first;
  std::uint32_t count;
};

// A range of `count` consecutive slots inside one chunk, zero in every arena. Throws
// std::length_error when count is 0 or larger than a chunk.
std::uint32_t AllocateSlots(std::uint32_t count);
// Zeroes the ranges in every arena and makes them available again. The metrics that
// owned them must no longer be updated.
void ReleaseSlots(std::span<const SlotRange> ranges) noexcept;

std::mutex& ArenaMutex() noexcept;
const std::vector<std::unique_ptr<Arena>>& ArenasLocked() noexcept;

// Holds the arena lock; visits a slot range in each arena that has it.
class ArenaReader {
 public:
  ArenaReader() : lock_(ArenaMutex()) {}

  // f(const Slot* first) once per arena holding the chunk of `first`.
  template <class F>
  void ForEach(std::uint32_t first, F&& f) const {
    const std::uint32_t chunk = first >> kChunkShift;
    for (const auto& arena : ArenasLocked()) {
      if (chunk >= arena->table_size) {
        continue;
      }
      const Slot* base = arena->table[chunk];
      if (base != nullptr) {
        f(base + (first & kChunkMask));
      }
    }
  }

  // A counter's value: its double slot plus its unit-step slot, over all arenas.
  double CounterTotal(std::uint32_t slot) const {
    double total = 0;
    std::uint64_t steps = 0;
    ForEach(slot, [&](const Slot* s) {
      total += std::bit_cast<double>(s[0].load(std::memory_order_relaxed));
      steps += s[1].load(std::memory_order_relaxed);
    });
    return total + static_cast<double>(steps);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace vigil::telemetry::internal

// Machinery behind Counter and Histogram, not part of the API: the calling thread's
// arena of 8-byte value slots, inline so that an update is a few instructions. The rest
// of the arena (allocation, readers, thread exit) is in src/metrics/arena.hpp.
//
// Thread-safety: a thread writes only its own arena's slots; see metrics.hpp.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>

namespace vigil::telemetry::internal {

// One 8-byte value in a thread's arena: a double's bits (counter sums, histogram sums)
// or an integer (counter unit steps, histogram bucket counts).
using Slot = std::atomic<std::uint64_t>;

inline constexpr std::uint32_t kChunkShift = 9;
inline constexpr std::uint32_t kChunkSlots = 1u << kChunkShift;  // 4 KiB per chunk
inline constexpr std::uint32_t kChunkMask = kChunkSlots - 1;

// The calling thread's view of its arena: a table of fixed-size chunks, each allocated
// on first use and never moved. Only the owning thread writes its chunks' slots.
struct ThreadSlots {
  Slot* const* chunks = nullptr;
  std::uint32_t chunk_count = 0;
};
extern thread_local constinit ThreadSlots tls_slots;

// Attaches an arena to the thread and allocates the chunk holding `slot`.
Slot* LocalSlotSlow(std::uint32_t slot) noexcept;

inline Slot* LocalSlot(std::uint32_t slot) noexcept {
  const std::uint32_t chunk = slot >> kChunkShift;
  // Named directly, not through a reference: g++ 12 with -fsanitize=null emits a broken
  // null check (a branch on stale flags) for a reference bound to a thread_local.
  if (chunk < tls_slots.chunk_count) [[likely]] {
    Slot* base = tls_slots.chunks[chunk];
    if (base != nullptr) [[likely]] {
      return base + (slot & kChunkMask);
    }
  }
  return LocalSlotSlow(slot);
}

// No lock-prefixed instruction: the slot has a single writer (this thread), the atomic
// type only makes the scraping thread's concurrent reads well-defined.
inline void AddDouble(Slot* s, double v) noexcept {
  const double now = std::bit_cast<double>(s->load(std::memory_order_relaxed));
  s->store(std::bit_cast<std::uint64_t>(now + v), std::memory_order_relaxed);
}
inline void AddOne(Slot* s) noexcept {
  s->store(s->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace vigil::telemetry::internal

#include "metrics/arena.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>

namespace vigil::telemetry::internal {

thread_local constinit ThreadSlots tls_slots{};

namespace {

struct ArenaState {
  std::mutex mu;
  std::vector<std::unique_ptr<Arena>> arenas;  // every arena ever made, live or pooled
  std::vector<Arena*> pool;                    // arenas whose thread exited
  std::uint32_t next_slot = 0;
  std::vector<SlotRange> free_ranges;
};

// Never destroyed: threads' exit handlers and static registries' destructors may run
// after static destruction has begun.
ArenaState& State() noexcept {
  alignas(ArenaState) static unsigned char storage[sizeof(ArenaState)];
  static ArenaState* const state = ::new (static_cast<void*>(storage)) ArenaState;
  return *state;
}

// Where updates go if a chunk cannot be allocated: values are lost, the process lives.
Chunk g_sink_chunk;

thread_local constinit Arena* tls_arena = nullptr;
thread_local constinit bool tls_exited = false;

// Returns the thread's arena to the pool when the thread exits.
struct ArenaLease {
  ~ArenaLease() {
    ArenaState& s = State();
    std::lock_guard lock(s.mu);
    if (tls_arena != nullptr) {
      s.pool.push_back(tls_arena);
    }
    tls_arena = nullptr;
    tls_slots = ThreadSlots{};
    tls_exited = true;
  }
};

Arena* AcquireArenaLocked(ArenaState& s) {
  if (!s.pool.empty()) {
    Arena* a = s.pool.back();
    s.pool.pop_back();
    return a;
  }
  s.arenas.push_back(std::make_unique<Arena>());
  return s.arenas.back().get();
}

void GrowTableLocked(Arena& a, std::uint32_t min_size) {
  std::uint32_t size = std::max<std::uint32_t>(a.table_size, 8);
  while (size < min_size) {
    size *= 2;
  }
  auto table = std::make_unique<Slot*[]>(size);  // value-initialised: all null
  std::copy_n(a.table.get(), a.table_size, table.get());
  a.table = std::move(table);
  a.table_size = size;
}

}  // namespace

Slot* LocalSlotSlow(std::uint32_t slot) noexcept {
  const std::uint32_t chunk = slot >> kChunkShift;
  try {
    ArenaState& s = State();
    std::lock_guard lock(s.mu);
    if (tls_arena == nullptr) {
      tls_arena = AcquireArenaLocked(s);
      // A thread that updates a metric from another thread_local's destructor, after its
      // lease ended, keeps its new arena out of the pool; the values are still counted.
      if (!tls_exited) {
        static thread_local ArenaLease lease;
        (void)lease;
      }
    }
    Arena& a = *tls_arena;
    if (chunk >= a.table_size) {
      GrowTableLocked(a, chunk + 1);
    }
    if (a.table[chunk] == nullptr) {
      a.chunks.push_back(std::make_unique<Chunk>());
      a.table[chunk] = a.chunks.back()->slots;
    }
    tls_slots = ThreadSlots{a.table.get(), a.table_size};
    return a.table[chunk] + (slot & kChunkMask);
  } catch (...) {
    return g_sink_chunk.slots + (slot & kChunkMask);
  }
}

std::uint32_t AllocateSlots(std::uint32_t count) {
  if (count == 0 || count > kChunkSlots) {
    throw std::length_error("metrics: bad slot range size");
  }
  ArenaState& s = State();
  std::lock_guard lock(s.mu);
  for (auto it = s.free_ranges.begin(); it != s.free_ranges.end(); ++it) {
    if (it->count < count) {
      continue;
    }
    const std::uint32_t first = it->first;
    it->first += count;
    it->count -= count;
    if (it->count == 0) {
      s.free_ranges.erase(it);
    }
    return first;
  }
  const std::uint32_t used_in_chunk = s.next_slot & kChunkMask;
  if (used_in_chunk + count > kChunkSlots) {
    // Ranges never straddle chunks: one pointer covers a whole histogram.
    s.free_ranges.push_back({s.next_slot, kChunkSlots - used_in_chunk});
    s.next_slot += kChunkSlots - used_in_chunk;
  }
  if (s.next_slot > UINT32_MAX - kChunkSlots) {
    throw std::length_error("metrics: out of slots");
  }
  const std::uint32_t first = s.next_slot;
  s.next_slot += count;
  return first;
}

void ReleaseSlots(std::span<const SlotRange> ranges) noexcept {
  ArenaState& s = State();
  std::lock_guard lock(s.mu);
  for (const SlotRange& r : ranges) {
    const std::uint32_t chunk = r.first >> kChunkShift;
    for (const auto& arena : s.arenas) {
      if (chunk >= arena->table_size || arena->table[chunk] == nullptr) {
        continue;
      }
      Slot* base = arena->table[chunk] + (r.first & kChunkMask);
      for (std::uint32_t i = 0; i < r.count; ++i) {
        base[i].store(0, std::memory_order_relaxed);
      }
    }
    try {
      s.free_ranges.push_back(r);
    } catch (...) {
      // Losing a range for reuse only costs memory.
    }
  }
}

std::mutex& ArenaMutex() noexcept { return State().mu; }

const std::vector<std::unique_ptr<Arena>>& ArenasLocked() noexcept { return State().arenas; }

}  // namespace vigil::telemetry::internal

// A single-producer single-consumer byte ring holding encoded log records (record.hpp).
//
// One ring exists per (producing thread, logger). The producing thread reserves the exact
// size of a record once, writes it in place and publishes it with one release store;
// the logger's backend (or a fatal-signal handler holding the logger's drain lock) is the
// only consumer. Records never straddle the end of the buffer: when one does not fit
// before the end, a padding record fills the rest and the record starts at offset 0.
// Capping records at half the capacity guarantees that the padding plus the record fit
// once the ring is empty, so a blocked producer always makes progress eventually.
//
//   if (char* p = ring->TryReserveFast(size)) {  // producer, common case
//     Encode(p, size, ...); ring->CommitFast(size);
//   } else if (char* q = ring->TryReserve(size)) {  // wrap, half full; nullptr when full
//     Encode(q, size, ...); ring->Commit();
//   }
//   ring->Consume([&](const char* rec, std::size_t) { formatter.Format(rec, out); });
//
// Cache lines: once the consumer has read a line it never reads it again, and the next
// to touch it is the producer, writing, one lap later. If the consumer's core still holds
// a copy then, each of the producer's stores to that line waits for the copy to be
// invalidated across cores (a lap of the default 1 MiB ring is short enough for the copies
// to survive in the consumer's L2; see docs/performance.md). So the consumer
// evicts the lines it has finished with (CLFLUSHOPT, where the CPU has it) before it hands
// the space back: the producer then finds them in no other core's cache.
//
// Lifetime: two references, the producing thread's and the logger's. The thread drops
// its own when it exits (after marking the ring producer_gone, so the backend drains and
// unlinks it) or when it notices the logger is gone; the logger drops its own when it
// unlinks the ring or is destroyed (after marking the ring logger_gone and freeing the
// buffer, which no one can touch any more: the thread only uses a ring whose logger id
// matches a live logger, and ids are never reused).
//
// Thread-safety: producer methods from the owning thread only; consumer methods by the
// holder of the logger's drain lock only; flags and references from anywhere.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "log/record.hpp"

namespace vigil::telemetry::internal {

// Whether the CPU has CLFLUSHOPT (CPUID leaf 7, EBX bit 23).
inline bool CpuHasClflushopt() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    unsigned eax = 0;
    unsigned ebx = 0;
    unsigned ecx = 0;
    unsigned edx = 0;
    return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (ebx & (1u << 23)) != 0;
  }();
  return has;
#else
  return false;
#endif
}

// Evicts the lines [begin, end) of `data` (offsets in a ring of mask + 1 bytes, 64-byte
// aligned) from every cache. Only call where CpuHasClflushopt().
#if defined(__x86_64__) || defined(__i386__)
[[gnu::target("clflushopt")]] inline void EvictLines(char* data, std::size_t mask,
                                                     std::uint64_t begin,
                                                     std::uint64_t end) noexcept {
  for (; begin < end; begin += 64) _mm_clflushopt(data + (static_cast<std::size_t>(begin) & mask));
}
#else
inline void EvictLines(char*, std::size_t, std::uint64_t, std::uint64_t) noexcept {}
#endif

class Ring {
 public:
  static constexpr std::size_t kMinCapacity = 256;
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 30;

  static std::size_t RoundCapacity(std::size_t requested) noexcept {
    std::size_t cap = kMinCapacity;
    while (cap < requested && cap < kMaxCapacity) cap <<= 1;
    return cap;
  }

  // A ring of RoundCapacity(capacity) bytes holding two references; nullptr when memory
  // is exhausted.
  static Ring* Create(std::size_t capacity, std::uint64_t logger_id) noexcept {
    capacity = RoundCapacity(capacity);
    auto* data = static_cast<char*>(::operator new (capacity, std::align_val_t{64}, std::nothrow));
    if (data == nullptr) return nullptr;
    auto* ring = new (std::nothrow) Ring(data, capacity, logger_id);
    if (ring == nullptr) ::operator delete (data, std::align_val_t{64});
    return ring;
  }

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  std::uint64_t logger_id() const noexcept { return logger_id_; }
  std::size_t capacity() const noexcept { return cap_; }
  // The largest record the ring accepts (see the file comment).
  std::size_t max_record() const noexcept { return max_record_; }

  // --- producer ---------------------------------------------------------------------

  // The common case in one comparison: space for a record of `size` bytes (a multiple
  // of 8) that needs no padding record and leaves the ring at most half full as far as
  // the producer last knew; nullptr otherwise (then use TryReserve). Publish with
  // CommitFast(size).
  char* TryReserveFast(std::size_t size) noexcept {
    if (head_local_ + size > fast_limit_) return nullptr;
    return data_ + (static_cast<std::size_t>(head_local_) & mask_);
  }
  void CommitFast(std::size_t size) noexcept {
    head_local_ += size;
    head_.store(head_local_, std::memory_order_release);
  }

  // Space for a record of `size` bytes (a multiple of 8, at most max_record()), or
  // nullptr when the ring is too full. Publish with Commit().
  char* TryReserve(std::size_t size) noexcept {
    const std::uint64_t pos = head_local_;
    std::size_t offset = static_cast<std::size_t>(pos) & mask_;
    const std::size_t pad = offset + size > cap_ ? cap_ - offset : 0;
    const std::uint64_t end = pos + pad + size;
    if (end - cached_tail_ > cap_ / 2) {
      // Only here can the ring be more than half full; while it stays so, every call
      // comes back here (end only grows), so over_half_ is never stale.
      cached_tail_ = tail_.load(std::memory_order_acquire);
      over_half_ = end - cached_tail_ > cap_ / 2;
      if (end - cached_tail_ > cap_) return nullptr;
    }
    if (pad != 0) {
      char* p = data_ + offset;
      p = Put(p, static_cast<std::uint32_t>(pad));
      Put(p, kRecordPadding);
      offset = 0;
    }
    pending_end_ = end;
    // What TryReserveFast may use after this record: up to the end of the buffer, and
    // up to half the ring ahead of the consumer as last seen (an end exactly at the
    // buffer's end starts the next lap).
    const std::uint64_t lap_end = (end & ~static_cast<std::uint64_t>(mask_)) + cap_;
    const std::uint64_t half_full = cached_tail_ + cap_ / 2;
    fast_limit_ = lap_end < half_full ? lap_end : half_full;
    return data_ + offset;
  }

  // Whether the last successful TryReserve left the ring more than half full: the
  // producer's cue to wake a sleeping backend.
  bool over_half() const noexcept { return over_half_; }

  // Publishes the record reserved last.
  void Commit() noexcept {
    head_local_ = pending_end_;
    head_.store(head_local_, std::memory_order_release);
  }

  // Only the producer writes the counter, so a relaxed load+store is enough.
  void CountDrop() noexcept {
    dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // --- consumer ---------------------------------------------------------------------

  // Calls fn(record, size) for every record published when the call starts; returns
  // the bytes consumed (records and padding). Space is handed back to the producer
  // every 64 KiB so that a blocked producer does not wait for the whole pass.
  template <typename Fn>
  std::size_t Consume(Fn&& fn) {
    const std::uint64_t start = tail_.load(std::memory_order_relaxed);
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    std::uint64_t tail = start;
    std::uint64_t released = tail;
    while (tail != head) {
      const char* p = data_ + (static_cast<std::size_t>(tail) & mask_);
      std::uint32_t size;
      std::memcpy(&size, p, sizeof size);
      if (static_cast<std::uint8_t>(p[4]) == kRecordLine) fn(p, static_cast<std::size_t>(size));
      tail += size;
      if (tail - released >= 64 * 1024) {
        EvictConsumedLines(tail);
        tail_.store(tail, std::memory_order_release);
        released = tail;
      }
    }
    if (tail != start) {
      EvictConsumedLines(tail);
      tail_.store(tail, std::memory_order_release);
    }
    return static_cast<std::size_t>(tail - start);
  }

  bool Empty() const noexcept {
    return tail_.load(std::memory_order_relaxed) == head_.load(std::memory_order_acquire);
  }

  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

  // --- lifetime and list linkage ------------------------------------------------------

  void MarkProducerGone() noexcept { producer_gone_.store(true, std::memory_order_release); }
  bool producer_gone() const noexcept { return producer_gone_.load(std::memory_order_acquire); }
  void MarkLoggerGone() noexcept { logger_gone_.store(true, std::memory_order_release); }
  bool logger_gone() const noexcept { return logger_gone_.load(std::memory_order_acquire); }

  // Called by the logger once no one can read or write records any more.
  void FreeBuffer() noexcept {
    ::operator delete (data_, std::align_val_t{64});
    data_ = nullptr;
  }

  void Release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::atomic<Ring*> next{nullptr};  // the logger's list of rings (logger_core.hpp)

 private:
  Ring(char* data, std::size_t capacity, std::uint64_t logger_id) noexcept
      : data_(data),
        cap_(capacity),
        mask_(capacity - 1),
        max_record_(capacity / 2),
        logger_id_(logger_id),
        evict_lines_(CpuHasClflushopt()),
        fast_limit_(capacity / 2) {}
  ~Ring() {
    if (data_ != nullptr) ::operator delete (data_, std::align_val_t{64});
  }

  // Evicts every line wholly below `tail` not evicted yet. The line holding `tail` itself
  // may be the one the producer is writing, so it waits for the next pass.
  void EvictConsumedLines(std::uint64_t tail) noexcept {
    if (!evict_lines_) return;
    const std::uint64_t end = tail & ~std::uint64_t{kLine - 1};
    // At most one lap: the producer is never more than the capacity ahead.
    EvictLines(data_, mask_, evicted_, end);
    evicted_ = end;
  }

  static constexpr std::size_t kLine = 64;

  // Read-only after construction (apart from FreeBuffer at the very end).
  alignas(64) char* data_;
  const std::size_t cap_;
  const std::size_t mask_;
  const std::size_t max_record_;
  const std::uint64_t logger_id_;
  const bool evict_lines_;

  // Producer-private.
  alignas(64) std::uint64_t head_local_ = 0;
  std::uint64_t fast_limit_;  // see TryReserve
  std::uint64_t cached_tail_ = 0;
  std::uint64_t pending_end_ = 0;
  bool over_half_ = false;
  std::atomic<std::uint64_t> dropped_{0};

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  // Consumer-private, beside the consumer's other line: lines below this position have
  // been evicted.
  std::uint64_t evicted_ = 0;

  alignas(64) std::atomic<int> refs_{2};
  std::atomic<bool> producer_gone_{false};
  std::atomic<bool> logger_gone_{false};
};

}  // namespace vigil::telemetry::internal

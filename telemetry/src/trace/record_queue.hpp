// The processor's queue: a bounded multi-producer, single-consumer ring of record
// pointers, after Dmitry Vyukov's bounded MPMC queue (each cell carries a sequence
// number that says whose turn it is, so producers only contend on one counter and
// never wait for each other or for the consumer).
//
//   RecordQueue q(2048);
//   if (!q.TryPush(r)) DropAndCount(r);   // producers, any thread
//   while (auto* r = q.TryPop()) ...      // the one consumer
//
// Any capacity works (not only powers of two), so OTEL_BSP_MAX_QUEUE_SIZE is honoured
// exactly.
//
// Thread-safety: TryPush from any number of threads; TryPop, and the consumer-side
// accessors, from one thread at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace vigil::telemetry::internal {

struct PooledRecord;

class RecordQueue {
 public:
  explicit RecordQueue(std::size_t capacity)
      : capacity_(capacity),
        mask_((capacity & (capacity - 1)) == 0 ? capacity - 1 : 0),
        cells_(new Cell[capacity]) {
    for (std::size_t i = 0; i < capacity; ++i) {
      cells_[i].sequence.store(i, std::memory_order_relaxed);
    }
  }

  // False when full. The claiming compare-and-swap is sequentially consistent: the
  // processor's sleep/wake handshake depends on it being ordered before the producer's
  // subsequent check of the worker's sleeping flag.
  bool TryPush(PooledRecord* record) noexcept {
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    Cell* cell;
    for (;;) {
      cell = &cells_[Index(pos)];
      const std::uint64_t seq = cell->sequence.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          break;
        }
      } else if (diff < 0) {
        return false;  // the cell still holds an entry from one lap ago: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
    cell->record = record;
    cell->sequence.store(pos + 1, std::memory_order_release);
    return true;
  }

  // Null when the next entry is not there (empty, or a producer between its claim and
  // its publish).
  PooledRecord* TryPop() noexcept {
    const std::uint64_t pos = head_.load(std::memory_order_relaxed);
    Cell& cell = cells_[Index(pos)];
    const std::uint64_t seq = cell.sequence.load(std::memory_order_acquire);
    if (seq != pos + 1) {
      return nullptr;
    }
    PooledRecord* record = cell.record;
    cell.sequence.store(pos + capacity_, std::memory_order_release);
    head_.store(pos + 1, std::memory_order_release);
    return record;
  }

  // Positions: every entry below tail() was claimed, every one below head() consumed.
  std::uint64_t tail() const noexcept { return tail_.load(std::memory_order_seq_cst); }
  std::uint64_t head() const noexcept { return head_.load(std::memory_order_acquire); }
  // Approximate from a producer (exact from the consumer when no push is in flight).
  std::uint64_t size() const noexcept {
    const std::uint64_t h = head();
    const std::uint64_t t = tail();
    return t > h ? t - h : 0;
  }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct Cell {
    std::atomic<std::uint64_t> sequence;
    PooledRecord* record;
  };

  std::size_t Index(std::uint64_t pos) const noexcept {
    return static_cast<std::size_t>(mask_ != 0 ? (pos & mask_) : (pos % capacity_));
  }

  const std::size_t capacity_;
  const std::size_t mask_;  // capacity - 1 for a power of two, else 0 (use %)
  const std::unique_ptr<Cell[]> cells_;
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // producers
  alignas(64) std::atomic<std::uint64_t> head_{0};  // the consumer
};

}  // namespace vigil::telemetry::internal

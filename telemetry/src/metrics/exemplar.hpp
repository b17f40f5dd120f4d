// Exemplar storage: one cell per counter or histogram bucket, allocated on the first
// exemplar so that metrics never given one stay small.
//
// Each cell is a seqlock over plain atomic words. Writers try-lock (a writer that finds
// the cell busy skips: the latest exemplar is best effort); readers retry a few times
// and never return a torn exemplar.
//
//   StoreExemplar(cells_, bucket_count, bucket, value, span_context);
//   std::optional<Exemplar> e = LoadExemplar(cells_, bucket);
//
// Thread-safety: StoreExemplar and LoadExemplar may race freely.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry::internal {

struct ExemplarCell {
  std::atomic<std::uint64_t> seq{0};  // 0: never written; odd: a write is in progress
  std::atomic<std::uint64_t> value_bits{0};
  std::atomic<std::int64_t> unix_nanos{0};
  std::atomic<std::uint64_t> trace_hi{0};
  std::atomic<std::uint64_t> trace_lo{0};
  std::atomic<std::uint64_t> span{0};
};

// Stores into cell `index` of an array of `count` cells, allocating the array first if
// needed. Does nothing when `ctx` is invalid or not sampled, or when allocation fails.
void StoreExemplar(std::atomic<ExemplarCell*>& cells, std::size_t count, std::size_t index,
                   double value, const SpanContext& ctx) noexcept;

std::optional<Exemplar> LoadExemplar(const std::atomic<ExemplarCell*>& cells,
                                     std::size_t index) noexcept;

inline void FreeExemplars(std::atomic<ExemplarCell*>& cells) noexcept {
  delete[] cells.exchange(nullptr, std::memory_order_acquire);
}

}  // namespace vigil::telemetry::internal

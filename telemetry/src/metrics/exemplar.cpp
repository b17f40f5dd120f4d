#include "metrics/exemplar.hpp"

#include <chrono>
#include <cstring>
#include <new>

namespace vigil::telemetry::internal {
namespace {

std::uint64_t Word(const std::uint8_t* bytes) noexcept {
  std::uint64_t w;
  std::memcpy(&w, bytes, sizeof w);
  return w;
}

ExemplarCell* CellsFor(std::atomic<ExemplarCell*>& cells, std::size_t count) noexcept {
  ExemplarCell* current = cells.load(std::memory_order_acquire);
  if (current != nullptr) {
    return current;
  }
  auto* fresh = new (std::nothrow) ExemplarCell[count];
  if (fresh == nullptr) {
    return nullptr;
  }
  if (cells.compare_exchange_strong(current, fresh, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
    return fresh;
  }
  delete[] fresh;  // another thread installed its array first
  return current;
}

}  // namespace

void StoreExemplar(std::atomic<ExemplarCell*>& cells, std::size_t count, std::size_t index,
                   double value, const SpanContext& ctx) noexcept {
  if (!ctx.IsValid() || !ctx.sampled()) {
    return;
  }
  ExemplarCell* all = CellsFor(cells, count);
  if (all == nullptr) {
    return;
  }
  ExemplarCell& cell = all[index];

  std::uint64_t seq = cell.seq.load(std::memory_order_relaxed);
  if ((seq & 1) != 0) {
    return;
  }
  if (!cell.seq.compare_exchange_strong(seq, seq + 1, std::memory_order_relaxed)) {
    return;
  }
  // Orders the odd sequence number before the data: a reader that sees any new word
  // then sees a changed sequence number on its second read.
  std::atomic_thread_fence(std::memory_order_release);

  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  cell.value_bits.store(std::bit_cast<std::uint64_t>(value), std::memory_order_relaxed);
  cell.unix_nanos.store(now, std::memory_order_relaxed);
  cell.trace_hi.store(Word(ctx.trace_id.bytes().data()), std::memory_order_relaxed);
  cell.trace_lo.store(Word(ctx.trace_id.bytes().data() + 8), std::memory_order_relaxed);
  cell.span.store(Word(ctx.span_id.bytes().data()), std::memory_order_relaxed);
  cell.seq.store(seq + 2, std::memory_order_release);
}

std::optional<Exemplar> LoadExemplar(const std::atomic<ExemplarCell*>& cells,
                                     std::size_t index) noexcept {
  const ExemplarCell* all = cells.load(std::memory_order_acquire);
  if (all == nullptr) {
    return std::nullopt;
  }
  const ExemplarCell& cell = all[index];
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint64_t before = cell.seq.load(std::memory_order_acquire);
    if (before == 0) {
      return std::nullopt;
    }
    if ((before & 1) != 0) {
      continue;
    }
    const std::uint64_t value = cell.value_bits.load(std::memory_order_relaxed);
    const std::int64_t nanos = cell.unix_nanos.load(std::memory_order_relaxed);
    const std::uint64_t hi = cell.trace_hi.load(std::memory_order_relaxed);
    const std::uint64_t lo = cell.trace_lo.load(std::memory_order_relaxed);
    const std::uint64_t span = cell.span.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (cell.seq.load(std::memory_order_relaxed) != before) {
      continue;
    }

    std::array<std::uint8_t, TraceId::kSize> trace{};
    std::memcpy(trace.data(), &hi, 8);
    std::memcpy(trace.data() + 8, &lo, 8);
    std::array<std::uint8_t, SpanId::kSize> span_bytes{};
    std::memcpy(span_bytes.data(), &span, 8);
    return Exemplar{std::bit_cast<double>(value), nanos, TraceId(trace), SpanId(span_bytes)};
  }
  return std::nullopt;  // a writer kept the cell busy: leave the exemplar out this time
}

}  // namespace vigil::telemetry::internal

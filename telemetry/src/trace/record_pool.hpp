// Span records and the pool that recycles them, so that a span costs no allocation once
// the pool is warm.
//
// A record keeps every buffer it ever grew: the name's and tracestate's capacity, and
// the attribute, event and link elements themselves (whose key and string buffers are
// overwritten in place by the next span with the same shape). Only the first `*_used`
// elements are live while a span records; End() trims the vectors to exactly those,
// moving surplus attribute elements aside, so exporters see a plain SpanData.
//
// Records circulate: a thread takes them from its own cache (refilled from the shared
// pool, one lock per kThreadCacheRefill records), the processor's worker gives whole
// exported batches back to the shared pool (one lock per batch). The shared pool keeps
// at most the sum of its processors' queue and batch sizes; surplus records are freed.
//
// A record is reset when it is taken, by the thread about to fill it, not when it is
// given back: the worker returns a batch by its pointers alone and never touches the
// records' memory, which the producing thread's cache holds. (Resetting on the worker
// cost it cross-core cache misses that made it nearly as slow per span as the
// producer.)
//
//   PooledRecord* r = AcquireRecord();   // span start (any thread): reset, ready
//   ...                                  // span end -> queue -> export
//   ReleaseRecords(batch, n);            // worker, after Export()
//
// Thread-safety: AcquireRecord/ReleaseRecordLocal use the calling thread's cache;
// ReleaseRecords and the capacity functions lock the shared pool. A record belongs to
// one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>
#include <vigil/telemetry/span_data.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::telemetry {
class BatchSpanProcessor;
}

namespace vigil::telemetry::internal {

struct PooledRecord : SpanData {
  BatchSpanProcessor* processor = nullptr;
  SpanLimits limits;
  std::uint32_t attributes_used = 0;
  // A fingerprint of each of the first kPrintedKeys live attribute keys (KeyPrint in
  // span.cpp): SetAttribute looks for a duplicate key in this compact array and reads
  // an attribute's key only when its print matches. Valid below attributes_used.
  static constexpr std::uint32_t kPrintedKeys = 16;
  std::array<std::uint64_t, kPrintedKeys> key_prints{};
  std::uint32_t events_used = 0;
  std::uint32_t links_used = 0;
  // Some buffer may have grown unusually large (set by the span's thread; the worker
  // then runs ShrinkOversized before recycling).
  bool oversized = false;
  // Elements beyond attributes_used moved out at End(), reused when a later span needs
  // more attributes than this record's last one had.
  std::vector<Attribute> spare_attributes;

  // Gets ready for the next span without giving up any buffer (unlike SpanData::Clear).
  void Reset() noexcept;
  // Cuts the vectors to the live elements (done at End(), before export).
  void TrimToUsed() noexcept;
  // Frees buffers that one unusual span grew far beyond the usual size.
  void ShrinkOversized();
  // ShrinkOversized when needed, then Reset.
  void Recycle() noexcept;
};

// Events and links with more attributes than this are trimmed when recycled.
inline constexpr std::size_t kMaxKeptNestedAttributes = 16;

// Refill/return granularity of the per-thread cache; the cache holds at most twice that.
inline constexpr std::size_t kThreadCacheRefill = 64;

// A reset record, from this thread's cache (never null; allocates only when the pool is
// empty and throws std::bad_alloc if that fails).
PooledRecord* AcquireRecord();
// Gives a record back to this thread's cache (a span dropped before export).
void ReleaseRecordLocal(PooledRecord* record) noexcept;
// Gives records back to the shared pool in one go (the worker after an export), without
// reading them; frees those beyond the pool's capacity.
void ReleaseRecords(PooledRecord* const* records, std::size_t count) noexcept;

// Processors add their queue + batch size to the shared pool's capacity while they live.
void AddPoolCapacity(std::size_t records) noexcept;
void RemovePoolCapacity(std::size_t records) noexcept;

struct PoolStats {
  std::int64_t live_records;  // allocated and not yet freed, wherever they are
  std::size_t shared_free;    // in the shared pool
  std::size_t capacity;       // the shared pool's current limit
};
PoolStats GetPoolStats() noexcept;

}  // namespace vigil::telemetry::internal

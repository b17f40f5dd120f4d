// Prefetching a batch's span records ahead of an encoder that walks them in order.
//
// The records an exporter reads were written on the request threads' cores, so each one
// arrives line by line as the encoder first touches it: the record, its attribute array,
// then every key and string value kept outside the object (keys over 15 bytes, paths,
// user agents). Those loads depend on one another only within a record, so requesting
// the lines of the records a few places ahead lets the transfers overlap with the work
// on the current one. Three stages, because each needs what the one before brought in:
// the record itself, then the arrays and name it points to, then the strings its
// attributes point to.
//
//   for (std::size_t i = 0; i < spans.size(); ++i) {
//     PrefetchAhead(spans, i);
//     Encode(*spans[i]);
//   }
//
// A hint only: it reads nothing that Encode would not read and changes no result.
// Thread-safety: reads the records, like the encoder that calls it.
#pragma once

#include <cstddef>
#include <span>
#include <vigil/telemetry/span_data.hpp>

#include "prefetch.hpp"

namespace vigil::telemetry::otlp {

// How many records ahead each stage works. Measured with bench/otlp_bench's
// BM_EncodeProtobufColdRecords (docs/performance.md).
inline constexpr std::size_t kPrefetchRecordAhead = 8;
inline constexpr std::size_t kPrefetchArraysAhead = 4;
inline constexpr std::size_t kPrefetchStringsAhead = 2;

inline void PrefetchAhead(std::span<const SpanData* const> spans, std::size_t i) noexcept {
  using prefetch::PrefetchHeapString;
  using prefetch::PrefetchLines;
  if (i + kPrefetchRecordAhead < spans.size()) {
    PrefetchLines(spans[i + kPrefetchRecordAhead], sizeof(SpanData));
  }
  if (i + kPrefetchArraysAhead < spans.size()) {
    const SpanData& s = *spans[i + kPrefetchArraysAhead];
    PrefetchLines(s.attributes.data(), s.attributes.size() * sizeof(Attribute));
    PrefetchHeapString(s.name);
    if (!s.events.empty()) PrefetchLines(s.events.data(), s.events.size() * sizeof(SpanEvent));
  }
  if (i + kPrefetchStringsAhead < spans.size()) {
    prefetch::PrefetchAttributeBuffers(spans[i + kPrefetchStringsAhead]->attributes);
  }
}

}  // namespace vigil::telemetry::otlp

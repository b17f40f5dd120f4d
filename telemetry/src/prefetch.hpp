// Cache-line prefetch hints for the SDK's two cross-core hand-overs: the export thread
// reading span records written on request threads, and request threads writing records
// the export thread read last.
//
//   PrefetchLines(record, sizeof *record);                 // to read soon
//   PrefetchLines<Intent::kWrite>(record, sizeof *record); // to overwrite soon
//   PrefetchAttributeBuffers(record->attributes);          // keys and string values
//
// Hints only: they never fault, never change a result, and cost a few cycles when the
// line is already here.
//
// Thread-safety: they only read what they are given, like the code they run ahead of.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>
#include <vigil/telemetry/span_data.hpp>

namespace vigil::telemetry::prefetch {

enum class Intent { kRead, kWrite };

// g++ 12 deletes a loop of __builtin_prefetch calls once it is inlined into a caller
// (found by reading the generated code of the encoders), and without -mprfchw it turns a
// write prefetch into a read one, so x86-64 states the instructions. Every x86-64
// processor either has PREFETCHW or executes it as a no-op.
template <Intent intent>
inline void PrefetchLine(const char* p) noexcept {
#if defined(__x86_64__)
  if constexpr (intent == Intent::kWrite) {
    asm volatile("prefetchw %0" : : "m"(*p));
  } else {
    asm volatile("prefetcht0 %0" : : "m"(*p));
  }
#else
  __builtin_prefetch(p, intent == Intent::kWrite ? 1 : 0);
#endif
}

// Every cache line that holds a byte of [p, p + n).
template <Intent intent = Intent::kRead>
inline void PrefetchLines(const void* p, std::size_t n) noexcept {
  const std::size_t skew = reinterpret_cast<std::uintptr_t>(p) & 63;
  const char* first = static_cast<const char*>(p) - skew;
  const std::size_t lines = (skew + n + 63) / 64;
  for (std::size_t k = 0; k < lines; ++k) PrefetchLine<intent>(first + 64 * k);
}

// The bytes of a string, only when they live outside the string object. A record about
// to be refilled is asked for as much as its last content, the usual size of the next.
template <Intent intent = Intent::kRead>
inline void PrefetchHeapString(const std::string& s) noexcept {
  const auto data = reinterpret_cast<std::uintptr_t>(s.data());
  const auto object = reinterpret_cast<std::uintptr_t>(&s);
  if (data < object || data >= object + sizeof s) PrefetchLines<intent>(s.data(), s.size());
}

// The out-of-object key and string-value buffers of each attribute (the array itself must
// have arrived: this reads it).
template <Intent intent = Intent::kRead>
inline void PrefetchAttributeBuffers(const std::vector<Attribute>& attributes) noexcept {
  for (const Attribute& a : attributes) {
    PrefetchHeapString<intent>(a.key);
    if (const auto* v = std::get_if<std::string>(&a.value.v)) PrefetchHeapString<intent>(*v);
  }
}

}  // namespace vigil::telemetry::prefetch

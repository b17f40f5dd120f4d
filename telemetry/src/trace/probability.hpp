// Consistent probability sampling arithmetic from the OpenTelemetry specification
// (tracestate-probability-sampling.md, "Algorithms"): sampling ratios as 56-bit
// rejection thresholds, and the `ot` tracestate entry's `th` and `rv` sub-keys.
//
//   std::uint64_t t = RatioToThreshold(0.1);     // 0xe6660000000000 ("e666")
//   bool keep = TraceIdRandomness(id) >= t;
//   std::string th = ThresholdToTh(t);           // "e666"
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry::internal {

// 2^56: the number of distinct randomness values; as a threshold it rejects everything.
inline constexpr std::uint64_t kMaxThreshold = std::uint64_t{1} << 56;

// The specification's recommended default precision, in hex digits.
inline constexpr int kDefaultThresholdPrecision = 4;

// The rejection threshold for `ratio` in [0, 1], rounded to `precision` significant hex
// digits (1-12; raised for small ratios) exactly as the specification's reference
// conversion does. 1 -> 0, 0 -> kMaxThreshold.
std::uint64_t RatioToThreshold(double ratio, int precision = kDefaultThresholdPrecision) noexcept;

// The `th` value: 14 hex digits with trailing zeros removed, "0" for zero.
std::string ThresholdToTh(std::uint64_t threshold);

// The rightmost 7 bytes of the trace id as a big-endian number (W3C Level 2 randomness).
inline std::uint64_t TraceIdRandomness(const TraceId& id) noexcept {
  std::uint64_t r = 0;
  for (std::size_t i = TraceId::kSize - 7; i < TraceId::kSize; ++i) {
    r = (r << 8) | id.bytes()[i];
  }
  return r;
}

// The explicit randomness `rv` (exactly 14 lowercase hex digits) from the `ot` entry of
// `ts`, if there is a valid one.
std::optional<std::uint64_t> ExplicitRandomness(const TraceState& ts) noexcept;

// Sets `th:<threshold>` in the `ot` entry of `ts`, keeping its other sub-keys; leaves
// `ts` unchanged when the result would not be a valid tracestate.
void SetThreshold(TraceState& ts, std::uint64_t threshold);

}  // namespace vigil::telemetry::internal

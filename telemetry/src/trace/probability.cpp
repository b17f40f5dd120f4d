#include "trace/probability.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace vigil::telemetry::internal {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::uint64_t kMantissaMask = (std::uint64_t{1} << 52) - 1;

// Splits the `ot` entry's value "k1:v1;k2:v2" into sub-keys; calls fn(key, value).
template <typename Fn>
void ForEachSubKey(std::string_view ot, Fn fn) {
  while (!ot.empty()) {
    const std::size_t semi = ot.find(';');
    const std::string_view member = ot.substr(0, semi);
    const std::size_t colon = member.find(':');
    if (colon != std::string_view::npos) {
      fn(member.substr(0, colon), member.substr(colon + 1));
    }
    if (semi == std::string_view::npos) {
      break;
    }
    ot.remove_prefix(semi + 1);
  }
}

}  // namespace

std::uint64_t RatioToThreshold(double ratio, int precision) noexcept {
  if (!(ratio > 0.0)) {
    return kMaxThreshold;  // 0 and NaN: never sample
  }
  if (ratio >= 1.0) {
    return 0;
  }
  // The reference conversion: raise the precision by one hex digit per four leading
  // 'f's (small ratios), then round 2 - ratio (the rejection probability shifted into
  // [1, 2)) at that many hex digits of its binary mantissa.
  int exponent = 0;
  std::frexp(ratio, &exponent);  // ratio = m * 2^exponent, m in [0.5, 1), exponent <= 0
  precision = std::max(1, std::min(12, precision + (-exponent) / 4));
  const double rejection = 2.0 - ratio + std::ldexp(0.5, -4 * precision);
  std::uint64_t digits;  // the 13 hex digits after "0x1."
  if (rejection >= 2.0) {
    digits = kMantissaMask;
  } else {
    digits = std::bit_cast<std::uint64_t>(rejection) & kMantissaMask;
  }
  // Keep `precision` digits, then extend with zeros to 14 digits (56 bits).
  const int drop_bits = 52 - 4 * precision;
  return (digits >> drop_bits) << (drop_bits + 4);
}

std::string ThresholdToTh(std::uint64_t threshold) {
  if (threshold == 0) {
    return "0";
  }
  std::string out(14, '0');
  for (int i = 13; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[threshold & 0xf];
    threshold >>= 4;
  }
  while (out.size() > 1 && out.back() == '0') {
    out.pop_back();
  }
  return out;
}

std::optional<std::uint64_t> ExplicitRandomness(const TraceState& ts) noexcept {
  const auto ot = ts.Get("ot");
  if (!ot) {
    return std::nullopt;
  }
  std::optional<std::uint64_t> result;
  ForEachSubKey(*ot, [&](std::string_view key, std::string_view value) {
    if (key != "rv" || value.size() != 14) {
      return;
    }
    std::uint64_t v = 0;
    for (char c : value) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else {
        return;
      }
      v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    result = v;
  });
  return result;
}

void SetThreshold(TraceState& ts, std::uint64_t threshold) {
  std::string value = "th:" + ThresholdToTh(threshold);
  if (const auto ot = ts.Get("ot")) {
    ForEachSubKey(*ot, [&](std::string_view key, std::string_view v) {
      if (key == "th") {
        return;
      }
      value.push_back(';');
      value.append(key);
      value.push_back(':');
      value.append(v);
    });
  }
  // The OpenTelemetry entry is limited to 256 characters; TraceState::Set enforces it
  // and rejects anything else invalid, leaving the state as it was.
  ts.Set("ot", value);
}

}  // namespace vigil::telemetry::internal

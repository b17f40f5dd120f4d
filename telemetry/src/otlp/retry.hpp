// When and how long the OTLP/HTTP exporter waits before trying a batch again.
//
// The OTLP specification lets a client retry only throttling and transient failures
// (429, 502, 503, 504, or no answer at all) and asks it to honour Retry-After, whose
// value is either seconds or an HTTP-date (RFC 9110 section 10.2.3). Otherwise the
// exporter backs off exponentially with jitter so that many clients do not retry in step.
//
//   if (otlp::IsRetryableStatus(status)) {
//     auto wait = otlp::ParseRetryAfter(header, system_clock::now())
//                     .value_or(otlp::BackoffDelay(retry, 1s, 5s, RandomU64()));
//   }
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vigil::telemetry::otlp {

// 429, 502, 503 and 504: the statuses after which the same request may be sent again.
bool IsRetryableStatus(long status) noexcept;

// An HTTP-date in any of the three forms a recipient must accept: IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT", the
// two-digit year read as the nearest one not more than 50 years ahead of `now`) and
// asctime ("Sun Nov  6 08:49:37 1994"). nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> ParseHttpDate(
    std::string_view text, std::chrono::system_clock::time_point now) noexcept;

// The wait a Retry-After value asks for: delay-seconds (capped at one year) or the time
// until an HTTP-date (zero when it has passed). nullopt when the value is neither, in
// which case the caller backs off on its own.
std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now) noexcept;

// The wait before retry number `retry` (0 for the first retry): a value drawn by `random`
// from [b/2, b] where b = min(max, initial * 2^retry). Zero when `initial` is not positive.
std::chrono::milliseconds BackoffDelay(unsigned retry, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max,
                                       std::uint64_t random) noexcept;

}  // namespace vigil::telemetry::otlp

// Fuzzes what the OTLP/HTTP exporter reads from a receiver it does not control: the
// body of a 2xx (ExportTraceServiceResponse, protobuf or JSON), the google.rpc.Status of
// an error, the Content-Type and the Retry-After header. On any bytes: no crash, no
// undefined behaviour, and a Retry-After wait is never negative nor longer than a year.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp/response.hpp"
#include "otlp/retry.hpp"

namespace otlp = vigil::telemetry::otlp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const bool json : {false, true}) {
    (void)otlp::ParseExportResponse(input, json);
    (void)otlp::ParseStatusMessage(input, json);
  }
  if (otlp::IsJsonContentType(input) && otlp::IsProtobufContentType(input)) __builtin_trap();

  // A fixed "now" keeps runs reproducible: 2026-01-01T00:00:00Z.
  const std::chrono::system_clock::time_point now{std::chrono::seconds(1767225600)};
  if (const auto wait = otlp::ParseRetryAfter(input, now)) {
    if (wait->count() < 0 || *wait > std::chrono::hours(24 * 365)) __builtin_trap();
  }
  if (const auto when = otlp::ParseHttpDate(input, now)) {
    // The three forms name a day between years 0000 and 9999 (RFC 850's two digits are
    // read within 50 years of now).
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(when->time_since_epoch());
    if (secs.count() < -62167219200LL || secs.count() > 253402300799LL) __builtin_trap();
  }
  return 0;
}

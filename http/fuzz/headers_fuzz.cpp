// Fuzzes the request headers Vigil reads itself rather than through Beast: If-None-Match
// (http/etag.hpp) and the /metrics Accept negotiation (telemetry). The first byte picks
// the header. If-None-Match may only match the tag it names (or "*"), with or without
// W/; negotiation always answers one of the two formats with its own Content-Type.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/http/etag.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace tel = vigil::telemetry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    static const std::string etag = vigil::http::StrongEtag("body");
    const std::string_view opaque = etag;  // "\"<16 hex>\"", quotes included
    const bool matches = vigil::http::IfNoneMatchMatches(input, etag);
    if (matches && input.find(opaque) == std::string_view::npos &&
        input.find('*') == std::string_view::npos) {
      __builtin_trap();
    }
    for (const std::string& exact : {etag, "W/" + etag, std::string("*"), " " + etag + " ",
                                     "\"x\", " + etag}) {
      if (!vigil::http::IfNoneMatchMatches(exact, etag)) __builtin_trap();
    }
  } else {
    const tel::Negotiation n = tel::NegotiateExposition(input);
    const bool om = n.format == tel::ExpositionFormat::kOpenMetrics;
    if (n.content_type != (om ? tel::kOpenMetricsContentType : tel::kPrometheusTextContentType)) {
      __builtin_trap();
    }
  }
  return 0;
}

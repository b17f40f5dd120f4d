// Response compression: gzip or Brotli for buffered text responses, as the client's
// Accept-Encoding allows.
//
// After the handler, a buffered response (not a streamed one) is compressed when its body
// has at least `min_bytes`, its type is text-like (application/json,
// application/problem+json, text/*, application/javascript, image/svg+xml), it carries no
// Content-Encoding yet, its status may have a body (not 1xx, 204, 206, 304) and the request
// is not HEAD. The coding is chosen from Accept-Encoding with its q-values (RFC 9110
// section 12.5.3): the highest q wins, Brotli before gzip at equal q; a header that cannot
// be parsed means no compression, never an error. Every eligible response gets
// `Vary: Accept-Encoding`, compressed or not, so that caches keep the variants apart. The
// body is kept as it is when compressing does not make it smaller. A strong ETag on a
// compressed response becomes weak: the bytes differ from the identity representation,
// and a weak tag still matches If-None-Match (weak comparison) on revalidation.
//
//   pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
//   pipeline.Add<http::CompressionMiddleware>(telemetry.metrics(),
//                                             http::CompressionOptions::FromEnv());
//   pipeline.Add<http::ErrorMiddleware>(telemetry.log());  // its After runs first
//
// Add it before ErrorMiddleware so that error bodies are final when it sees them.
// Bytes before and after compression are counted in
// vigil_http_compression_bytes_total{direction="in"|"out", encoding="gzip"|"br"}.
//
// Thread-safety: holds only options and counter references; safe from every worker.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vigil/http/middleware.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::http {

struct CompressionOptions {
  // Bodies smaller than this are sent as they are: below about a kilobyte the saving is
  // a packet at most and not worth the CPU.
  std::size_t min_bytes = 1024;
  int gzip_level = 6;      // zlib 1..9
  int brotli_quality = 4;  // 0..11; 4 compresses better than gzip -6 at a similar cost

  // VIGIL_HTTP_COMPRESS_MIN_BYTES (0 .. 1 GiB, default 1024). Throws
  // telemetry::ConfigError naming the variable when it is malformed.
  static CompressionOptions FromEnv();
};

enum class ContentCoding { kIdentity, kGzip, kBrotli };

// The coding to answer with for an Accept-Encoding value. kIdentity when the header is
// empty, malformed, or accepts neither gzip nor br with q > 0 (explicitly or through
// "*"), or when it rates identity above them. Never throws.
ContentCoding ChooseContentCoding(std::string_view accept_encoding) noexcept;

// True for the media types worth compressing (parameters such as charset ignored,
// case-insensitive).
bool IsCompressibleContentType(std::string_view content_type) noexcept;

// `data` as a gzip member (RFC 1952) / a Brotli stream (RFC 7932); nullopt when the
// library fails (out of memory).
std::optional<std::string> GzipCompress(std::string_view data, int level);
std::optional<std::string> BrotliCompress(std::string_view data, int quality);

class CompressionMiddleware final : public Middleware {
 public:
  // Registers vigil_http_compression_bytes_total in `registry`.
  explicit CompressionMiddleware(telemetry::Registry& registry, CompressionOptions options = {});
  void Before(Exchange&) override {}
  void After(Exchange& exchange) noexcept override;

 private:
  CompressionOptions options_;
  telemetry::Counter& gzip_in_;
  telemetry::Counter& gzip_out_;
  telemetry::Counter& br_in_;
  telemetry::Counter& br_out_;
};

}  // namespace vigil::http

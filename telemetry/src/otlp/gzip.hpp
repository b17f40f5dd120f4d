// gzip (RFC 1952) compression of request bodies with one reusable zlib stream.
//
// The OTLP/HTTP exporter compresses every batch when OTEL_EXPORTER_OTLP_COMPRESSION=gzip.
// Keeping the deflate state and the output buffer between batches means no allocation
// once the largest batch has been seen.
//
//   otlp::GzipCompressor gz;
//   gz.Compress(body, compressed);  // compressed now holds a complete .gz member
//
// Thread-safety: one thread at a time per object.
#pragma once

#include <zlib.h>
#include <string>
#include <string_view>

namespace vigil::telemetry::otlp {

class GzipCompressor {
 public:
  // Level 1: trace batches still shrink several times, at a fraction of the CPU of the
  // default level, and this runs on every export. Throws std::runtime_error when zlib
  // cannot initialise.
  explicit GzipCompressor(int level = 1);
  ~GzipCompressor();
  GzipCompressor(const GzipCompressor&) = delete;
  GzipCompressor& operator=(const GzipCompressor&) = delete;

  // Replaces `out` with the gzip member of `in`. Throws std::runtime_error on failure.
  void Compress(std::string_view in, std::string& out);

 private:
  z_stream stream_{};
};

}  // namespace vigil::telemetry::otlp

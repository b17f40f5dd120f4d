#include "otlp/gzip.hpp"

#include <limits>
#include <stdexcept>

namespace vigil::telemetry::otlp {

namespace {
// windowBits 15 plus 16 asks zlib for a gzip header and trailer instead of zlib's own.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kMemLevel = 8;
}  // namespace

GzipCompressor::GzipCompressor(int level) {
  if (deflateInit2(&stream_, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("zlib deflateInit2 failed");
  }
}

GzipCompressor::~GzipCompressor() { deflateEnd(&stream_); }

void GzipCompressor::Compress(std::string_view in, std::string& out) {
  if (in.size() > std::numeric_limits<uInt>::max()) {
    throw std::runtime_error("request body too large to compress");
  }
  if (deflateReset(&stream_) != Z_OK) {
    throw std::runtime_error("zlib deflateReset failed");
  }
  out.resize(deflateBound(&stream_, static_cast<uLong>(in.size())));
  // zlib's API takes non-const input pointers but does not write through them.
  stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream_.avail_in = static_cast<uInt>(in.size());
  stream_.next_out = reinterpret_cast<Bytef*>(out.data());
  stream_.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream_, Z_FINISH);
  if (rc != Z_STREAM_END) {
    out.clear();
    throw std::runtime_error("zlib deflate failed");
  }
  out.resize(static_cast<std::size_t>(stream_.total_out));
}

}  // namespace vigil::telemetry::otlp

#include <brotli/encode.h>
#include <zlib.h>

#include <cstdint>
#include <optional>
#include <vigil/http/middleware/compression.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::http {

namespace bhttp = boost::beast::http;
namespace tel = vigil::telemetry;

CompressionOptions CompressionOptions::FromEnv() {
  CompressionOptions o;
  o.min_bytes = static_cast<std::size_t>(
      tel::env::Integer("VIGIL_HTTP_COMPRESS_MIN_BYTES", 1024, 0, std::int64_t{1} << 30));
  return o;
}

namespace {

using boost::beast::iequals;
using tel::text::IsOws;
using tel::text::IsTokenChar;
using tel::text::TrimOws;

// A strict reader of one Accept-Encoding value. Any deviation from the grammar makes the
// whole header unusable, which the caller treats as "send identity".
class AcceptEncodingReader {
 public:
  explicit AcceptEncodingReader(std::string_view text) noexcept : text_(text) {}

  // The next element's coding and weight (0..1000). Returns false at the end or on a
  // malformed element (then malformed() is true).
  bool Next(std::string_view& coding, int& weight) noexcept {
    // Empty list elements (", ,") are allowed by the list syntax (RFC 9110 5.6.1).
    while (pos_ < text_.size() && (IsOws(text_[pos_]) || text_[pos_] == ',')) ++pos_;
    if (pos_ >= text_.size()) return false;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && IsTokenChar(text_[pos_])) ++pos_;
    if (pos_ == start) return Fail();
    coding = text_.substr(start, pos_ - start);
    weight = 1000;
    SkipOws();
    if (pos_ < text_.size() && text_[pos_] == ';') {
      ++pos_;
      SkipOws();
      if (pos_ + 2 > text_.size() || (text_[pos_] != 'q' && text_[pos_] != 'Q') ||
          text_[pos_ + 1] != '=') {
        return Fail();
      }
      pos_ += 2;
      if (!ReadQvalue(weight)) return Fail();
      SkipOws();
    }
    if (pos_ < text_.size() && text_[pos_] != ',') return Fail();
    return true;
  }

  bool malformed() const noexcept { return malformed_; }

 private:
  bool Fail() noexcept {
    malformed_ = true;
    return false;
  }
  void SkipOws() noexcept {
    while (pos_ < text_.size() && IsOws(text_[pos_])) ++pos_;
  }
  // The weight runs to the next OWS or comma; text::ParseQvalue decides whether it is one.
  bool ReadQvalue(int& out) noexcept {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && !IsOws(text_[pos_]) && text_[pos_] != ',') ++pos_;
    const std::optional<int> q = tel::text::ParseQvalue(text_.substr(start, pos_ - start));
    if (!q) return false;
    out = *q;
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  bool malformed_ = false;
};

// Thread-local so that each worker keeps its deflate state (about 256 KiB at the default
// memory level) instead of allocating and freeing it for every response.
class Deflater {
 public:
  Deflater() = default;
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  ~Deflater() {
    if (ready_) deflateEnd(&stream_);
  }

  z_stream* Reset(int level) noexcept {
    if (ready_ && level_ == level) {
      return deflateReset(&stream_) == Z_OK ? &stream_ : nullptr;
    }
    if (ready_) deflateEnd(&stream_);
    ready_ = false;
    stream_ = z_stream{};
    // 15 window bits + 16: a gzip header and trailer instead of zlib's.
    if (deflateInit2(&stream_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return nullptr;
    }
    ready_ = true;
    level_ = level;
    return &stream_;
  }

 private:
  z_stream stream_{};
  int level_ = 0;
  bool ready_ = false;
};

void AddVaryAcceptEncoding(Response& res) {
  const auto existing = res[bhttp::field::vary];
  if (existing.empty()) {
    res.set(bhttp::field::vary, "Accept-Encoding");
    return;
  }
  // Leave "*" and an existing accept-encoding entry alone; append otherwise.
  std::string_view rest(existing.data(), existing.size());
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = TrimOws(rest.substr(0, comma));
    if (item == "*" || iequals(item, "accept-encoding")) return;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  std::string merged(existing.data(), existing.size());
  merged += ", Accept-Encoding";
  res.set(bhttp::field::vary, merged);
}

tel::Family<tel::Counter>& BytesFamily(tel::Registry& registry) {
  return registry.CounterFamily("vigil_http_compression_bytes_total",
                                "Response body bytes before (in) and after (out) compression.",
                                {"direction", "encoding"});
}

}  // namespace

ContentCoding ChooseContentCoding(std::string_view accept_encoding) noexcept {
  // Weights in thousandths; -1 when the coding is not listed.
  int br = -1;
  int gzip = -1;
  int identity = -1;
  int any = -1;
  AcceptEncodingReader reader(accept_encoding);
  std::string_view coding;
  int weight = 0;
  while (reader.Next(coding, weight)) {
    // The first mention of a coding counts; repeats are unusual and carry no meaning.
    auto take = [weight](int& slot) {
      if (slot < 0) slot = weight;
    };
    if (iequals(coding, "br")) {
      take(br);
    } else if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      take(gzip);
    } else if (iequals(coding, "identity")) {
      take(identity);
    } else if (coding == "*") {
      take(any);
    }
  }
  if (reader.malformed()) return ContentCoding::kIdentity;
  // "*" stands for every coding not listed by name.
  if (br < 0) br = any < 0 ? 0 : any;
  if (gzip < 0) gzip = any < 0 ? 0 : any;
  const int best = br >= gzip ? br : gzip;
  if (best <= 0) return ContentCoding::kIdentity;
  // Only an explicit identity weight can outrank a coding; an unlisted identity is
  // merely acceptable, and the smaller representation is the better one to send.
  if (identity > best) return ContentCoding::kIdentity;
  return br >= gzip ? ContentCoding::kBrotli : ContentCoding::kGzip;
}

bool IsCompressibleContentType(std::string_view content_type) noexcept {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  type = TrimOws(type);
  if (type.size() > 5 && iequals(type.substr(0, 5), "text/")) return true;
  return iequals(type, "application/json") || iequals(type, "application/problem+json") ||
         iequals(type, "application/javascript") || iequals(type, "image/svg+xml");
}

std::optional<std::string> GzipCompress(std::string_view data, int level) {
  thread_local Deflater deflater;
  z_stream* stream = deflater.Reset(level);
  if (stream == nullptr) return std::nullopt;
  std::string out;
  out.resize(deflateBound(stream, static_cast<uLong>(data.size())));
  stream->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream->avail_in = static_cast<uInt>(data.size());
  stream->next_out = reinterpret_cast<Bytef*>(out.data());
  stream->avail_out = static_cast<uInt>(out.size());
  // deflateBound guarantees that one call with Z_FINISH completes.
  if (deflate(stream, Z_FINISH) != Z_STREAM_END) return std::nullopt;
  out.resize(static_cast<std::size_t>(stream->total_out));
  return out;
}

std::optional<std::string> BrotliCompress(std::string_view data, int quality) {
  std::size_t size = BrotliEncoderMaxCompressedSize(data.size());
  if (size == 0) return std::nullopt;
  std::string out;
  out.resize(size);
  if (BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, data.size(),
                            reinterpret_cast<const std::uint8_t*>(data.data()), &size,
                            reinterpret_cast<std::uint8_t*>(out.data())) != BROTLI_TRUE) {
    return std::nullopt;
  }
  out.resize(size);
  return out;
}

CompressionMiddleware::CompressionMiddleware(tel::Registry& registry, CompressionOptions options)
    : options_(options),
      gzip_in_(BytesFamily(registry).WithLabels({"in", "gzip"})),
      gzip_out_(BytesFamily(registry).WithLabels({"out", "gzip"})),
      br_in_(BytesFamily(registry).WithLabels({"in", "br"})),
      br_out_(BytesFamily(registry).WithLabels({"out", "br"})) {}

void CompressionMiddleware::After(Exchange& ex) noexcept {
  try {
    // A streamed response is already on the wire; an unanswered one is the server's.
    if (ex.head_sent() || !ex.responded()) return;
    const unsigned status = ex.status();
    if (status < 200 || status == 204) return;
    Response& res = ex.response();
    if (res.find(bhttp::field::content_encoding) != res.end()) return;
    const auto type = res[bhttp::field::content_type];
    if (!IsCompressibleContentType(std::string_view(type.data(), type.size()))) return;
    // The representation depends on Accept-Encoding whether or not this one is
    // compressed; 304 and HEAD carry the Vary their 200 would have.
    AddVaryAcceptEncoding(res);
    if (status == 304 || status == 206 || ex.method() == "HEAD") return;
    std::string& body = res.body();
    if (body.size() < options_.min_bytes || body.empty()) return;

    const ContentCoding coding = ChooseContentCoding(ex.header("accept-encoding"));
    if (coding == ContentCoding::kIdentity) return;
    std::optional<std::string> packed = coding == ContentCoding::kBrotli
                                            ? BrotliCompress(body, options_.brotli_quality)
                                            : GzipCompress(body, options_.gzip_level);
    if (!packed || packed->size() >= body.size()) return;

    const double in = static_cast<double>(body.size());
    const double out = static_cast<double>(packed->size());
    if (coding == ContentCoding::kBrotli) {
      br_in_.Inc(in);
      br_out_.Inc(out);
      res.set(bhttp::field::content_encoding, "br");
    } else {
      gzip_in_.Inc(in);
      gzip_out_.Inc(out);
      res.set(bhttp::field::content_encoding, "gzip");
    }
    body = std::move(*packed);
    // A strong validator promises identical bytes; these are not the identity bytes.
    const auto etag = res[bhttp::field::etag];
    if (!etag.empty() && etag.front() == '"') {
      std::string weak = "W/";
      weak.append(etag.data(), etag.size());
      res.set(bhttp::field::etag, weak);
    }
  } catch (...) {
    // Out of memory while compressing: the response goes out as the handler made it.
  }
}

}  // namespace vigil::http

// Response compression: the Accept-Encoding negotiation (RFC 9110 q-values), the codecs
// (decoded here with zlib, through test_support::Gunzip, and the Brotli decoder), and the
// middleware on a real server.
#include <gtest/gtest.h>

#include <brotli/decode.h>

#include <cstdint>
#include <random>
#include <string>
#include <vigil/http/etag.hpp>
#include <vigil/http/middleware/compression.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/testing/canned_http.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>

namespace vigil::http {
namespace {

using test_support::Gunzip;
using test_support::RawClient;
using test_support::RunningServer;

std::string Unbrotli(const std::string& in, std::size_t expected_size) {
  std::string out(expected_size + 16, '\0');
  std::size_t size = out.size();
  if (BrotliDecoderDecompress(in.size(), reinterpret_cast<const std::uint8_t*>(in.data()), &size,
                              reinterpret_cast<std::uint8_t*>(out.data())) !=
      BROTLI_DECODER_RESULT_SUCCESS) {
    return "<corrupt brotli>";
  }
  out.resize(size);
  return out;
}

// A JSON document of about `bytes` bytes that compresses well, like a listing.
std::string JsonOf(std::size_t bytes) {
  std::string s = "{\"items\":[";
  for (int i = 0; s.size() + 64 < bytes; ++i) {
    if (i > 0) s += ',';
    s += "{\"id\":\"item-" + std::to_string(i) +
         "\",\"name\":\"widget\",\"stock\":" + std::to_string(i % 17) + "}";
  }
  s += "]}";
  return s;
}

// Uniformly random bytes: no coding can shrink them.
std::string RandomBytes(std::size_t bytes) {
  std::mt19937_64 rng(42);
  std::string s(bytes, ' ');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// ---- Negotiation ---------------------------------------------------------------------

struct CodingCase {
  const char* header;
  ContentCoding expected;
};

class ChooseContentCodingTest : public ::testing::TestWithParam<CodingCase> {};

TEST_P(ChooseContentCodingTest, Chooses) {
  EXPECT_EQ(ChooseContentCoding(GetParam().header), GetParam().expected)
      << "Accept-Encoding: " << GetParam().header;
}

constexpr auto kId = ContentCoding::kIdentity;
constexpr auto kGz = ContentCoding::kGzip;
constexpr auto kBr = ContentCoding::kBrotli;

INSTANTIATE_TEST_SUITE_P(
    Rfc9110, ChooseContentCodingTest,
    ::testing::Values(
        // Absent or empty: the client asked for no coding.
        CodingCase{"", kId}, CodingCase{"   ", kId}, CodingCase{"gzip", kGz}, CodingCase{"br", kBr},
        CodingCase{"GZIP", kGz}, CodingCase{"x-gzip", kGz}, CodingCase{"gzip, deflate, br", kBr},
        CodingCase{"deflate", kId}, CodingCase{"compress, zstd", kId},
        // q-values: the highest wins, br before gzip when equal.
        CodingCase{"br;q=0.5, gzip", kGz}, CodingCase{"gzip;q=0.8, br;q=0.8", kBr},
        CodingCase{"gzip;q=1.0, br;q=0.999", kGz}, CodingCase{"br;q=0.001", kBr},
        CodingCase{"gzip;q=0", kId}, CodingCase{"gzip;q=0.000, br;q=0", kId},
        CodingCase{"gzip ; q=0.5", kGz}, CodingCase{"gzip;Q=0.5", kGz},
        CodingCase{"gzip;q=1.", kGz}, CodingCase{"gzip;q=1.000", kGz},
        // "*" covers every coding not named.
        CodingCase{"*", kBr}, CodingCase{"*;q=0", kId}, CodingCase{"br;q=0, *", kGz},
        CodingCase{"gzip;q=0.2, *;q=0.5", kBr}, CodingCase{"br;q=0, gzip;q=0, *;q=1", kId},
        // identity: excluded or preferred.
        CodingCase{"identity", kId}, CodingCase{"identity;q=0", kId},
        CodingCase{"identity;q=0, gzip", kGz}, CodingCase{"identity;q=0, *", kBr},
        CodingCase{"gzip;q=0.5, identity", kId}, CodingCase{"gzip, identity;q=0.5", kGz},
        CodingCase{"br;q=0.5, identity;q=0.5", kBr},
        // List syntax: empty elements and whitespace are fine.
        CodingCase{" , gzip ,, ", kGz}, CodingCase{"\tbr\t", kBr},
        // Malformed: no compression, never an error.
        CodingCase{"gzip;q=2", kId}, CodingCase{"gzip;q=1.5", kId}, CodingCase{"br;q=1.001", kId},
        CodingCase{"gzip;q=0.5000", kId}, CodingCase{"gzip;q=abc", kId}, CodingCase{"gzip;q=", kId},
        CodingCase{"gzip;", kId}, CodingCase{"gzip;level=1", kId}, CodingCase{"gzip br", kId},
        CodingCase{"g@zip", kId}, CodingCase{"br, gzip;q=0.5x", kId},
        CodingCase{"gzip;q=0.5;q=0.6", kId}, CodingCase{"\"gzip\"", kId}));

TEST(CompressibleContentType, MediaTypes) {
  EXPECT_TRUE(IsCompressibleContentType("application/json"));
  EXPECT_TRUE(IsCompressibleContentType("application/json; charset=utf-8"));
  EXPECT_TRUE(IsCompressibleContentType("Application/JSON"));
  EXPECT_TRUE(IsCompressibleContentType("application/problem+json"));
  EXPECT_TRUE(IsCompressibleContentType("text/plain"));
  EXPECT_TRUE(IsCompressibleContentType("text/html;charset=utf-8"));
  EXPECT_TRUE(IsCompressibleContentType(" text/css "));
  EXPECT_TRUE(IsCompressibleContentType("application/javascript"));
  EXPECT_TRUE(IsCompressibleContentType("image/svg+xml"));
  EXPECT_FALSE(IsCompressibleContentType(""));
  EXPECT_FALSE(IsCompressibleContentType("text/"));
  EXPECT_FALSE(IsCompressibleContentType("image/png"));
  EXPECT_FALSE(IsCompressibleContentType("application/octet-stream"));
  EXPECT_FALSE(IsCompressibleContentType("application/jsonx"));
  EXPECT_FALSE(IsCompressibleContentType("application/zip"));
}

// ---- Codecs ---------------------------------------------------------------------------

TEST(Codecs, GzipRoundTrips) {
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, std::size_t{1500}, std::size_t{300000}}) {
    const std::string data = JsonOf(size);
    const auto packed = GzipCompress(data, 6);
    ASSERT_TRUE(packed.has_value());
    ASSERT_GE(packed->size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>((*packed)[0]), 0x1f) << "gzip magic";
    EXPECT_EQ(static_cast<unsigned char>((*packed)[1]), 0x8b);
    EXPECT_EQ(Gunzip(*packed), data);
  }
  // The thread's deflate state is reused, also across levels.
  const std::string data = JsonOf(5000);
  EXPECT_EQ(Gunzip(*GzipCompress(data, 1)), data);
  EXPECT_EQ(Gunzip(*GzipCompress(data, 9)), data);
  EXPECT_EQ(Gunzip(*GzipCompress(data, 9)), data);
}

TEST(Codecs, BrotliRoundTrips) {
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, std::size_t{1500}, std::size_t{300000}}) {
    const std::string data = JsonOf(size);
    const auto packed = BrotliCompress(data, 4);
    ASSERT_TRUE(packed.has_value());
    EXPECT_EQ(Unbrotli(*packed, data.size()), data);
  }
  const std::string data = JsonOf(20000);
  EXPECT_LT(BrotliCompress(data, 4)->size(), data.size() / 5) << "a listing compresses well";
}

// ---- The middleware on a server -------------------------------------------------------

const std::string& BigJson() {
  static const std::string body = JsonOf(8000);
  return body;
}

Routes CompressionRoutes() {
  Routes r;
  r.Add("GET", "/json", [](Exchange& ex) -> asio::awaitable<void> {
    ex.RespondJson(200, BigJson());
    co_return;
  });
  r.Add("HEAD", "/json", [](Exchange& ex) -> asio::awaitable<void> {
    ex.response().set(beast::http::field::content_length, std::to_string(BigJson().size()));
    ex.RespondJson(200, "");
    co_return;
  });
  r.Add("GET", "/tagged", [](Exchange& ex) -> asio::awaitable<void> {
    ex.response().set(beast::http::field::etag, StrongEtag(BigJson()));
    ex.response().set(beast::http::field::vary, "Origin");
    ex.RespondJson(200, BigJson());
    co_return;
  });
  r.Add("GET", "/small", [](Exchange& ex) -> asio::awaitable<void> {
    ex.RespondJson(200, JsonOf(900));
    co_return;
  });
  r.Add("GET", "/exact", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, std::string(1024, 'a'), "text/plain");
    co_return;
  });
  r.Add("GET", "/random", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, RandomBytes(4000), "text/plain");
    co_return;
  });
  r.Add("GET", "/binary", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, BigJson(), "application/octet-stream");
    co_return;
  });
  r.Add("GET", "/encoded", [](Exchange& ex) -> asio::awaitable<void> {
    ex.response().set(beast::http::field::content_encoding, "gzip");
    ex.Respond(200, *GzipCompress(BigJson(), 6), "application/json");
    co_return;
  });
  r.Add("GET", "/not-modified", [](Exchange& ex) -> asio::awaitable<void> {
    ex.response().set(beast::http::field::etag, "\"abc\"");
    ex.RespondJson(304, BigJson());
    co_return;
  });
  r.Add("GET", "/no-content", [](Exchange& ex) -> asio::awaitable<void> {
    ex.RespondJson(204, "");
    co_return;
  });
  r.Add("GET", "/problem", [](Exchange&) -> asio::awaitable<void> {
    throw HttpError(422, "name: " + std::string(2000, 'x'));
    co_return;
  });
  r.Add("GET", "/stream", [](Exchange& ex) -> asio::awaitable<void> {
    ResponseHeader head;
    head.result(200);
    head.set(beast::http::field::content_type, "application/json");
    co_await ex.SendHead(head, BigJson().size());
    co_await ex.SendBody(BigJson().data(), BigJson().size());
    co_await ex.Finish();
  });
  return r;
}

class CompressionServerTest : public ::testing::Test {
 protected:
  CompressionServerTest() : server_(CompressionRoutes(), MakePipeline()) {}

  Pipeline MakePipeline() {
    Pipeline p;
    p.Add<CompressionMiddleware>(registry_);
    p.Add<ErrorMiddleware>(log_);
    return p;
  }

  test_support::ClientResponse Get(std::string_view path, std::string_view accept_encoding,
                                   std::string_view method = "GET") {
    RawClient client(server_.port());
    std::string req = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n";
    if (!accept_encoding.empty()) {
      req += "Accept-Encoding: " + std::string(accept_encoding) + "\r\n";
    }
    req += "\r\n";
    client.Send(req);
    return method == "HEAD" ? client.ReadHead() : client.Read();
  }

  double Bytes(std::string_view direction, std::string_view encoding) {
    return registry_
        .CounterFamily("vigil_http_compression_bytes_total", "", {"direction", "encoding"})
        .WithLabels({direction, encoding})
        .Value();
  }

  telemetry::Registry registry_;
  telemetry::Logger log_{test_support::QuietLog()};
  RunningServer server_;
};

TEST_F(CompressionServerTest, GzipWhenAsked) {
  const auto res = Get("/json", "gzip");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res["Content-Encoding"], "gzip");
  EXPECT_EQ(res["Vary"], "Accept-Encoding");
  EXPECT_EQ(res["Content-Length"], std::to_string(res.body().size()));
  EXPECT_LT(res.body().size(), BigJson().size());
  EXPECT_EQ(Gunzip(res.body()), BigJson());
  EXPECT_EQ(Bytes("in", "gzip"), static_cast<double>(BigJson().size()));
  EXPECT_EQ(Bytes("out", "gzip"), static_cast<double>(res.body().size()));
  EXPECT_EQ(Bytes("in", "br"), 0);
}

TEST_F(CompressionServerTest, BrotliPreferredAtEqualWeight) {
  const auto res = Get("/json", "gzip, deflate, br");
  EXPECT_EQ(res["Content-Encoding"], "br");
  EXPECT_EQ(Unbrotli(res.body(), BigJson().size()), BigJson());
  EXPECT_EQ(Bytes("in", "br"), static_cast<double>(BigJson().size()));
  EXPECT_EQ(Bytes("out", "br"), static_cast<double>(res.body().size()));
}

TEST_F(CompressionServerTest, QValuesDecide) {
  EXPECT_EQ(Get("/json", "br;q=0.1, gzip;q=0.9")["Content-Encoding"], "gzip");
  const auto none = Get("/json", "identity;q=1, gzip;q=0.5");
  EXPECT_EQ(none["Content-Encoding"], "");
  EXPECT_EQ(none.body(), BigJson());
  EXPECT_EQ(Get("/json", "*;q=0")["Content-Encoding"], "");
}

TEST_F(CompressionServerTest, NoHeaderOrMalformedHeaderSendsIdentity) {
  for (const char* header : {"", "gzip;q=2", "gzip;;", "br;q=0.5000"}) {
    const auto res = Get("/json", header);
    EXPECT_EQ(res.result_int(), 200u) << header;
    EXPECT_EQ(res["Content-Encoding"], "") << header;
    EXPECT_EQ(res["Vary"], "Accept-Encoding") << "the representation still varies";
    EXPECT_EQ(res.body(), BigJson()) << header;
  }
}

TEST_F(CompressionServerTest, BelowThresholdIsSentAsIs) {
  const auto small = Get("/small", "gzip, br");
  EXPECT_EQ(small["Content-Encoding"], "");
  EXPECT_EQ(small.body(), JsonOf(900));
  // The threshold itself is included.
  const auto exact = Get("/exact", "gzip");
  EXPECT_EQ(exact["Content-Encoding"], "gzip");
  EXPECT_EQ(Gunzip(exact.body()), std::string(1024, 'a'));
}

TEST_F(CompressionServerTest, IncompressibleBodyStaysIdentity) {
  const auto res = Get("/random", "gzip");
  EXPECT_EQ(res["Content-Encoding"], "");
  EXPECT_EQ(res["Vary"], "Accept-Encoding");
  EXPECT_TRUE(res.body() == RandomBytes(4000)) << "body unchanged";
  EXPECT_EQ(Bytes("in", "gzip"), 0) << "only applied compression is counted";
}

TEST_F(CompressionServerTest, OtherTypesAreUntouched) {
  const auto res = Get("/binary", "gzip, br");
  EXPECT_EQ(res["Content-Encoding"], "");
  EXPECT_EQ(res["Vary"], "");
  EXPECT_EQ(res.body(), BigJson());
}

TEST_F(CompressionServerTest, AlreadyEncodedIsUntouched) {
  const auto res = Get("/encoded", "br");
  EXPECT_EQ(res["Content-Encoding"], "gzip");
  EXPECT_EQ(Gunzip(res.body()), BigJson()) << "not compressed twice";
  EXPECT_EQ(Bytes("in", "br"), 0);
}

TEST_F(CompressionServerTest, NotModifiedAndNoContentHaveNoBody) {
  const auto not_modified = Get("/not-modified", "gzip");
  EXPECT_EQ(not_modified.result_int(), 304u);
  EXPECT_EQ(not_modified["Content-Encoding"], "");
  EXPECT_EQ(not_modified["ETag"], "\"abc\"") << "a 304 keeps its strong validator";
  EXPECT_EQ(not_modified["Vary"], "Accept-Encoding") << "the Vary its 200 would carry";
  EXPECT_TRUE(not_modified.body().empty());
  const auto no_content = Get("/no-content", "gzip");
  EXPECT_EQ(no_content.result_int(), 204u);
  EXPECT_EQ(no_content["Content-Encoding"], "");
  EXPECT_TRUE(no_content.body().empty());
}

TEST_F(CompressionServerTest, HeadIsNotCompressed) {
  const auto res = Get("/json", "gzip", "HEAD");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res["Content-Encoding"], "");
  EXPECT_EQ(res["Content-Length"], std::to_string(BigJson().size()));
  EXPECT_EQ(res["Vary"], "Accept-Encoding");
}

TEST_F(CompressionServerTest, StrongEtagBecomesWeakAndVaryIsMerged) {
  const auto res = Get("/tagged", "gzip");
  EXPECT_EQ(res["Content-Encoding"], "gzip");
  EXPECT_EQ(res["ETag"], "W/" + StrongEtag(BigJson()));
  EXPECT_EQ(res["Vary"], "Origin, Accept-Encoding");
  // The weak tag still revalidates against the strong one.
  EXPECT_TRUE(IfNoneMatchMatches(res["ETag"], StrongEtag(BigJson())));
  const auto plain = Get("/tagged", "");
  EXPECT_EQ(plain["ETag"], StrongEtag(BigJson()));
}

TEST_F(CompressionServerTest, ProblemBodiesAreCompressedToo) {
  const auto res = Get("/problem", "gzip");
  EXPECT_EQ(res.result_int(), 422u);
  EXPECT_EQ(res["Content-Type"], "application/problem+json");
  EXPECT_EQ(res["Content-Encoding"], "gzip");
  EXPECT_NE(Gunzip(res.body()).find("name: xxx"), std::string::npos);
}

TEST_F(CompressionServerTest, StreamedResponsesAreLeftAlone) {
  const auto res = Get("/stream", "gzip, br");
  EXPECT_EQ(res["Content-Encoding"], "");
  EXPECT_EQ(res.body(), BigJson());
}

TEST_F(CompressionServerTest, KeepAliveConnectionServesMixedEncodings) {
  RawClient client(server_.port());
  for (const char* encoding : {"gzip", "br", "identity", "gzip"}) {
    const auto res = client.RoundTrip(
        std::string("GET /json HTTP/1.1\r\nHost: t\r\nAccept-Encoding: ") + encoding + "\r\n\r\n");
    const std::string coding(res["Content-Encoding"]);
    const std::string body = coding == "gzip" ? Gunzip(res.body())
                             : coding == "br" ? Unbrotli(res.body(), BigJson().size())
                                              : res.body();
    EXPECT_EQ(body, BigJson()) << encoding;
    EXPECT_EQ(coding, std::string(encoding) == "identity" ? "" : encoding);
  }
}

TEST(CompressionOptions, FromEnvReadsTheThreshold) {
  ::setenv("VIGIL_HTTP_COMPRESS_MIN_BYTES", "2048", 1);
  EXPECT_EQ(CompressionOptions::FromEnv().min_bytes, 2048u);
  ::setenv("VIGIL_HTTP_COMPRESS_MIN_BYTES", "-1", 1);
  EXPECT_THROW(CompressionOptions::FromEnv(), telemetry::ConfigError);
  ::unsetenv("VIGIL_HTTP_COMPRESS_MIN_BYTES");
  const CompressionOptions defaults = CompressionOptions::FromEnv();
  EXPECT_EQ(defaults.min_bytes, 1024u);
  EXPECT_EQ(defaults.gzip_level, 6);
  EXPECT_EQ(defaults.brotli_quality, 4);
}

}  // namespace
}  // namespace vigil::http

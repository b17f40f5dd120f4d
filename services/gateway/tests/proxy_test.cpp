// The proxy in one process: an upstream Server and a gateway Server on loopback, each on
// its own Runtime, driven by a raw client. Runs under ASan+UBSan with the unit tests.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/write.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vigil/http/middleware/cors.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/pipeline.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>
#include <vigil/testing/text.hpp>

#include "proxy.hpp"

namespace vigil::gateway {
namespace {

namespace tel = vigil::telemetry;
using http::Exchange;
using test_support::RawClient;
using test_support::RunningServer;

// Requests that reached an upstream of UpstreamRoutes(), for tests that prove a request
// never did.
std::atomic<int> g_upstream_requests{0};

// The upstream: reports what reached it.
http::Routes UpstreamRoutes() {
  http::Routes r;
  r.Add("*", "/seen/*",
        [](Exchange& ex) -> asio::awaitable<void> {
          ++g_upstream_requests;
          std::string report = std::string(ex.method()) + " " + std::string(ex.target()) + "\n";
          for (const auto& f : ex.request()) {
            report += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
          }
          std::uint64_t bytes = 0;
          char chunk[4096];
          for (;;) {
            const std::size_t n = co_await ex.ReadSome(chunk, sizeof chunk);
            if (n == 0) break;
            bytes += n;
          }
          report += "body: " + std::to_string(bytes) + "\n";
          ex.Respond(200, report, "text/plain");
          ex.response().set("X-Upstream", "yes");
        },
        {.body = http::BodyMode::kStreamed, .max_body_bytes = 1 << 24});
  r.Add("GET", "/big/{n}", [](Exchange& ex) -> asio::awaitable<void> {
    const std::size_t n = std::stoul(std::string(ex.Param("n")));
    ex.Respond(200, std::string(n, 'z'), "application/octet-stream");
    ex.response().set("Vary", "Accept-Encoding");
    ex.response().set("RateLimit", "\"upstream\";r=1;t=1");
    co_return;
  });
  // n bytes in chunks of 64 KiB, with no Content-Length (chunked on the wire).
  r.Add("GET", "/chunks/{n}", [](Exchange& ex) -> asio::awaitable<void> {
    std::size_t left = std::stoul(std::string(ex.Param("n")));
    http::ResponseHeader head;
    head.result(200);
    head.set(boost::beast::http::field::content_type, "application/octet-stream");
    co_await ex.SendHead(head, std::nullopt);
    const std::string piece(64 * 1024, 'c');
    while (left > 0) {
      const std::size_t n = std::min(left, piece.size());
      co_await ex.SendBody(piece.data(), n);
      left -= n;
    }
    co_await ex.Finish();
  });
  r.Add("HEAD", "/head/{n}", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, "", "application/octet-stream");
    ex.response().set(boost::beast::http::field::content_length, ex.Param("n"));
    co_return;
  });
  // An upstream with opinions on the security headers, and a Server field.
  r.Add("GET", "/fields", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, "<p>hi</p>", "text/html");
    ex.response().set("Content-Security-Policy", "default-src *");
    ex.response().set("X-Frame-Options", "SAMEORIGIN");
    ex.response().set(boost::beast::http::field::server, "upstream/1.0");
    ex.response().set(boost::beast::http::field::strict_transport_security, "max-age=1");
    co_return;
  });
  r.Add("GET", "/slow", [](Exchange& ex) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(500));
    co_await t.async_wait(asio::use_awaitable);
    ex.Respond(200, "late", "text/plain");
  });
  r.Add("GET", "/drop", [](Exchange& ex) -> asio::awaitable<void> {
    ex.AbortConnection();
    co_return;
  });
  return r;
}

// An upstream with a small body limit (64 KiB, the route's at the gateway is 16 MiB),
// which answers 413 before reading an upload over it: at once for a Content-Length, when
// the limit is crossed for a chunked body.
http::Routes LimitedRoutes() {
  http::Routes r;
  r.Add("POST", "/upload",
        [](Exchange& ex) -> asio::awaitable<void> {
          char chunk[4096];
          std::uint64_t bytes = 0;
          for (;;) {
            const std::size_t n = co_await ex.ReadSome(chunk, sizeof chunk);
            if (n == 0) break;
            bytes += n;
          }
          ex.Respond(200, "body: " + std::to_string(bytes), "text/plain");
        },
        {.body = http::BodyMode::kStreamed});
  return r;
}

http::ServerOptions LimitedOptions() {
  http::ServerOptions o;
  o.max_body_bytes = 64 * 1024;
  return o;
}

// Sets the fields a gateway's rate limit would set on every answer.
struct GatewayLimitFields final : http::Middleware {
  void Before(Exchange& ex) override {
    ex.response().set("RateLimit-Policy", "\"gateway\";q=9;w=9");
    ex.response().set("RateLimit", "\"gateway\";r=8;t=1");
  }
  void After(Exchange&) noexcept override {}
};

// The proxy and what it needs: a signer for X-Vigil-Client, the limits' trusted proxies.
struct ProxyParts {
  ProxyParts(http::Runtime& runtime, const GatewayConfig& config, tel::Telemetry& telemetry)
      : identity(std::string(32, 'k')),
        limiter(config.limits, telemetry),
        proxy(runtime, config, telemetry, http::PoolOptions{}, identity, limiter) {}
  service::IdentitySigner identity;
  ratelimit::Limiter limiter;
  Proxy proxy;
};

struct Fixture {
  explicit Fixture(http::ServerOptions upstream_options = {})
      : upstream(std::make_unique<RunningServer>(UpstreamRoutes(), http::Pipeline{},
                                                 upstream_options, 1)),
        telemetry(test_support::QuietTelemetry("gateway-test")),
        limited(LimitedRoutes(), Pipeline(), LimitedOptions(), 1),
        gateway(
            [this](http::Runtime& runtime, http::Routes& routes) {
              GatewayConfig config = ParseGatewayConfig(
                  R"({"routes":[
                    {"prefix":"/api","upstream":"http://127.0.0.1:)" +
                      std::to_string(upstream->port()) +
                      R"(","strip_prefix":true,"max_body_bytes":16777216},
                    {"prefix":"/limited","upstream":"http://127.0.0.1:)" +
                      std::to_string(limited.port()) +
                      R"(","strip_prefix":true,"max_body_bytes":16777216},
                    {"prefix":"/quick","upstream":"http://127.0.0.1:)" +
                      std::to_string(upstream->port()) + R"(","strip_prefix":true,"timeout_ms":100},
                    {"prefix":"/page","upstream":"http://127.0.0.1:)" +
                      std::to_string(upstream->port()) +
                      R"(","strip_prefix":true,"content_security_policy":"default-src 'self'"},
                    {"prefix":"/own","upstream":"http://127.0.0.1:)" +
                      std::to_string(upstream->port()) +
                      R"(","strip_prefix":true,"upstream_security_headers":true},
                    {"prefix":"/down","upstream":"http://127.0.0.1:1"}]})",
                  "test");
              auto parts = std::make_shared<ProxyParts>(runtime, config, telemetry);
              parts->proxy.AddRoutes(routes);
              return parts;
            },
            Pipeline(), http::ServerOptions{}, 1) {}

  // The pipeline vigil-gateway serves with (no compression: it streams bodies), with its
  // CORS step and a stand-in for its rate limits' fields.
  http::Pipeline Pipeline() {
    http::Pipeline p = test_support::PlatformPipeline(telemetry, false);
    p.Add<http::SecurityHeadersMiddleware>(http::SecurityHeadersOptions{.replace = true});
    http::CorsOptions cors;
    cors.allowed_origins = {"https://shop.example.com"};
    p.Add<http::CorsMiddleware>(cors);
    p.Add<GatewayLimitFields>();
    return p;
  }

  // Stops the upstream (which closes its connections) and starts it again on its port.
  void RestartUpstream() {
    const std::uint16_t port = upstream->port();
    upstream.reset();
    upstream = std::make_unique<RunningServer>(port, UpstreamRoutes(), http::Pipeline{});
  }

  std::unique_ptr<RunningServer> upstream;
  tel::Telemetry telemetry;
  RunningServer limited;
  RunningServer gateway;
};

std::string Get(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: gw\r\n" + std::string(extra) + "\r\n";
}

using test_support::Has;

TEST(ProxyTest, ForwardsWithRewrittenTargetAndProxyHeaders) {
  Fixture f;
  RawClient c(f.gateway.port());
  auto res =
      c.RoundTrip(Get("/api/seen/x?q=1",
                      "X-Request-Id: rid-42\r\n"
                      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
                      "X-Forwarded-For: 10.0.0.9\r\n"
                      "X-Vigil-Client: v1.client:6.6.6.6.1.00\r\n"
                      "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                      "X-End-To-End: kept\r\n"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const std::string& seen = res.body();
  EXPECT_TRUE(Has(seen, "GET /seen/x?q=1\n")) << seen;
  EXPECT_TRUE(Has(seen, "X-Forwarded-For: 10.0.0.9, 127.0.0.1\n")) << seen;
  EXPECT_TRUE(Has(seen, "X-Forwarded-Proto: http\n")) << seen;
  EXPECT_TRUE(Has(seen, "X-Request-Id: rid-42\n")) << seen;
  // The client address, vouched for: the peer, since no proxy is trusted.
  const service::IdentitySigner signer(std::string(32, 'k'));
  const std::size_t client_at = seen.find("X-Vigil-Client: ");
  ASSERT_NE(client_at, std::string::npos) << seen;
  const std::string vouched =
      seen.substr(client_at + 16, seen.find('\n', client_at) - client_at - 16);
  EXPECT_EQ(signer.Verify(vouched), "client:127.0.0.1") << vouched;
  EXPECT_TRUE(Has(seen, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-")) << seen;
  EXPECT_FALSE(Has(seen, "00f067aa0ba902b7")) << "the upstream's parent is the gateway's client span";
  EXPECT_TRUE(Has(seen, "X-End-To-End: kept\n")) << seen;
  EXPECT_FALSE(Has(seen, "X-Secret")) << seen;
  EXPECT_FALSE(Has(seen, "Keep-Alive")) << seen;
  EXPECT_FALSE(Has(seen, "6.6.6.6")) << "a client's own X-Vigil-Client is dropped";
  EXPECT_EQ(res["X-Upstream"], "yes");
  EXPECT_EQ(res["X-Request-Id"], "rid-42") << "one X-Request-Id, the request's";
  EXPECT_EQ(std::distance(res.find("X-Request-Id"), res.end()) > 0, true);
  // The keep-alive connections on both sides are reused.
  EXPECT_EQ(c.RoundTrip(Get("/api/seen/again")).result_int(), 200u);
}

TEST(ProxyTest, VaryIsMergedAndTheServicesRateLimitFieldsWin) {
  Fixture f;
  RawClient c(f.gateway.port());
  // Small (relayed whole) and large (streamed): the same fields either way.
  for (const char* target : {"/api/big/10", "/api/big/300000"}) {
    auto res = c.RoundTrip(Get(target, "Origin: https://shop.example.com\r\n"));
    ASSERT_EQ(res.result_int(), 200u) << target;
    EXPECT_EQ(res["Vary"], "Origin, Accept-Encoding") << target;
    EXPECT_EQ(std::distance(res.equal_range("Vary").first, res.equal_range("Vary").second), 1)
        << target;
    EXPECT_EQ(res["RateLimit"], "\"upstream\";r=1;t=1") << target;
    EXPECT_EQ(res["RateLimit-Policy"], "") << "the service's fields replace both of the gateway's";
    EXPECT_EQ(res["Access-Control-Allow-Origin"], "https://shop.example.com") << target;
  }
  // Where the service sets none, the gateway's stay.
  auto res = c.RoundTrip(Get("/api/seen/x"));
  EXPECT_EQ(res["RateLimit"], "\"gateway\";r=8;t=1");
}

// The gateway's security headers replace an upstream's, and no Server field passes; a
// route may give its own page policy, or keep the upstream's values. Over plain HTTP no
// Strict-Transport-Security, not even an upstream's (over TLS: http/tests, test_tls.py).
TEST(ProxyTest, TheGatewaysSecurityHeadersWinUnlessTheRouteSaysOtherwise) {
  Fixture f;
  const auto api = f.gateway.RoundTrip(Get("/api/fields"));
  EXPECT_EQ(api["Content-Security-Policy"], "default-src 'none'; frame-ancestors 'none'");
  EXPECT_EQ(api["X-Frame-Options"], "DENY");
  EXPECT_EQ(api.count("Content-Security-Policy"), 1u);
  EXPECT_EQ(api.count(boost::beast::http::field::server), 0u);
  EXPECT_EQ(api["Cache-Control"], "no-store");

  const auto page = f.gateway.RoundTrip(Get("/page/fields"));
  EXPECT_EQ(page["Content-Security-Policy"], "default-src 'self'");
  EXPECT_EQ(page["X-Frame-Options"], "DENY");

  const auto own = f.gateway.RoundTrip(Get("/own/fields"));
  EXPECT_EQ(own["Content-Security-Policy"], "default-src *");
  EXPECT_EQ(own["X-Frame-Options"], "SAMEORIGIN");
  EXPECT_EQ(own["X-Content-Type-Options"], "nosniff") << "what the upstream left out is added";
  EXPECT_EQ(own.count(boost::beast::http::field::server), 0u);
  for (const auto* res : {&api, &page, &own}) {
    EXPECT_EQ(res->count(boost::beast::http::field::strict_transport_security), 0u);
  }

  // The gateway's own answers, and a streamed (chunked) one.
  for (const char* target : {"/down/x", "/nowhere", "/api/chunks/10"}) {
    const auto res = f.gateway.RoundTrip(Get(target));
    EXPECT_EQ(res["X-Frame-Options"], "DENY") << target;
    EXPECT_EQ(res.count(boost::beast::http::field::strict_transport_security), 0u) << target;
  }
}

TEST(ProxyTest, StreamsLargeAndChunkedBodiesBothWays) {
  Fixture f;
  RawClient c(f.gateway.port());
  const std::string big(3 << 20, 'b');
  auto up = c.RoundTrip("POST /api/seen/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: " +
                        std::to_string(big.size()) + "\r\n\r\n" + big);
  ASSERT_EQ(up.result_int(), 200u);
  EXPECT_TRUE(Has(up.body(), "body: 3145728\n")) << up.body();
  EXPECT_TRUE(Has(up.body(), "Content-Length: 3145728\n"));

  auto chunked = c.RoundTrip(
      "POST /api/seen/c HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_EQ(chunked.result_int(), 200u);
  EXPECT_TRUE(Has(chunked.body(), "body: 11\n")) << chunked.body();
  EXPECT_TRUE(Has(chunked.body(), "Transfer-Encoding: chunked\n"));

  auto down = c.RoundTrip(Get("/api/big/1000000"));
  ASSERT_EQ(down.result_int(), 200u);
  EXPECT_EQ(down.body(), std::string(1000000, 'z'));
  auto small = c.RoundTrip(Get("/api/big/10"));
  EXPECT_EQ(small.body(), "zzzzzzzzzz");

  // A large response of unknown length is streamed chunked to the client.
  auto unknown = c.RoundTrip(Get("/api/chunks/1000000"));
  ASSERT_EQ(unknown.result_int(), 200u);
  EXPECT_TRUE(unknown.chunked());
  EXPECT_EQ(unknown.body(), std::string(1000000, 'c'));
  EXPECT_EQ(c.RoundTrip(Get("/api/big/10")).body(), "zzzzzzzzzz") << "the connection is kept";
}

TEST(ProxyTest, HeadKeepsTheUpstreamsContentLength) {
  Fixture f;
  RawClient c(f.gateway.port());
  c.Send("HEAD /api/head/123 HTTP/1.1\r\nHost: gw\r\n\r\n");
  auto res = c.ReadHead();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[boost::beast::http::field::content_length], "123");
  EXPECT_EQ(c.RoundTrip(Get("/api/big/3")).body(), "zzz") << "the connection is still in step";
}

TEST(ProxyTest, UpstreamFailuresBecome502And504) {
  Fixture f;
  RawClient c(f.gateway.port());
  auto refused = c.RoundTrip(Get("/down/x"));
  EXPECT_EQ(refused.result_int(), 502u);
  EXPECT_TRUE(Has(refused.body(), "refused")) << refused.body();
  auto slow = c.RoundTrip(Get("/quick/slow"));
  EXPECT_EQ(slow.result_int(), 504u);
  EXPECT_EQ(slow[boost::beast::http::field::content_type], "application/problem+json");
  auto dropped = c.RoundTrip(Get("/api/drop"));
  EXPECT_EQ(dropped.result_int(), 502u);
  EXPECT_EQ(c.RoundTrip(Get("/api/seen/fine")).result_int(), 200u);
  const std::string metrics = f.telemetry.metrics().Expose(tel::ExpositionFormat::kPrometheusText);
  EXPECT_TRUE(Has(metrics, "http_client_request_duration_seconds_count{http_request_method=\"GET\",server_address=\"127.0.0.1:1\",http_response_status_code=\"\"} 1"))
      << metrics;
}

TEST(ProxyTest, RetriesOnceWhenAReusedConnectionWasClosedByTheUpstream) {
  http::ServerOptions upstream;
  upstream.idle_timeout = std::chrono::milliseconds(100);
  Fixture f(upstream);
  RawClient c(f.gateway.port());
  EXPECT_EQ(c.RoundTrip(Get("/api/seen/1")).result_int(), 200u);
  // The upstream closes its idle keep-alive connection; the pool does not know yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(c.RoundTrip(Get("/api/seen/2")).result_int(), 200u);
}

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: gw\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

TEST(ProxyTest, PostsAfterTheUpstreamClosedTheIdleConnection) {
  http::ServerOptions upstream;
  upstream.idle_timeout = std::chrono::milliseconds(100);
  Fixture f(upstream);
  RawClient c(f.gateway.port());
  for (int i = 0; i < 3; ++i) {
    auto res = c.RoundTrip(Post("/api/seen/p", "abc"));
    EXPECT_EQ(res.result_int(), 200u) << i << ": " << res.body();
    // A POST is not retried after it was sent: the closed connection must be found first.
    ASSERT_TRUE(test_support::Eventually([&] { return f.upstream->server().connections() == 0; }));
  }
}

TEST(ProxyTest, PostsAfterTheUpstreamRestartedOnTheSamePort) {
  Fixture f;
  RawClient c(f.gateway.port());
  EXPECT_EQ(c.RoundTrip(Post("/api/seen/p", "ab")).result_int(), 200u);
  f.RestartUpstream();
  for (int i = 0; i < 3; ++i) {
    auto res = c.RoundTrip(Post("/api/seen/p", "abc"));
    EXPECT_EQ(res.result_int(), 200u) << i << ": " << res.body();
    EXPECT_TRUE(Has(res.body(), "body: 3\n")) << res.body();
  }
}

// Sends what the peer still takes; false once it stopped taking (closed or reset).
bool SendWhileOpen(RawClient& c, std::string_view bytes) {
  boost::system::error_code ec;
  boost::asio::write(c.socket(), boost::asio::buffer(bytes), ec);
  return !ec;
}

TEST(ProxyTest, RelaysTheUpstreamsEarly413ForAChunkedUploadOverItsLimit) {
  Fixture f;
  const std::string chunk = "4000\r\n" + std::string(0x4000, 'u') + "\r\n";
  for (int i = 0; i < 20; ++i) {
    RawClient c(f.gateway.port());
    bool open = SendWhileOpen(
        c, "POST /limited/upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int k = 0; k < 64 && open; ++k) open = SendWhileOpen(c, chunk);  // 1 MiB
    if (open) SendWhileOpen(c, "0\r\n\r\n");
    auto res = c.Read();
    EXPECT_EQ(res.result_int(), 413u) << "try " << i << ": " << res.body();
    EXPECT_TRUE(Has(res.body(), "65536 bytes")) << "the upstream's own answer: " << res.body();
    if (res.keep_alive()) {
      // The gateway had sent the whole body before the upstream stopped reading.
      EXPECT_EQ(c.RoundTrip(Post("/limited/upload", "small")).body(), "body: 5") << "try " << i;
    } else {
      // The rest of the body was never read: the connection cannot go on.
      EXPECT_TRUE(c.ClosedByServerWithin(std::chrono::seconds(5))) << "try " << i;
    }
  }
  RawClient after(f.gateway.port());
  EXPECT_EQ(after.RoundTrip(Post("/limited/upload", "small")).body(), "body: 5");
}

TEST(ProxyTest, RelaysTheUpstreamsEarly413ForAContentLengthUploadOverItsLimit) {
  Fixture f;
  // Larger than what the upstream reads and discards after answering (4 MiB), so that it
  // closes while the gateway is still sending.
  const std::string body(6 << 20, 'u');
  for (int i = 0; i < 3; ++i) {
    RawClient c(f.gateway.port());
    if (SendWhileOpen(c, "POST /limited/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n")) {
      SendWhileOpen(c, body);
    }
    auto res = c.Read();
    EXPECT_EQ(res.result_int(), 413u) << "try " << i << ": " << res.body();
    EXPECT_TRUE(Has(res.body(), "65536 bytes")) << res.body();
  }
}

// ---- Request smuggling (RFC 9112 section 6.3): a request whose body hides a second
// request must never make that second request reach an upstream, however its framing is
// spelled.

std::string PostVisible(std::string_view framing, std::string_view body) {
  return "POST /api/seen/visible HTTP/1.1\r\nHost: gw\r\n" + std::string(framing) + "\r\n" +
         std::string(body);
}

TEST(ProxySmuggling, AHiddenRequestNeverReachesTheUpstream) {
  Fixture f;
  const std::string hidden = "GET /api/seen/hidden HTTP/1.1\r\nHost: gw\r\n\r\n";
  const std::string chunked_hidden = "0\r\n\r\n" + hidden;
  const std::string hidden_length = "Content-Length: " + std::to_string(hidden.size()) + "\r\n";
  const struct {
    std::string request;
    unsigned status;
  } cases[] = {
      {PostVisible("Transfer-Encoding: identity\r\n", hidden), 400},
      {PostVisible("Transfer-Encoding: xchunked\r\n", hidden), 400},
      {PostVisible("Transfer-Encoding: chunked, identity\r\n", hidden), 400},
      {PostVisible("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", hidden), 400},
      {PostVisible("Transfer-Encoding:\tidentity\r\n" + hidden_length, hidden), 400},
      {PostVisible(hidden_length + "Transfer-Encoding: chunked\r\n", chunked_hidden), 400},
      {PostVisible("Transfer-Encoding: chunked\r\n" + hidden_length, chunked_hidden), 400},
      {PostVisible("Transfer-Encoding: gzip, chunked\r\n", chunked_hidden), 400},
      {"POST /api/seen/visible HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_hidden,
       400},
      {"POST /api/seen/visible HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n" +
           hidden,
       400},
  };
  const int before = g_upstream_requests.load();
  for (const auto& c : cases) {
    RawClient client(f.gateway.port());
    client.Send(c.request);
    const auto res = client.Read();
    EXPECT_EQ(res.result_int(), c.status) << c.request << "\n-> " << res.body();
    EXPECT_TRUE(client.ClosedByServer()) << c.request;
  }
  EXPECT_EQ(g_upstream_requests.load(), before)
      << "a refused request, or what it hid, was forwarded";

  // Framed correctly: the body reaches the upstream as a body, and a pipelined request
  // after it is forwarded as itself.
  RawClient client(f.gateway.port());
  client.Send(PostVisible("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n") +
              Get("/api/seen/next"));
  const auto first = client.Read();
  EXPECT_TRUE(Has(first.body(), "POST /seen/visible\n")) << first.body();
  EXPECT_TRUE(Has(first.body(), "body: 5\n")) << first.body();
  EXPECT_TRUE(Has(client.Read().body(), "GET /seen/next\n"));
  EXPECT_EQ(g_upstream_requests.load(), before + 2);
}

TEST(ProxySmuggling, DotSegmentsCannotLeaveTheRoutesPrefix) {
  Fixture f;
  const int before = g_upstream_requests.load();
  for (const char* target :
       {"/api/../admin", "/api/%2e%2e/admin", "/api/seen/../../admin", "/api/./seen/x"}) {
    RawClient client(f.gateway.port());
    const auto res = client.RoundTrip(Get(target));
    EXPECT_EQ(res.result_int(), 400u) << target << ": " << res.body();
  }
  EXPECT_EQ(g_upstream_requests.load(), before);
  // "..%2f.." is one segment, not a dot-segment: the upstream sees the same segment.
  RawClient client(f.gateway.port());
  const auto res = client.RoundTrip(Get("/api/seen/..%2f..%2fadmin"));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_TRUE(Has(res.body(), "GET /seen/..%2f..%2fadmin\n")) << res.body();
}

TEST(ProxySmuggling, AbsoluteFormIsForwardedInOriginFormWithTheClientsOneHost) {
  Fixture f;
  RawClient client(f.gateway.port());
  const auto res =
      client.RoundTrip("GET http://gw.example/api/seen/items?q=1 HTTP/1.1\r\nHost: gw\r\n\r\n");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_TRUE(Has(res.body(), "GET /seen/items?q=1\n")) << res.body();
  EXPECT_EQ(res.body().find("Host: "), res.body().rfind("Host: ")) << "one Host line";
}

TEST(ProxyTest, HeadIsForwardedAndAnsweredWithTheUpstreamsFieldsAndNoBody) {
  Fixture f;
  RawClient client(f.gateway.port());
  client.Send("HEAD /api/seen/items HTTP/1.1\r\nHost: gw\r\n\r\n");
  const auto head = client.ReadHead();
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_FALSE(head[boost::beast::http::field::content_length].empty());
  EXPECT_EQ(head["X-Upstream"], "yes");
  EXPECT_FALSE(head[boost::beast::http::field::date].empty());
  // Nothing followed the head: the next answer on the connection parses.
  EXPECT_TRUE(Has(client.RoundTrip(Get("/api/seen/after")).body(), "GET /seen/after\n"));
}

}  // namespace
}  // namespace vigil::gateway

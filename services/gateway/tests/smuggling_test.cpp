// Request smuggling through the gateway: a request whose body hides a second request
// must never make that second request reach an upstream, however its framing is spelled
// (RFC 9112 section 6.3; the gateway and the upstream are both real servers on loopback).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/request_id.hpp>

#include "proxy.hpp"
#include "test_server.hpp"

namespace vigil::gateway {
namespace {

namespace tel = vigil::telemetry;
using http::Exchange;
using http::testing::RawClient;
using http::testing::RunningServer;

struct CountingUpstream {
  std::atomic<int> requests{0};
  std::atomic<int> hidden{0};
  http::Routes Routes() {
    http::Routes r;
    r.Add("*", "/*",
          [this](Exchange& ex) -> asio::awaitable<void> {
            ++requests;
            if (ex.path().find("hidden") != std::string_view::npos) ++hidden;
            const std::string body = co_await ex.ReadAll();
            ex.Respond(200,
                       std::string(ex.method()) + " " + std::string(ex.target()) +
                           " body=" + std::to_string(body.size()),
                       "text/plain");
          },
          {.body = http::BodyMode::kStreamed});
    return r;
  }
};

struct Fixture {
  Fixture()
      : upstream_server(upstream.Routes(), http::Pipeline{}, {}, 1),
        telemetry(http::testing::QuietTelemetry("gateway-test")),
        gateway(
            [this](http::Runtime& runtime, http::Routes& routes) {
              GatewayConfig config = ParseGatewayConfig(
                  R"({"routes":[{"prefix":"/api","upstream":"http://127.0.0.1:)" +
                      std::to_string(upstream_server.port()) + R"(","strip_prefix":true}]})",
                  "test");
              auto proxy = std::make_shared<Proxy>(runtime, config, telemetry, http::PoolOptions{});
              proxy->AddRoutes(routes);
              return proxy;
            },
            Pipeline(), http::ServerOptions{}, 1) {}

  http::Pipeline Pipeline() {
    http::Pipeline p;
    p.Add<http::RequestIdMiddleware>();
    p.Add<http::ErrorMiddleware>(telemetry.log());
    return p;
  }

  CountingUpstream upstream;
  RunningServer upstream_server;
  tel::Telemetry telemetry;
  RunningServer gateway;
};

const std::string kHidden = "GET /api/hidden HTTP/1.1\r\nHost: gw\r\n\r\n";

std::string Post(std::string_view framing, std::string_view body) {
  return "POST /api/visible HTTP/1.1\r\nHost: gw\r\n" + std::string(framing) + "\r\n" +
         std::string(body);
}

TEST(Smuggling, AHiddenRequestNeverReachesTheUpstream) {
  Fixture f;
  const std::string chunked_hidden = "0\r\n\r\n" + kHidden;
  const std::string hidden_length = "Content-Length: " + std::to_string(kHidden.size()) + "\r\n";
  const struct {
    std::string request;
    unsigned status;
  } cases[] = {
      {Post("Transfer-Encoding: identity\r\n", kHidden), 400},
      {Post("Transfer-Encoding: xchunked\r\n", kHidden), 400},
      {Post("Transfer-Encoding: chunked, identity\r\n", kHidden), 400},
      {Post("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", kHidden), 400},
      {Post("Transfer-Encoding:\tidentity\r\n" + hidden_length, kHidden), 400},
      {Post(hidden_length + "Transfer-Encoding: chunked\r\n", chunked_hidden), 400},
      {Post("Transfer-Encoding: chunked\r\n" + hidden_length, chunked_hidden), 400},
      {Post("Transfer-Encoding: gzip, chunked\r\n", chunked_hidden), 501},
      {"POST /api/visible HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_hidden, 400},
      {"POST /api/visible HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n" + kHidden,
       400},
  };
  for (const auto& c : cases) {
    RawClient client(f.gateway.port());
    client.Send(c.request);
    const auto res = client.Read();
    EXPECT_EQ(res.result_int(), c.status) << c.request << "\n-> " << res.body();
    EXPECT_TRUE(client.ClosedByServer()) << c.request;
  }
  EXPECT_EQ(f.upstream.hidden.load(), 0);
  EXPECT_EQ(f.upstream.requests.load(), 0) << "no refused request is forwarded";

  // The same connection framed correctly: the body reaches the upstream as a body, and
  // a pipelined request after it is forwarded as itself.
  RawClient client(f.gateway.port());
  client.Send(Post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n") +
              "GET /api/next HTTP/1.1\r\nHost: gw\r\n\r\n");
  EXPECT_EQ(client.Read().body(), "POST /visible body=5");
  EXPECT_EQ(client.Read().body(), "GET /next body=0");
  EXPECT_EQ(f.upstream.hidden.load(), 0);
}

TEST(Smuggling, DotSegmentsCannotLeaveTheRoutesPrefix) {
  Fixture f;
  for (const char* target :
       {"/api/../admin", "/api/%2e%2e/admin", "/api/x/..%2f..%2fadmin", "/api/./x"}) {
    RawClient client(f.gateway.port());
    const auto res =
        client.RoundTrip("GET " + std::string(target) + " HTTP/1.1\r\nHost: gw\r\n\r\n");
    if (std::string_view(target).find("%2f") != std::string_view::npos) {
      // "..%2f.." is one segment, not a dot-segment: an upstream sees the same segment.
      EXPECT_EQ(res.result_int(), 200u) << target;
      EXPECT_EQ(res.body(), "GET /x/..%2f..%2fadmin body=0");
    } else {
      EXPECT_EQ(res.result_int(), 400u) << target << ": " << res.body();
    }
  }
  EXPECT_EQ(f.upstream.requests.load(), 1);
}

TEST(GatewayHead, HeadIsForwardedAndAnsweredWithTheUpstreamsFieldsAndNoBody) {
  Fixture f;
  RawClient client(f.gateway.port());
  const auto get = client.RoundTrip("GET /api/items HTTP/1.1\r\nHost: gw\r\n\r\n");
  client.Send("HEAD /api/items HTTP/1.1\r\nHost: gw\r\n\r\n");
  const auto head = client.ReadHead();
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_EQ(head[boost::beast::http::field::content_length],
            std::to_string(std::string("HEAD /items body=0").size()));
  EXPECT_FALSE(head[boost::beast::http::field::date].empty());
  // Nothing followed the head: the next answer on the connection parses.
  EXPECT_EQ(client.RoundTrip("GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n").body(),
            "GET /after body=0");
  EXPECT_FALSE(get[boost::beast::http::field::date].empty());
}

TEST(Smuggling, AbsoluteFormIsForwardedInOriginFormWithOneHost) {
  Fixture f;
  RawClient client(f.gateway.port());
  const auto res =
      client.RoundTrip("GET http://gw.example/api/items?q=1 HTTP/1.1\r\nHost: gw\r\n\r\n");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "GET /items?q=1 body=0");
}

}  // namespace
}  // namespace vigil::gateway

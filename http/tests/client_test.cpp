// The pooled client: a front server whose handler calls an upstream server through
// http::Client, both on loopback.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vigil/http/client.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/tracing.hpp>

#include "test_server.hpp"

namespace vigil::http {
namespace {

namespace bhttp = boost::beast::http;
namespace tel = vigil::telemetry;
using testing::RawClient;
using testing::RunningServer;

Routes UpstreamRoutes() {
  Routes r;
  r.Add("GET", "/whoami", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200,
               std::string(ex.header("traceparent")) + "|" + std::string(ex.header("x-request-id")) +
                   "|" + std::string(ex.header("host")),
               "text/plain");
    co_return;
  });
  r.Add("POST", "/count", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(201, std::to_string(ex.body().size()), "text/plain");
    co_return;
  });
  r.Add("GET", "/slow", [](Exchange& ex) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::seconds(3));
    co_await t.async_wait(asio::use_awaitable);
    ex.Respond(200, "late", "text/plain");
  });
  return r;
}

// The front server: /call/{path} calls the upstream's /{path}.
struct Front {
  explicit Front(std::uint16_t upstream_port, ServerOptions upstream_options = {})
      : logger(QuietLog()),
        server(
            [this, upstream_port](Runtime& runtime, Routes& routes) {
              auto state = std::make_shared<State>(runtime, upstream_port, registry);
              routes.Add("*", "/call/{path}", [state](Exchange& ex) -> asio::awaitable<void> {
                Client::Request req;
                req.method(ex.request().method());
                req.target("/" + std::string(ex.Param("path")));
                req.body() = ex.body();
                Client::Response res = co_await state->client.Send(ex.worker(), ex.context(), req);
                ex.Respond(res.result_int(), std::move(res.body()), "text/plain");
              });
              return state;
            },
            MakePipeline(), upstream_options, 1) {}

  struct State {
    State(Runtime& runtime, std::uint16_t port, tel::Registry& registry)
        : upstream(runtime, UpstreamAddress::Parse("http://127.0.0.1:" + std::to_string(port)),
                   PoolOptions{}, registry),
          instruments(registry),
          client(upstream, tel::Tracer(), instruments, std::chrono::milliseconds(1000)) {}
    Upstream upstream;
    ClientInstruments instruments;
    Client client;
  };

  static tel::LoggerOptions QuietLog() {
    tel::LoggerOptions o;
    o.file_path = "/dev/null";
    o.handle_signals = false;
    return o;
  }
  Pipeline MakePipeline() {
    Pipeline p;
    p.Add<RequestIdMiddleware>();
    p.Add<TracingMiddleware>(tel::Tracer());
    p.Add<ErrorMiddleware>(logger);
    return p;
  }

  tel::Registry registry;
  tel::Logger logger;
  RunningServer server;
};

std::string Get(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: front\r\n" + std::string(extra) +
         "\r\n";
}

TEST(ClientTest, PropagatesContextAndReusesConnections) {
  RunningServer upstream(UpstreamRoutes(), Pipeline{});
  Front front(upstream.port());
  RawClient c(front.server.port());
  auto res = c.RoundTrip(Get("/call/whoami",
                             "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
                             "X-Request-Id: rid-7\r\n"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const std::string& seen = res.body();
  EXPECT_EQ(seen.rfind("00-4bf92f3577b34da6a3ce929d0e0e4736-", 0), 0u) << seen;
  EXPECT_EQ(seen.find("00f067aa0ba902b7"), std::string::npos) << "parent is the client span";
  EXPECT_NE(seen.find("|rid-7|"), std::string::npos) << seen;
  EXPECT_NE(seen.find("|127.0.0.1:" + std::to_string(upstream.port())), std::string::npos) << seen;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.RoundTrip(Get("/call/whoami")).result_int(), 200u);
  EXPECT_EQ(upstream.server().connections(), 1u) << "one pooled connection served every call";
  const std::string metrics = front.registry.Expose(tel::ExpositionFormat::kPrometheusText);
  EXPECT_NE(metrics.find("http_client_request_duration_seconds_count{http_request_method=\"GET\",server_address=\"127.0.0.1:" +
                         std::to_string(upstream.port()) + "\",http_response_status_code=\"200\"} 4"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("http_client_open_connections{http_connection_state=\"idle\""),
            std::string::npos);
}

TEST(ClientTest, SendsBodies) {
  RunningServer upstream(UpstreamRoutes(), Pipeline{});
  Front front(upstream.port());
  RawClient c(front.server.port());
  auto res = c.RoundTrip("POST /call/count HTTP/1.1\r\nHost: f\r\nContent-Length: 4\r\n\r\nabcd");
  EXPECT_EQ(res.result_int(), 201u);
  EXPECT_EQ(res.body(), "4");
}

TEST(ClientTest, RetriesAStaleConnectionOnce) {
  ServerOptions quick_idle;
  quick_idle.idle_timeout = std::chrono::milliseconds(100);
  RunningServer upstream(UpstreamRoutes(), Pipeline{}, quick_idle);
  Front front(upstream.port());
  RawClient c(front.server.port());
  EXPECT_EQ(c.RoundTrip(Get("/call/whoami")).result_int(), 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the upstream closes it
  EXPECT_EQ(c.RoundTrip(Get("/call/whoami")).result_int(), 200u);
}

TEST(ClientTest, FailuresBecome502And504) {
  std::uint16_t closed_port;
  {
    RunningServer gone(UpstreamRoutes(), Pipeline{});
    closed_port = gone.port();
  }
  Front refused(closed_port);
  RawClient c(refused.server.port());
  auto res = c.RoundTrip(Get("/call/whoami"));
  EXPECT_EQ(res.result_int(), 502u);
  EXPECT_NE(res.body().find("refused"), std::string::npos) << res.body();

  RunningServer upstream(UpstreamRoutes(), Pipeline{});
  Front front(upstream.port());
  RawClient c2(front.server.port());
  auto slow = c2.RoundTrip(Get("/call/slow"));
  EXPECT_EQ(slow.result_int(), 504u);
  EXPECT_NE(slow.body().find("1000 ms"), std::string::npos) << slow.body();
}

TEST(UpstreamAddressTest, ParsesAndRejects) {
  auto a = UpstreamAddress::Parse("http://catalog:8082");
  EXPECT_EQ(a.host, "catalog");
  EXPECT_EQ(a.port, 8082);
  EXPECT_EQ(a.authority, "catalog:8082");
  EXPECT_EQ(UpstreamAddress::Parse("http://example.org/").port, 80);
  EXPECT_EQ(UpstreamAddress::Parse("http://[::1]:1").authority, "[::1]:1");
  for (const char* bad : {"https://a", "http://", "http://a:0", "http://a:70000", "http://a/x",
                          "http://u@a", "a:80", "http://[::1", "http://a:"}) {
    EXPECT_THROW(UpstreamAddress::Parse(bad), std::invalid_argument) << bad;
  }
}

TEST(ClientHelpersTest, IdempotenceAndStaleErrors) {
  EXPECT_TRUE(IsIdempotent(bhttp::verb::get));
  EXPECT_TRUE(IsIdempotent(bhttp::verb::put));
  EXPECT_FALSE(IsIdempotent(bhttp::verb::post));
  EXPECT_FALSE(IsIdempotent(bhttp::verb::patch));
  EXPECT_TRUE(IsStaleConnection(asio::error::connection_reset));
  EXPECT_TRUE(IsStaleConnection(bhttp::error::end_of_stream));
  EXPECT_FALSE(IsStaleConnection(asio::error::timed_out));
  EXPECT_FALSE(IsStaleConnection(asio::error::connection_refused));
}

}  // namespace
}  // namespace vigil::http

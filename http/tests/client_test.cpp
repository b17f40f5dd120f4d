// The pooled client: a front server whose handler calls an upstream server through
// http::Client, both on loopback.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <optional>
#include <thread>
#include <vigil/http/client.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/tracing.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>

#include "client_call.hpp"
#include "pool.hpp"
#include "send.hpp"

namespace vigil::http {
namespace {

namespace bhttp = boost::beast::http;
namespace tel = vigil::telemetry;
using internal::ClientConnection;
using internal::ConnectionPool;
using internal::IdleLifetime;
using internal::IsIdempotent;
using internal::IsStaleConnection;
using internal::KeepAliveTimeout;
using internal::PoolGauges;
using internal::RedactTarget;
using test_support::RawClient;
using test_support::RunningServer;

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
  // The client's port: which connection carried the request.
  r.Add("GET", "/peer", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, std::to_string(ex.peer().port()), "text/plain");
    co_return;
  });
  // The same, announcing that idle connections are closed after 1 s (as Node and Apache
  // announce theirs); this server keeps them longer, so only the client's pool can act.
  r.Add("GET", "/peer-keep-alive-1", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, std::to_string(ex.peer().port()), "text/plain");
    ex.response().set(bhttp::field::keep_alive, "timeout=1, max=100");
    co_return;
  });
  r.Add("GET", "/slow", [](Exchange& ex) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::seconds(3));
    co_await t.async_wait(asio::use_awaitable);
    ex.Respond(200, "late", "text/plain");
  });
  // The request's fields, one per line, and the size of its body.
  r.Add("*", "/fields",
        [](Exchange& ex) -> asio::awaitable<void> {
          std::string report;
          for (const auto& f : ex.request()) {
            report += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
          }
          std::uint64_t bytes = 0;
          char chunk[4096];
          while (const std::size_t n = co_await ex.ReadSome(chunk, sizeof chunk)) bytes += n;
          ex.Respond(200, report + "body: " + std::to_string(bytes), "text/plain");
        },
        {.body = BodyMode::kStreamed, .max_body_bytes = 1 << 24});
  r.Add("GET", "/big", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, std::string(8 << 20, 'b'), "application/octet-stream");
    co_return;
  });
  return r;
}

// A proxy's policy: X-Claim is the front's alone; X-Via names the hop.
struct TestPolicy final : ForwardPolicy {
  explicit TestPolicy(const Exchange& inbound) : ex(inbound) {}
  bool Drops(std::string_view name) const noexcept override {
    return boost::beast::iequals(boost::beast::string_view(name.data(), name.size()), "x-claim");
  }
  void AddFields(ForwardFields& fields) const override {
    fields.Add("X-Via", ex.peer_address(), ", front");
  }
  const Exchange& ex;
};

// The front server: /call/{path} calls the upstream's /{path}.
struct Front {
  explicit Front(std::uint16_t upstream_port, ServerOptions upstream_options = {})
      : logger(test_support::QuietLog()),
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
              // /forward/{path} is proxied to the upstream's /{path}, bodies up to 64 KiB.
              routes.Add("*", "/forward/*",
                         [state](Exchange& ex) -> asio::awaitable<void> {
                           const TestPolicy policy(ex);
                           co_await state->client.Forward(ex, ex.target().substr(8), policy);
                         },
                         {.body = BodyMode::kStreamed, .max_body_bytes = 64 * 1024});
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

// url.full keeps the path and the query's names; every value could be a credential.
TEST(ClientTest, UrlFullRedactsQueryValues) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/orders", "/orders"},
      {"/orders?access_token=eyJ.x.y&limit=5", "/orders?access_token=REDACTED&limit=REDACTED"},
      {"/x?secret-token", "/x?REDACTED"},
      {"/x?a=&b", "/x?a=&REDACTED"},
      {"/x?a=1&&b=2", "/x?a=REDACTED&&b=REDACTED"},
      {"/x?", "/x?"},
  };
  for (const auto& [target, expected] : cases) {
    const std::size_t size = RedactTarget(target, {});
    std::string out(size, '\0');
    EXPECT_EQ(RedactTarget(target, std::span<char>(out.data(), out.size())), size);
    EXPECT_EQ(out, expected) << target;
  }
  char small[4] = {'-', '-', '-', '-'};
  EXPECT_EQ(RedactTarget("/x?a=1", small), 13u);
  EXPECT_EQ(std::string_view(small, 4), "/x?a") << "what fits is written";
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

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: front\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

TEST(ClientTest, PostsAfterTheUpstreamClosedTheIdleConnection) {
  ServerOptions quick_idle;
  quick_idle.idle_timeout = std::chrono::milliseconds(100);
  RunningServer upstream(UpstreamRoutes(), Pipeline{}, quick_idle);
  Front front(upstream.port());
  RawClient c(front.server.port());
  for (int i = 0; i < 3; ++i) {
    auto res = c.RoundTrip(Post("/call/count", "abc"));
    EXPECT_EQ(res.result_int(), 201u) << i << ": " << res.body();
    // The upstream closes its idle keep-alive connection; the pool has it still. A POST
    // is not retried after it was sent: the connection must be found closed before.
    ASSERT_TRUE(test_support::Eventually([&] { return upstream.server().connections() == 0; }));
  }
  EXPECT_EQ(c.RoundTrip(Post("/call/count", "abcd")).body(), "4");
}

TEST(ClientTest, PostsAfterTheUpstreamRestartedOnTheSamePort) {
  auto upstream = std::make_unique<RunningServer>(UpstreamRoutes(), Pipeline{});
  const std::uint16_t port = upstream->port();
  Front front(port);
  RawClient c(front.server.port());
  EXPECT_EQ(c.RoundTrip(Post("/call/count", "ab")).result_int(), 201u);
  upstream.reset();  // its shutdown closes the pooled connection from its side
  upstream = std::make_unique<RunningServer>(port, UpstreamRoutes(), Pipeline{});
  for (int i = 0; i < 3; ++i) {
    auto res = c.RoundTrip(Post("/call/count", "abc"));
    EXPECT_EQ(res.result_int(), 201u) << i << ": " << res.body();
  }
}

TEST(ClientTest, AConnectionIsNotReusedPastTheUpstreamsKeepAliveTimeout) {
  RunningServer upstream(UpstreamRoutes(), Pipeline{});  // keeps idle connections 60 s
  Front front(upstream.port());
  RawClient c(front.server.port());
  const std::string first = c.RoundTrip(Get("/call/peer")).body();
  EXPECT_EQ(c.RoundTrip(Get("/call/peer")).body(), first) << "kept for the pool's 30 s";
  EXPECT_EQ(c.RoundTrip(Get("/call/peer-keep-alive-1")).body(), first);
  // Kept 1 s less the margin (500 ms) from now: waiting past that is the condition itself.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const std::string next = c.RoundTrip(Get("/call/peer")).body();
  EXPECT_NE(next, first) << "the connection the upstream would close was reused";
  EXPECT_EQ(c.RoundTrip(Get("/call/peer")).body(), next) << "the new one is kept";
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

TEST(ForwardTest, TheHeadIsTheClientsEndToEndFieldsWithThePolicysAndTheTraceContext) {
  RunningServer upstream(UpstreamRoutes(), Pipeline{});
  Front front(upstream.port());
  RawClient c(front.server.port());
  auto res = c.RoundTrip(
      "POST /forward/fields?x=1 HTTP/1.1\r\nHost: front\r\nX-Request-Id: rid-9\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\nX-Claim: admin\r\n"
      "X-Kept: yes\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const std::string& seen = res.body();
  EXPECT_NE(seen.find("Host: front\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Kept: yes\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Via: 127.0.0.1, front\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Request-Id: rid-9\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"), std::string::npos);
  EXPECT_EQ(seen.find("00f067aa0ba902b7"), std::string::npos) << "parent is the client span";
  EXPECT_NE(seen.find("Content-Length: 3\nbody: 3"), std::string::npos) << seen;
  for (const char* dropped : {"X-Claim", "X-Hop", "TE:", "Connection"}) {
    EXPECT_EQ(seen.find(dropped), std::string::npos) << dropped << " in\n" << seen;
  }
}

TEST(ForwardTest, AConnectionHeaderListingMoreThanEightNamesDropsEveryUnlistedCustomField) {
  RunningServer upstream(UpstreamRoutes(), Pipeline{});
  Front front(upstream.port());
  RawClient c(front.server.port());
  auto res = c.RoundTrip(
      "GET /forward/fields HTTP/1.1\r\nHost: front\r\n"
      "Connection: a1, a2, a3, a4, a5, a6, a7, a8, X-Ninth\r\nX-Ninth: secret\r\n"
      "X-Other: 1\r\nAccept: text/plain\r\n\r\n");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const std::string& seen = res.body();
  EXPECT_EQ(seen.find("X-Ninth"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("X-Other"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Accept: text/plain\n"), std::string::npos) << seen;
}

// The pool's count of connections in use, as exposed.
std::string ActiveConnections(tel::Registry& registry, std::uint16_t upstream_port) {
  const std::string metrics = registry.Expose(tel::ExpositionFormat::kPrometheusText);
  const std::string series =
      "http_client_open_connections{http_connection_state=\"active\",server_address=\"127.0.0.1:" +
      std::to_string(upstream_port) + "\"} ";
  const auto at = metrics.find(series);
  if (at == std::string::npos) return "absent";
  return metrics.substr(at + series.size(), metrics.find('\n', at) - at - series.size());
}

TEST(ForwardTest, AConnectionLeftByAFailedInboundSideIsNoLongerCountedActive) {
  RunningServer upstream(UpstreamRoutes(), Pipeline{});
  Front front(upstream.port());
  {
    // A chunked upload over the front's limit fails while it streams to the upstream.
    RawClient c(front.server.port());
    const std::string piece(32 * 1024, 'u');
    std::string upload =
        "POST /forward/fields HTTP/1.1\r\nHost: front\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) upload += "8000\r\n" + piece + "\r\n";
    upload += "0\r\n\r\n";
    EXPECT_EQ(c.RoundTrip(upload).result_int(), 413u);
  }
  EXPECT_EQ(ActiveConnections(front.registry, upstream.port()), "0");
  {
    // A client that leaves in the middle of a streamed download.
    RawClient c(front.server.port());
    c.Send(Get("/forward/big"));
    EXPECT_EQ(c.ReadHead().result_int(), 200u);
  }
  EXPECT_TRUE(test_support::Eventually([&] {
    return ActiveConnections(front.registry, upstream.port()) == "0";
  })) << ActiveConnections(front.registry, upstream.port());
}

TEST(KeepAliveTest, ParsesTheTimeoutParameter) {
  using std::chrono::seconds;
  EXPECT_EQ(KeepAliveTimeout("timeout=5"), seconds(5));
  EXPECT_EQ(KeepAliveTimeout("timeout=5, max=1000"), seconds(5));
  EXPECT_EQ(KeepAliveTimeout("max=100,  Timeout = 15 "), seconds(15));
  EXPECT_EQ(KeepAliveTimeout("TIMEOUT=\"3\""), seconds(3));
  EXPECT_EQ(KeepAliveTimeout("timeout=0"), seconds(0));
  EXPECT_EQ(KeepAliveTimeout("timeout=99999999999"), seconds(UINT32_MAX));
  for (const char* none : {"", "max=5", "5", "timeout", "timeout=", "timeout=-1", "timeout=5s",
                           "timeout=1.5", "timeouts=5", "xtimeout=5"}) {
    EXPECT_EQ(KeepAliveTimeout(none), std::nullopt) << none;
  }
}

TEST(KeepAliveTest, IdleLifetimeIsTheAnnouncedTimeoutLessAMarginAndAtMostThePools) {
  using std::chrono::milliseconds;
  const milliseconds pool(30000);
  bhttp::fields f;
  EXPECT_EQ(IdleLifetime(f, pool), pool) << "nothing announced";
  f.set(bhttp::field::keep_alive, "timeout=5");  // Node's default
  EXPECT_EQ(IdleLifetime(f, pool), milliseconds(4000));
  f.set(bhttp::field::keep_alive, "timeout=1");
  EXPECT_EQ(IdleLifetime(f, pool), milliseconds(500));
  f.set(bhttp::field::keep_alive, "timeout=0");
  EXPECT_EQ(IdleLifetime(f, pool), milliseconds(0)) << "not kept at all";
  f.set(bhttp::field::keep_alive, "timeout=300");
  EXPECT_EQ(IdleLifetime(f, pool), pool) << "never longer than the pool's own limit";
  f.set(bhttp::field::keep_alive, "timeout=99999999999");
  EXPECT_EQ(IdleLifetime(f, pool), pool);
  f.set(bhttp::field::keep_alive, "max=3");
  EXPECT_EQ(IdleLifetime(f, pool), pool);
}

// The pool on its own, driven on this thread, against a plain listening socket.
struct PoolBench {
  PoolBench() : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    address = UpstreamAddress::Parse("http://127.0.0.1:" +
                                     std::to_string(acceptor.local_endpoint().port()));
    pool.emplace(io, address, PoolOptions{}, PoolGauges{});
  }
  // Runs `body` as a coroutine to completion.
  template <typename Body>
  void Run(Body body) {
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await body();
          done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
    io.restart();
    EXPECT_TRUE(done);
  }
  // A pooled connection and the upstream's end of it.
  asio::awaitable<std::pair<std::unique_ptr<ClientConnection>, asio::ip::tcp::socket>> Connect() {
    auto c = co_await pool->Connect();
    auto peer = co_await acceptor.async_accept(asio::use_awaitable);
    co_return std::make_pair(std::move(c), std::move(peer));
  }
  static std::uint16_t Port(ClientConnection& c) { return c.socket().local_endpoint().port(); }

  asio::io_context io;
  asio::ip::tcp::acceptor acceptor;
  UpstreamAddress address;
  std::optional<ConnectionPool> pool;
};

TEST(ConnectionPoolTest, EachIdleConnectionExpiresAtItsOwnTime) {
  PoolBench b;
  b.Run([&]() -> asio::awaitable<void> {
    auto [plain, plain_peer] = co_await b.Connect();
    auto [brief, brief_peer] = co_await b.Connect();
    const std::uint16_t plain_port = PoolBench::Port(*plain);
    bhttp::fields none;
    bhttp::fields one_second;
    one_second.set(bhttp::field::keep_alive, "timeout=1");
    b.pool->Release(std::move(plain), none);
    // Released last, so first in line for reuse, but only for 500 ms.
    b.pool->Release(std::move(brief), one_second);
    EXPECT_EQ(b.pool->idle(), 2u);
    asio::steady_timer t(b.io, std::chrono::milliseconds(600));
    co_await t.async_wait(asio::use_awaitable);
    auto c = co_await b.pool->Acquire();
    EXPECT_EQ(PoolBench::Port(*c), plain_port) << "the expired newer connection was reused";
    EXPECT_EQ(b.pool->idle(), 0u);
    b.pool->Discard(std::move(c));
  });
}

TEST(ConnectionPoolTest, AcquireSkipsIdleConnectionsTheUpstreamClosedOrWroteTo) {
  PoolBench b;
  b.Run([&]() -> asio::awaitable<void> {
    auto [good, good_peer] = co_await b.Connect();
    auto [closed, closed_peer] = co_await b.Connect();
    auto [chatty, chatty_peer] = co_await b.Connect();
    const std::uint16_t good_port = PoolBench::Port(*good);
    bhttp::fields none;
    b.pool->Release(std::move(good), none);
    b.pool->Release(std::move(closed), none);
    b.pool->Release(std::move(chatty), none);
    closed_peer.close();  // FIN: the upstream's idle timeout, or its restart
    co_await asio::async_write(chatty_peer, asio::buffer("HTTP/1.1 200 OK\r\n", 17),
                               asio::use_awaitable);  // out of step
    // Both are seen at once over loopback; the newest two are skipped.
    auto c = co_await b.pool->Acquire();
    EXPECT_EQ(PoolBench::Port(*c), good_port);
    EXPECT_EQ(b.pool->idle(), 0u);
    b.pool->Discard(std::move(c));
    // With none left, Acquire connects.
    auto fresh = co_await b.pool->Acquire();
    EXPECT_FALSE(fresh->reused());
    b.pool->Discard(std::move(fresh));
  });
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

// The host goes out as the Host field and the authority is written back into URLs: a host
// that is neither a name nor an address (brackets inside it, an IPv6 address without
// them, control characters) is refused rather than sent.
TEST(UpstreamAddressTest, AHostIsANameOrAnAddress) {
  EXPECT_EQ(UpstreamAddress::Parse("http://10.0.0.7:8080").host, "10.0.0.7");
  EXPECT_EQ(UpstreamAddress::Parse("http://orders-v2.internal_x~1").authority,
            "orders-v2.internal_x~1:80");
  const auto v6 = UpstreamAddress::Parse("http://[fd00::7]:9");
  EXPECT_EQ(v6.host, "fd00::7");
  EXPECT_EQ(UpstreamAddress::Parse("http://[" + v6.host + "]:9"), v6);
  for (const char* bad : {"http://V[::1]:9000", "http://::1:8080", "http://a:b:1", "http://[v6]:1",
                          "http://[fe80::1%eth0]:1", "http://a\r\nX-Evil:1", "http://a%20b",
                          "http://a\tb:1", "http://caf\xc3\xa9"}) {
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

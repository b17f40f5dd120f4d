// The server end to end in one process: real sockets on loopback, exact bytes in, the
// response as parsed by Beast out. Runs under ASan+UBSan with the other unit tests.
#include <gtest/gtest.h>
#include <pthread.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/pipeline.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::http {
namespace {

using test_support::RawClient;
using test_support::RunningServer;

asio::awaitable<void> Hello(Exchange& ex) {
  ex.RespondJson(200, R"({"hello":")" + std::string(ex.Param("name")) + "\"}");
  co_return;
}

asio::awaitable<void> EchoBody(Exchange& ex) {
  ex.Respond(200, "got " + std::to_string(ex.body().size()) + " bytes", "text/plain");
  co_return;
}

asio::awaitable<void> StreamCount(Exchange& ex) {
  std::uint64_t total = 0;
  char chunk[1000];
  for (;;) {
    const std::size_t n = co_await ex.ReadSome(chunk, sizeof chunk);
    if (n == 0) break;
    total += n;
  }
  ResponseHeader head;
  head.result(200);
  co_await ex.SendHead(head, std::nullopt);
  const std::string text = "counted " + std::to_string(total);
  co_await ex.SendBody(text.data(), text.size());
  co_await ex.Finish();
}

asio::awaitable<void> Sleep(Exchange& ex) {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(300));
  co_await t.async_wait(asio::use_awaitable);
  ex.Respond(200, "slept", "text/plain");
}

Routes TestRoutes() {
  Routes r;
  r.Add("GET", "/hello/{name}", Hello);
  r.Add("POST", "/body", EchoBody);
  r.Add("PUT", "/body", EchoBody);
  r.Add("POST", "/stream", StreamCount, {.body = BodyMode::kStreamed, .max_body_bytes = 1 << 20});
  r.Add("GET", "/sleep", Sleep);
  r.Add("GET", "/long", [](Exchange& ex) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::seconds(5));
    co_await t.async_wait(asio::use_awaitable);
    ex.Respond(200, "too late", "text/plain");
  });
  r.Add("GET", "/throw", [](Exchange&) -> asio::awaitable<void> {
    throw std::runtime_error("database password is hunter2");
    co_return;
  });
  r.Add("GET", "/teapot", [](Exchange&) -> asio::awaitable<void> {
    throw HttpError(422, "name: must not be empty");
    co_return;
  });
  r.Add("GET", "/bare-error", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(503, "", "text/plain");
    co_return;
  });
  return r;
}

// The middleware a program serves with (compression aside), whose lines and metrics a test
// reads back.
struct FullPipeline {
  test_support::TestTelemetry telemetry;
  Pipeline Make() { return test_support::PlatformPipeline(*telemetry, false); }
  std::vector<std::string> LogLines() { return test_support::SplitLines(telemetry.Logs()); }
};

std::string Get(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra) + "\r\n";
}

TEST(RuntimeTest, WorkerThreadsAreNamedForTheToolsThatListThreads) {
  Runtime runtime(3);
  std::promise<std::string> names[2];
  for (std::size_t i = 1; i <= 2; ++i) {
    boost::asio::post(runtime.context(i), [&names, i] {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      names[i - 1].set_value(name);
    });
  }
  std::thread run([&runtime] { runtime.Run(); });
  EXPECT_EQ(names[0].get_future().get(), "vigil-http-1");
  EXPECT_EQ(names[1].get_future().get(), "vigil-http-2");
  runtime.Stop();
  run.join();
}

TEST(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  for (int i = 0; i < 3; ++i) {
    auto res = c.RoundTrip(Get("/hello/ada"));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), R"({"hello":"ada"})");
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res["X-Request-Id"].size(), 26u) << "a generated ULID";
  }
}

TEST(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  c.Send(Get("/hello/a") + Get("/hello/b") + Get("/hello/c"));
  EXPECT_EQ(c.Read().body(), R"({"hello":"a"})");
  EXPECT_EQ(c.Read().body(), R"({"hello":"b"})");
  EXPECT_EQ(c.Read().body(), R"({"hello":"c"})");
}

TEST(ServerTest, WellFormedRequestIdIsKeptAndBadOneReplaced) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  EXPECT_EQ(c.RoundTrip(Get("/hello/x", "X-Request-Id: abc-123\r\n"))["X-Request-Id"], "abc-123");
  auto replaced = c.RoundTrip(Get("/hello/x", "X-Request-Id: has space\r\n"));
  EXPECT_NE(replaced["X-Request-Id"], "has space");
  EXPECT_EQ(replaced["X-Request-Id"].size(), 26u);
}

TEST(ServerTest, BufferedBodiesWithLengthAndChunked) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  EXPECT_EQ(c.RoundTrip("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello").body(),
            "got 5 bytes");
  EXPECT_EQ(c.RoundTrip("PUT /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
                .body(),
            "got 7 bytes");
}

TEST(ServerTest, ExpectContinueIsAnswered) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  c.Send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.Read();
  EXPECT_EQ(interim.result_int(), 100u);
  c.Send("abc");
  EXPECT_EQ(c.Read().body(), "got 3 bytes");
}

TEST(ServerTest, StreamedRequestAndChunkedResponse) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  std::string body(100000, 'x');
  auto res = c.RoundTrip("POST /stream HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + body);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "counted 100000");
  EXPECT_TRUE(res.chunked());
  EXPECT_FALSE(res["X-Request-Id"].empty()) << "middleware fields join a streamed head";
  // The connection stays usable.
  EXPECT_EQ(c.RoundTrip(Get("/hello/z")).result_int(), 200u);
}

TEST(ServerTest, RoutingErrors) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  auto not_found = c.RoundTrip(Get("/nowhere"));
  EXPECT_EQ(not_found.result_int(), 404u);
  EXPECT_EQ(not_found[boost::beast::http::field::content_type], "application/problem+json");
  auto not_allowed = c.RoundTrip("DELETE /body HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(not_allowed.result_int(), 405u);
  EXPECT_EQ(not_allowed[boost::beast::http::field::allow], "POST, PUT");
  // A method outside the registry: the client's mistake (4xx), never a handler's input.
  auto unknown = c.RoundTrip("BREW /hello/x HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(unknown.result_int(), 405u);
  EXPECT_EQ(unknown[boost::beast::http::field::allow], "GET, HEAD");
  EXPECT_EQ(c.RoundTrip("BREW /nowhere HTTP/1.1\r\nHost: t\r\n\r\n").result_int(), 404u);
}

TEST(ServerTest, ExceptionsBecomeProblemsWithoutInternals) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  auto crash = c.RoundTrip(Get("/throw", "X-Request-Id: req-1\r\n"));
  EXPECT_EQ(crash.result_int(), 500u);
  EXPECT_EQ(crash.body().find("hunter2"), std::string::npos) << crash.body();
  EXPECT_NE(crash.body().find(R"("request_id":"req-1")"), std::string::npos) << crash.body();
  EXPECT_NE(crash.body().find(R"("status":500)"), std::string::npos);

  auto invalid = c.RoundTrip(Get("/teapot"));
  EXPECT_EQ(invalid.result_int(), 422u);
  EXPECT_NE(invalid.body().find("name: must not be empty"), std::string::npos);

  auto bare = c.RoundTrip(Get("/bare-error"));
  EXPECT_EQ(bare.result_int(), 503u);
  EXPECT_EQ(bare[boost::beast::http::field::content_type], "application/problem+json");

  // The exception's message is in the error log line, with the request id.
  bool logged = false;
  for (const auto& line : f.LogLines()) {
    if (line.find("\"unhandled exception\"") != std::string::npos &&
        line.find("hunter2") != std::string::npos && line.find("req-1") != std::string::npos) {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
}

TEST(ServerTest, OneAccessLogLinePerRequestWithLevelsByStatus) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  c.RoundTrip(Get("/hello/x"));
  c.RoundTrip(Get("/nowhere"));
  c.RoundTrip(Get("/bare-error"));
  std::vector<std::string> access;
  for (const auto& line : f.LogLines()) {
    if (line.find("\"request completed\"") != std::string::npos) access.push_back(line);
  }
  ASSERT_EQ(access.size(), 3u);
  EXPECT_NE(access[0].find(R"("level":"info")"), std::string::npos);
  EXPECT_NE(access[0].find(R"("http.route":"/hello/{name}")"), std::string::npos);
  EXPECT_NE(access[1].find(R"("level":"warn")"), std::string::npos);
  EXPECT_NE(access[2].find(R"("level":"error")"), std::string::npos);
  for (const auto& line : access) {
    EXPECT_NE(line.find("\"trace_id\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"request_id\""), std::string::npos) << line;
  }
}

TEST(ServerTest, MetricsUseTheRouteTemplate) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient c(s.port());
  c.RoundTrip(Get("/hello/one"));
  c.RoundTrip(Get("/hello/two"));
  const std::string text = f.telemetry.Metrics();
  EXPECT_NE(text.find(R"(http_server_request_duration_seconds_count{http_request_method="GET",http_route="/hello/{name}",http_response_status_code="200"} 2)"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("/hello/one"), std::string::npos);
}

TEST(ServerTest, LimitsAnswerWithTheirStatusAndClose) {
  FullPipeline f;
  ServerOptions o;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 10;
  RunningServer s(TestRoutes(), f.Make(), o);
  {
    RawClient c(s.port());
    auto res = c.RoundTrip(Get("/hello/x", "X-Big: " + std::string(2000, 'a') + "\r\n"));
    EXPECT_EQ(res.result_int(), 431u);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    // A target that alone crosses the limit is named as such.
    RawClient c(s.port());
    auto res = c.RoundTrip(Get("/hello/" + std::string(2000, 'a')));
    EXPECT_EQ(res.result_int(), 414u);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(s.port());
    auto res = c.RoundTrip("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n");
    EXPECT_EQ(res.result_int(), 413u);
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(s.port());
    auto res = c.RoundTrip("POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n");
    EXPECT_EQ(res.result_int(), 413u);
  }
  {
    RawClient c(s.port());
    auto res = c.RoundTrip("GET /hello/x HTTP/1.1\r\nHost t\r\n\r\n");
    EXPECT_EQ(res.result_int(), 400u);
    EXPECT_TRUE(c.ClosedByServer());
  }
  RawClient c(s.port());
  EXPECT_EQ(c.RoundTrip(Get("/hello/still")).result_int(), 200u);
}

TEST(ServerTest, SlowHeadersGet408AndIdleConnectionsClose) {
  FullPipeline f;
  ServerOptions o;
  o.header_timeout = std::chrono::milliseconds(200);
  o.idle_timeout = std::chrono::milliseconds(200);
  RunningServer s(TestRoutes(), f.Make(), o);
  {
    RawClient c(s.port());
    c.Send("GET /hello/x HTTP/1.1\r\nHo");
    auto res = c.Read();  // the server gives up first
    EXPECT_EQ(res.result_int(), 408u);
  }
  {
    RawClient c(s.port());
    EXPECT_EQ(c.RoundTrip(Get("/hello/x")).result_int(), 200u);
    EXPECT_TRUE(c.ClosedByServer()) << "idle keep-alive connection closed without a response";
  }
}

TEST(ServerTest, ConnectionCapAppliesBackPressure) {
  FullPipeline f;
  ServerOptions o;
  o.max_connections = 2;
  RunningServer s(TestRoutes(), f.Make(), o);
  auto a = std::make_unique<RawClient>(s.port());
  RawClient b(s.port());
  EXPECT_EQ(a->RoundTrip(Get("/hello/a")).result_int(), 200u);
  EXPECT_EQ(b.RoundTrip(Get("/hello/b")).result_int(), 200u);
  // A third connection completes its TCP handshake (the kernel's backlog) but is not
  // served until one of the two closes.
  RawClient third(s.port());
  third.Send(Get("/hello/c"));
  third.socket().non_blocking(true);
  char byte;
  boost::system::error_code ec;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // time passing is the test
  third.socket().read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::would_block);
  third.socket().non_blocking(false);
  EXPECT_EQ(s.server().connections(), 2u);
  a.reset();
  EXPECT_EQ(third.Read().result_int(), 200u);
}

TEST(ServerTest, ShutdownLetsInFlightRequestsFinish) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient busy(s.port());
  RawClient idle(s.port());
  EXPECT_EQ(idle.RoundTrip(Get("/hello/x")).result_int(), 200u);
  busy.Send(Get("/sleep"));
  // Wait until the server has the request (the connection is busy, not idle).
  ASSERT_TRUE(test_support::Eventually([&] { return s.server().connections() >= 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto drained = s.Shutdown(std::chrono::milliseconds(5000));
  auto res = busy.Read();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "slept");
  EXPECT_FALSE(res.keep_alive()) << "the last response announces the close";
  EXPECT_TRUE(idle.ClosedByServer());
  EXPECT_EQ(drained.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_THROW(RawClient late(s.port()), boost::system::system_error);
}

TEST(ServerTest, ShutdownDeadlineCutsWhatRemains) {
  FullPipeline f;
  RunningServer s(TestRoutes(), f.Make());
  RawClient slow_body(s.port());
  slow_body.Send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab");  // never completes
  RawClient slow_handler(s.port());
  slow_handler.Send(Get("/long"));
  ASSERT_TRUE(test_support::Eventually([&] { return s.server().connections() >= 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto start = std::chrono::steady_clock::now();
  auto drained = s.Shutdown(std::chrono::milliseconds(20));
  ASSERT_EQ(drained.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  // The handler's 5 s sleep was cancelled at the deadline rather than awaited.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(slow_handler.ClosedByServer());
  int cut = 0;
  for (const auto& line : f.LogLines()) {
    if (line.find("\"request completed\"") != std::string::npos &&
        line.find(R"("error.type":"shutdown")") != std::string::npos) {
      ++cut;
    }
  }
  EXPECT_EQ(cut, 1) << "the cut request still has its access-log line";
}

TEST(ProblemJsonTest, CarriesIdsAndEscapes) {
  telemetry::RequestContext ctx = telemetry::RequestContext::NewRoot();
  ctx.request_id = *telemetry::RequestId::FromString("r-1");
  const std::string body = ProblemJson(404, "no \"item\"\n", "about:blank", ctx);
  EXPECT_EQ(body, R"({"type":"about:blank","title":"Not Found","status":404,"detail":"no \"item\"\n","request_id":"r-1","trace_id":")" +
                      ctx.span.trace_id.ToHex() + "\"}");
  EXPECT_EQ(ReasonPhrase(429), "Too Many Requests");
  EXPECT_EQ(ReasonPhrase(590), "Error");
}

TEST(PipelineTest, HooksRunInOrderAndUnwindInReverse) {
  struct Recorder final : Middleware {
    Recorder(std::vector<std::string>& log, std::string name, bool answer = false)
        : log_(log), name_(std::move(name)), answer_(answer) {}
    void Before(Exchange& ex) override {
      log_.push_back(name_ + ".before");
      if (answer_ && !ex.responded()) ex.Respond(429, "slow down", "text/plain");
    }
    void After(Exchange&) noexcept override { log_.push_back(name_ + ".after"); }
    std::vector<std::string>& log_;
    std::string name_;
    bool answer_;
  };
  std::vector<std::string> order;
  std::mutex mu;
  std::atomic<int> handler_calls{0};
  Pipeline p;
  p.Add<Recorder>(order, "a");
  p.Add<Recorder>(order, "b", true);
  p.Add<Recorder>(order, "c");
  Routes r;
  r.Add("GET", "/x", [&](Exchange&) -> asio::awaitable<void> {
    ++handler_calls;
    co_return;
  });
  RunningServer s(std::move(r), std::move(p));
  RawClient c(s.port());
  auto res = c.RoundTrip(Get("/x"));
  EXPECT_EQ(res.result_int(), 429u);
  EXPECT_EQ(handler_calls.load(), 0) << "an answer in Before skips the handler";
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"a.before", "b.before", "c.before", "c.after",
                                             "b.after", "a.after"}));
}

TEST(ServerTest, ReplacedRoutesServeTheRequestsThatFollowOnTheSameConnection) {
  Routes r;
  r.Add("GET", "/old", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, "old", "text/plain");
    co_return;
  });
  RunningServer s(std::move(r), Pipeline{});
  RawClient c(s.port());
  EXPECT_EQ(c.RoundTrip(Get("/old")).body(), "old");
  Routes next;
  next.Add("GET", "/new", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, "new", "text/plain");
    co_return;
  });
  s.server().ReplaceRoutes(std::move(next));
  EXPECT_EQ(c.RoundTrip(Get("/new")).body(), "new");
  EXPECT_EQ(c.RoundTrip(Get("/old")).result_int(), 404u);
  EXPECT_EQ(s.server().routes().entries().size(), 1u);
}

TEST(PipelineTest, AWaitingMiddlewareIsAwaitedInItsPlace) {
  // Decides after a timer, as a middleware waiting on a shared store does: the next
  // middleware and the handler run only once it has decided.
  struct Waiter final : Middleware {
    explicit Waiter(std::vector<std::string>& log) : log_(log) {}
    bool waits() const noexcept override { return true; }
    void Before(Exchange&) override { log_.push_back("waiter.sync"); }
    asio::awaitable<void> BeforeAsync(Exchange& ex) override {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
      co_await t.async_wait(asio::use_awaitable);
      log_.push_back("waiter.before");
      if (ex.path() == "/refused") ex.Respond(429, "slow down", "text/plain");
    }
    void After(Exchange&) noexcept override { log_.push_back("waiter.after"); }
    std::vector<std::string>& log_;
  };
  struct Plain final : Middleware {
    explicit Plain(std::vector<std::string>& log) : log_(log) {}
    void Before(Exchange&) override { log_.push_back("plain.before"); }
    void After(Exchange&) noexcept override { log_.push_back("plain.after"); }
    std::vector<std::string>& log_;
  };
  std::vector<std::string> order;
  Pipeline p;
  p.Add<Waiter>(order);
  p.Add<Plain>(order);
  Routes r;
  const auto handler = [&](Exchange& ex) -> asio::awaitable<void> {
    order.push_back("handler");
    ex.Respond(200, "ok", "text/plain");
    co_return;
  };
  r.Add("GET", "/x", handler);
  r.Add("GET", "/refused", handler);
  RunningServer s(std::move(r), std::move(p));  // one worker: the log needs no lock
  RawClient c(s.port());
  EXPECT_EQ(c.RoundTrip(Get("/x")).result_int(), 200u);
  EXPECT_EQ(c.RoundTrip(Get("/refused")).result_int(), 429u);
  EXPECT_EQ(order, (std::vector<std::string>{"waiter.before", "plain.before", "handler",
                                             "plain.after", "waiter.after", "waiter.before",
                                             "plain.before", "plain.after", "waiter.after"}));
}

}  // namespace
}  // namespace vigil::http

// Cross-origin requests on a real server: preflights answered by the middleware, the
// fields of allowed origins, nothing for the others, and Vary: Origin on every answer to
// a request that named an origin.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vigil/http/middleware/cors.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::http {
namespace {

using test_support::Has;
using test_support::RawClient;
using test_support::RunningServer;

constexpr std::string_view kShop = "https://shop.example.com";

struct Fixture {
  Fixture() : server(MakeRoutes(), MakePipeline()) {}

  Routes MakeRoutes() {
    Routes r;
    r.Add("*", "/api/*", [this](Exchange& ex) -> asio::awaitable<void> {
      ++handled;
      ex.RespondJson(200, R"({"ok":true})");
      co_return;
    });
    return r;
  }
  Pipeline MakePipeline() {
    CorsOptions options;
    options.allowed_origins = {std::string(kShop), "http://localhost:5173"};
    Pipeline p;
    p.Add<ErrorMiddleware>(telemetry->log());
    p.Add<CorsMiddleware>(options);
    return p;
  }
  test_support::ClientResponse Call(std::string_view method, std::string_view target,
                                    std::string_view fields) {
    RawClient c(server.port());
    return c.RoundTrip(std::string(method) + " " + std::string(target) +
                       " HTTP/1.1\r\nHost: t\r\n" + std::string(fields) + "\r\n");
  }

  test_support::TestTelemetry telemetry{"cors-test"};
  std::atomic<int> handled{0};
  RunningServer server;
};

TEST(CorsTest, APreflightFromAnAllowedOriginIsAnsweredHere) {
  Fixture f;
  const auto res = f.Call("OPTIONS", "/api/orders",
                          "Origin: https://shop.example.com\r\n"
                          "Access-Control-Request-Method: POST\r\n"
                          "Access-Control-Request-Headers: content-type, authorization, "
                          "idempotency-key, traceparent, tracestate, baggage\r\n");
  EXPECT_EQ(res.result_int(), 204u);
  EXPECT_EQ(res["Access-Control-Allow-Origin"], kShop);
  EXPECT_TRUE(Has(res["Access-Control-Allow-Methods"], "POST"));
  EXPECT_TRUE(Has(res["Access-Control-Allow-Headers"], "Authorization"));
  EXPECT_TRUE(Has(res["Access-Control-Allow-Headers"], "Idempotency-Key"));
  EXPECT_EQ(res["Access-Control-Max-Age"], "600");
  EXPECT_EQ(res["Access-Control-Allow-Credentials"], "true");
  EXPECT_EQ(res["Vary"], "Origin");
  EXPECT_EQ(res["Content-Type"], "");
  EXPECT_EQ(f.handled.load(), 0) << "no handler runs for a preflight";
}

TEST(CorsTest, AnAllowedOriginsRequestMayReadTheAnswerAndItsFields) {
  Fixture f;
  const auto res = f.Call("GET", "/api/items", "Origin: http://localhost:5173\r\n");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res["Access-Control-Allow-Origin"], "http://localhost:5173");
  EXPECT_EQ(res["Access-Control-Allow-Credentials"], "true");
  const std::string exposed(res["Access-Control-Expose-Headers"]);
  for (const char* name :
       {"X-Request-Id", "Retry-After", "RateLimit", "RateLimit-Policy", "ETag"}) {
    EXPECT_TRUE(Has(exposed, name)) << name << " in " << exposed;
  }
  EXPECT_EQ(res["Vary"], "Origin");
}

TEST(CorsTest, OtherOriginsGetNoCorsFieldAndTheirPreflightsA403) {
  Fixture f;
  // Near misses: another scheme, a subdomain, a trailing slash, a port, "null".
  for (const char* origin :
       {"http://shop.example.com", "https://evil.shop.example.com", "https://shop.example.com/",
        "https://shop.example.com:8443", "null"}) {
    const std::string field = std::string("Origin: ") + origin + "\r\n";
    const auto res = f.Call("GET", "/api/items", field);
    EXPECT_EQ(res.result_int(), 200u) << origin;
    EXPECT_EQ(res["Access-Control-Allow-Origin"], "") << origin;
    EXPECT_EQ(res["Access-Control-Allow-Credentials"], "") << origin;
    EXPECT_EQ(res["Vary"], "Origin") << origin;
    const auto preflight =
        f.Call("OPTIONS", "/api/items", field + "Access-Control-Request-Method: GET\r\n");
    EXPECT_EQ(preflight.result_int(), 403u) << origin;
    EXPECT_EQ(preflight["Content-Type"], "application/problem+json");
    EXPECT_EQ(preflight["Access-Control-Allow-Origin"], "") << origin;
  }
  // Two Origin fields are no origin at all.
  const auto twice = f.Call("GET", "/api/items",
                            "Origin: https://shop.example.com\r\nOrigin: https://x.example\r\n");
  EXPECT_EQ(twice["Access-Control-Allow-Origin"], "");
}

TEST(CorsTest, APreflightForAMethodOrHeaderNotAllowedIs403NamingIt) {
  Fixture f;
  const std::string origin = "Origin: https://shop.example.com\r\n";
  auto res = f.Call("OPTIONS", "/api/items", origin + "Access-Control-Request-Method: TRACE\r\n");
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_TRUE(Has(res.body(), "TRACE")) << res.body();
  res = f.Call("OPTIONS", "/api/items",
               origin +
                   "Access-Control-Request-Method: GET\r\n"
                   "Access-Control-Request-Headers: content-type, x-secret\r\n");
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_TRUE(Has(res.body(), "x-secret")) << res.body();
}

TEST(CorsTest, RequestsWithoutOriginAreUntouched) {
  Fixture f;
  const auto res = f.Call("GET", "/api/items", "");
  EXPECT_EQ(res["Vary"], "");
  EXPECT_EQ(res["Access-Control-Allow-Origin"], "");
  // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: routed as usual.
  EXPECT_EQ(f.Call("OPTIONS", "/api/items", "Origin: https://shop.example.com\r\n").result_int(),
            200u);
}

}  // namespace
}  // namespace vigil::http

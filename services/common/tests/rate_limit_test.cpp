// The rate-limit middleware on a real server: the answer's fields, 429s, whose address and
// which user a key is made of, reloads, and a handler's own decisions (Admit).
#include <gtest/gtest.h>

#include <string>
#include <vigil/http/middleware/access_log.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/rate_limit.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::service {
namespace {

namespace rl = vigil::ratelimit;
using test_support::Has;
using test_support::RawClient;
using test_support::RunningServer;

const std::string kSecret(32, 's');

std::string Request(std::string_view method, std::string_view path, std::string_view fields = "") {
  return std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" +
         std::string(fields) + "Content-Length: 0\r\n\r\n";
}

struct Fixture {
  explicit Fixture(std::string_view limits)
      : identity(kSecret),
        limiter(rl::ParseLimits(limits, "test"), *telemetry),
        server(Routes(), MakePipeline(), {}, 1) {}

  http::Pipeline MakePipeline() {
    http::Pipeline p;
    p.Add<http::AccessLogMiddleware>(telemetry->log());
    p.Add<http::ErrorMiddleware>(telemetry->log());
    p.Add<RateLimitMiddleware>(limiter, &identity);
    return p;
  }

  http::Routes Routes() {
    http::Routes r;
    r.Add("*", "/api/*", [](http::Exchange& ex) -> boost::asio::awaitable<void> {
      ex.Respond(200, "ok", "text/plain");
      co_return;
    });
    r.Add("POST", "/login", [this](http::Exchange& ex) -> boost::asio::awaitable<void> {
      const std::string_view account[] = {ex.header("x-account")};
      if (!co_await Admit(ex, limiter, "per-account", account)) co_return;
      ex.Respond(200, "welcome", "text/plain");
    });
    return r;
  }

  test_support::ClientResponse Call(std::string_view method, std::string_view path,
                                    std::string_view fields = "") {
    RawClient c(server.port());
    return c.RoundTrip(Request(method, path, fields));
  }

  test_support::TestTelemetry telemetry{"ratelimit-test"};
  IdentitySigner identity;
  rl::Limiter limiter;
  RunningServer server;
};

constexpr std::string_view kPerAddress = R"({"policies": [
  {"name": "per-address", "key": ["client_address"], "quota": 3, "window_s": 60,
   "match": [{"prefix": "/api"}]}]})";

TEST(RateLimitMiddlewareTest, AllowedAnswersCarryTheFieldsThenA429Explains) {
  Fixture f(kPerAddress);
  for (int i = 0; i < 3; ++i) {
    const auto res = f.Call("GET", "/api/items");
    ASSERT_EQ(res.result_int(), 200U) << i;
    EXPECT_EQ(res["RateLimit-Policy"], "\"per-address\";q=3;w=60");
    EXPECT_EQ(res["RateLimit"],
              "\"per-address\";r=" + std::to_string(2 - i) + ";t=" + std::to_string(20 * (i + 1)));
  }
  const auto refused = f.Call("GET", "/api/items");
  EXPECT_EQ(refused.result_int(), 429U);
  EXPECT_EQ(refused["Content-Type"], "application/problem+json");
  EXPECT_EQ(refused["Retry-After"], "20");
  EXPECT_EQ(refused["RateLimit"], "\"per-address\";r=0;t=20");
  EXPECT_EQ(refused["RateLimit-Policy"], "\"per-address\";q=3;w=60");
  EXPECT_TRUE(Has(refused.body(), "\"type\":\"urn:vigil:problem:quota-exceeded\""))
      << refused.body();
  EXPECT_TRUE(Has(refused.body(), "per-address")) << refused.body();
  // Routes no policy matches carry no fields.
  const auto other = f.Call("POST", "/login", "X-Account: a\r\n");
  EXPECT_EQ(other["RateLimit-Policy"], "");
  const std::string logs = f.telemetry.Logs();
  EXPECT_TRUE(Has(logs, "\"vigil.ratelimit.policy\":\"per-address\"")) << logs;
  const std::string metrics = f.telemetry.Metrics();
  EXPECT_TRUE(Has(metrics,
                  "vigil_ratelimit_decisions_total{policy=\"per-address\",decision="
                  "\"allowed\",store=\"memory\"} 3"))
      << metrics;
  EXPECT_TRUE(Has(metrics,
                  "vigil_ratelimit_decisions_total{policy=\"per-address\",decision="
                  "\"limited\",store=\"memory\"} 1"))
      << metrics;
}

TEST(RateLimitMiddlewareTest, EveryPolicyMustAllowAndTheClosestToItsLimitIsReported) {
  Fixture f(R"({"policies": [
    {"name": "wide", "key": ["client_address"], "quota": 100, "window_s": 60,
     "match": [{"prefix": "/api"}]},
    {"name": "narrow", "key": ["route"], "quota": 2, "window_s": 10,
     "match": [{"prefix": "/api/narrow"}]}]})");
  auto res = f.Call("GET", "/api/narrow");
  EXPECT_EQ(res["RateLimit-Policy"], "\"wide\";q=100;w=60, \"narrow\";q=2;w=10");
  EXPECT_EQ(res["RateLimit"], "\"narrow\";r=1;t=5");
  res = f.Call("GET", "/api/wide");
  EXPECT_EQ(res["RateLimit"], "\"wide\";r=98;t=2");
  f.Call("GET", "/api/narrow");
  res = f.Call("GET", "/api/narrow");
  EXPECT_EQ(res.result_int(), 429U);
  EXPECT_EQ(res["RateLimit-Policy"], "\"narrow\";q=2;w=10");
  EXPECT_EQ(f.Call("GET", "/api/wide").result_int(), 200U);
}

TEST(RateLimitMiddlewareTest, OnlyTheGatewaysSignatureOrATrustedProxyNamesTheClient) {
  Fixture f(R"({"policies": [{"name": "one", "key": ["client_address"], "quota": 1,
     "window_s": 60, "match": [{"prefix": "/api"}]}]})");
  const std::string signed_a =
      std::string(kClientHeader) + ": " + f.identity.Sign("client:1.1.1.1") + "\r\n";
  const std::string signed_b =
      std::string(kClientHeader) + ": " + f.identity.Sign("client:2.2.2.2") + "\r\n";
  EXPECT_EQ(f.Call("GET", "/api/x", signed_a).result_int(), 200U);
  EXPECT_EQ(f.Call("GET", "/api/x", signed_a).result_int(), 429U);
  EXPECT_EQ(f.Call("GET", "/api/x", signed_b).result_int(), 200U) << "another client";
  // Forged or signed for another purpose: the address is unknown, so a policy keyed on
  // it does not count the request (rather than count every client as the gateway).
  for (int i = 0; i < 3; ++i) {
    const auto forged =
        f.Call("GET", "/api/x", "X-Vigil-Client: v1.client:3.3.3.3.9999999999.00\r\n");
    EXPECT_EQ(forged.result_int(), 200U);
    EXPECT_EQ(forged["RateLimit"], "");
  }
  const std::string as_user =
      std::string(kClientHeader) + ": " + f.identity.Sign("user:4.4.4.4") + "\r\n";
  EXPECT_EQ(f.Call("GET", "/api/x", as_user)["RateLimit"], "");
  // Without the header, the peer is the client, and X-Forwarded-For from a peer that is
  // not a trusted proxy changes nothing.
  EXPECT_EQ(f.Call("GET", "/api/x").result_int(), 200U);
  EXPECT_EQ(f.Call("GET", "/api/x", "X-Forwarded-For: 5.5.5.5\r\n").result_int(), 429U);
}

TEST(RateLimitMiddlewareTest, ATrustedProxysForwardedForIsTheClient) {
  Fixture f(R"({"trusted_proxies": ["127.0.0.0/8"], "policies": [{"name": "one",
     "key": ["client_address"], "quota": 1, "window_s": 60, "match": [{"prefix": "/api"}]}]})");
  EXPECT_EQ(f.Call("GET", "/api/x", "X-Forwarded-For: 5.5.5.5\r\n").result_int(), 200U);
  EXPECT_EQ(f.Call("GET", "/api/x", "X-Forwarded-For: 5.5.5.5\r\n").result_int(), 429U);
  EXPECT_EQ(f.Call("GET", "/api/x", "X-Forwarded-For: 6.6.6.6\r\n").result_int(), 200U);
  EXPECT_EQ(f.Call("GET", "/api/x", "X-Forwarded-For: 6.6.6.6, 5.5.5.5\r\n").result_int(), 429U)
      << "the right-most untrusted address is the client";
}

TEST(RateLimitMiddlewareTest, UserKeysComeFromAVerifiedIdentityOnly) {
  Fixture f(R"({"policies": [{"name": "per-user", "key": ["user"], "quota": 1,
     "window_s": 60, "match": [{"prefix": "/api", "methods": ["POST"]}]}]})");
  const std::string alice =
      std::string(kIdentityHeader) + ": " + f.identity.Sign("user:alice") + "\r\n";
  const std::string bob =
      std::string(kIdentityHeader) + ": " + f.identity.Sign("user:bob") + "\r\n";
  EXPECT_EQ(f.Call("POST", "/api/orders", alice).result_int(), 200U);
  EXPECT_EQ(f.Call("POST", "/api/orders", alice).result_int(), 429U);
  EXPECT_EQ(f.Call("POST", "/api/orders", bob).result_int(), 200U);
  EXPECT_EQ(f.Call("GET", "/api/orders", alice).result_int(), 200U) << "another method";
  // No identity (or a forged one): the policy does not apply; the handler decides.
  EXPECT_EQ(f.Call("POST", "/api/orders").result_int(), 200U);
  EXPECT_EQ(f.Call("POST", "/api/orders", "X-Vigil-Identity: v1.user:alice.1.00\r\n").result_int(),
            200U);
}

TEST(RateLimitMiddlewareTest, AHandlerDecidesOnItsOwnKey) {
  Fixture f(
      R"({"policies": [{"name": "per-account", "key": ["user"], "quota": 2, "window_s": 60}]})");
  EXPECT_EQ(f.Call("POST", "/login", "X-Account: a@x\r\n").result_int(), 200U);
  const auto second = f.Call("POST", "/login", "X-Account: a@x\r\n");
  EXPECT_EQ(second.result_int(), 200U);
  EXPECT_EQ(second["RateLimit"], "\"per-account\";r=0;t=60");
  const auto third = f.Call("POST", "/login", "X-Account: a@x\r\n");
  EXPECT_EQ(third.result_int(), 429U);
  EXPECT_EQ(third["Retry-After"], "30");
  EXPECT_EQ(f.Call("POST", "/login", "X-Account: b@x\r\n").result_int(), 200U);
}

TEST(RateLimitMiddlewareTest, AReloadAppliesNewLimitsAndKeepsTheCountersOfKeptPolicies) {
  Fixture f(kPerAddress);
  EXPECT_EQ(f.Call("GET", "/api/x").result_int(), 200U);
  EXPECT_EQ(f.Call("GET", "/api/x").result_int(), 200U);
  // The same policy, now 4 a minute: the 40 s of quota the two requests took stay taken,
  // so one more request (15 s) fits in the minute, not three.
  f.limiter.Reload(rl::ParseLimits(R"({"policies": [{"name": "per-address",
     "key": ["client_address"], "quota": 4, "window_s": 60, "match": [{"prefix": "/api"}]}]})",
                                   "reload"));
  EXPECT_EQ(f.Call("GET", "/api/x")["RateLimit"], "\"per-address\";r=0;t=55");
  EXPECT_EQ(f.Call("GET", "/api/x").result_int(), 429U);
  // Removed: no limit, no fields.
  f.limiter.Reload(rl::ParseLimits(R"({"policies": []})", "reload"));
  const auto free = f.Call("GET", "/api/x");
  EXPECT_EQ(free.result_int(), 200U);
  EXPECT_EQ(free["RateLimit"], "");
}

}  // namespace
}  // namespace vigil::service

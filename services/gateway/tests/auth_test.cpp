// The gateway's authentication in one process: a JWKS server standing in for auth's key
// endpoint, an upstream that reports the identity it received, and the gateway between.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <vigil/service/identity.hpp>
#include <vigil/service/jwt.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/pipeline.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>

#include "auth.hpp"
#include "proxy.hpp"

namespace vigil::gateway {
namespace {

namespace tel = vigil::telemetry;
using http::Exchange;
using test_support::RawClient;
using test_support::RunningServer;

constexpr std::string_view kSecret = "a-test-secret-that-is-long-enough-0123";

std::int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What auth publishes: a key set the test can rotate, and how often it was asked.
struct KeyServer {
  std::mutex mu;
  service::KeySet keys;
  int requests = 0;
  void Add(const service::SigningKey& key) {
    std::lock_guard lock(mu);
    keys.Add(service::VerificationKey::From(key));
  }
  http::Routes Routes() {
    http::Routes r;
    r.Add("GET", "/.well-known/jwks.json", [this](Exchange& ex) -> asio::awaitable<void> {
      std::lock_guard lock(mu);
      ++requests;
      ex.RespondJson(200, keys.ToJwks());
      co_return;
    });
    return r;
  }
};

struct Upstream {
  std::atomic<int> requests{0};
  http::Routes Routes() {
    http::Routes r;
    r.Add("*", "/*", [this](Exchange& ex) -> asio::awaitable<void> {
      ++requests;
      const std::string_view identity = ex.header(service::kIdentityHeader);
      ex.Respond(200, identity.empty() ? "anonymous" : std::string(identity), "text/plain");
      ex.response().set("X-Target", ex.target());
      co_return;
    });
    return r;
  }
};

service::IdentitySigner Signer() { return service::IdentitySigner{std::string(kSecret)}; }

// The gateway's parts, built on its runtime: the authenticator in front of the proxy.
struct GatewayParts {
  GatewayParts(http::Runtime& runtime, tel::Telemetry& telemetry, const GatewayConfig& config,
               const AuthOptions& options)
      : instruments(telemetry.metrics()),
        auth(runtime, telemetry, instruments, Signer(), options),
        identity(Signer()),
        limiter(config.limits, telemetry),
        proxy(runtime, config, telemetry, http::PoolOptions{}, identity, limiter, &auth) {
    auth.Start();
  }
  http::ClientInstruments instruments;
  Authenticator auth;
  service::IdentitySigner identity;
  ratelimit::Limiter limiter;
  Proxy proxy;
};

struct Fixture {
  explicit Fixture(bool jwks_reachable = true)
      : keys_server(key_server.Routes(), http::Pipeline{}, {}, 1),
        upstream_server(upstream.Routes(), http::Pipeline{}, {}, 1),
        telemetry(test_support::QuietTelemetry("gateway-test")),
        gateway(
            [this, jwks_reachable](http::Runtime& runtime, http::Routes& routes) {
              AuthOptions options;
              options.jwks_upstream = http::UpstreamAddress::Parse(
                  "http://127.0.0.1:" + std::to_string(jwks_reachable ? keys_server.port() : 1));
              options.min_refetch = std::chrono::milliseconds(0);
              const GatewayConfig config = ParseGatewayConfig(
                  R"({"routes":[{"prefix":"/api","upstream":"http://127.0.0.1:)" +
                      std::to_string(upstream_server.port()) + R"(/svc","strip_prefix":true}]})",
                  "test");
              auto parts = std::make_shared<GatewayParts>(runtime, telemetry, config, options);
              parts->proxy.AddRoutes(routes);
              auth = &parts->auth;
              return parts;
            },
            Pipeline(), http::ServerOptions{}, 1) {}

  // The pipeline vigil-gateway serves with (no compression: it streams bodies).
  http::Pipeline Pipeline() { return test_support::PlatformPipeline(telemetry, false); }

  // Waits for the authenticator's first key-set fetch (started at once by Start()).
  void AwaitKeys() {
    ASSERT_TRUE(test_support::Eventually([&] { return auth->fetches() > 0; }));
  }

  test_support::ClientResponse Get(std::string_view target, std::string_view headers = {}) {
    return gateway.RoundTrip("GET " + std::string(target) + " HTTP/1.1\r\nHost: gw\r\n" +
                             std::string(headers) + "\r\n");
  }

  KeyServer key_server;
  Upstream upstream;
  RunningServer keys_server;
  RunningServer upstream_server;
  tel::Telemetry telemetry;
  Authenticator* auth = nullptr;
  RunningServer gateway;
};

service::Claims ValidClaims(std::string subject = "u1") {
  service::Claims c;
  c.subject = std::move(subject);
  c.issuer = "vigil-auth";
  c.audience = "vigil";
  c.jwt_id = "j1";
  c.issued_at = Now();
  c.expires_at = Now() + 300;
  return c;
}

std::string Bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

TEST(GatewayAuthTest, AValidTokenReachesTheServiceAsASignedIdentity) {
  Fixture f;
  const auto key = service::SigningKey::Generate("k1");
  f.key_server.Add(key);
  f.AwaitKeys();
  auto res = f.Get("/api/orders", Bearer(service::SignJwt(ValidClaims("user-42"), key)));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  auto subject = Signer().Verify(res.body());
  ASSERT_TRUE(subject.has_value()) << res.body();
  EXPECT_EQ(*subject, "user:user-42");
}

TEST(GatewayAuthTest, AClientsOwnIdentityHeaderIsDropped) {
  Fixture f;
  f.AwaitKeys();
  const std::string forged = Signer().Sign("user:someone");  // even a validly signed one
  auto res = f.Get("/api/orders", "X-Vigil-Identity: " + forged + "\r\n");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "anonymous");
}

TEST(GatewayAuthTest, BadTokensAreAnswered401HereAndNeverForwarded) {
  Fixture f;
  const auto key = service::SigningKey::Generate("k1");
  const auto other = service::SigningKey::Generate("k1");  // same kid, another key
  f.key_server.Add(key);
  f.AwaitKeys();
  service::Claims expired = ValidClaims();
  expired.issued_at = Now() - 7200;
  expired.expires_at = Now() - 3600;
  service::Claims wrong_audience = ValidClaims();
  wrong_audience.audience = "someone-else";
  const std::string cases[] = {
      Bearer(service::SignJwt(expired, key)),
      Bearer(service::SignJwt(wrong_audience, key)),
      Bearer(service::SignJwt(ValidClaims(), other)),
      Bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9."),  // {"alg":"none"}
      Bearer("not-a-token"),
      "Authorization: Basic dXNlcjpwYXNz\r\n",
  };
  for (const auto& header : cases) {
    auto res = f.Get("/api/orders", header);
    EXPECT_EQ(res.result_int(), 401u) << header;
    EXPECT_EQ(res[boost::beast::http::field::www_authenticate], "Bearer error=\"invalid_token\"");
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/problem+json");
  }
  EXPECT_EQ(f.upstream.requests.load(), 0);
}

TEST(GatewayAuthTest, AKeyRotatedInAfterStartIsFetchedOnFirstUse) {
  Fixture f;
  f.key_server.Add(service::SigningKey::Generate("k1"));
  f.AwaitKeys();
  const int fetched = f.key_server.requests;
  const auto rotated = service::SigningKey::Generate("k2");
  f.key_server.Add(rotated);
  auto res = f.Get("/api/x", Bearer(service::SignJwt(ValidClaims(), rotated)));
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(f.key_server.requests, fetched + 1);
}

TEST(GatewayAuthTest, WithoutAnyKeySetTokensGet503NotAFalse401) {
  Fixture f(/*jwks_reachable=*/false);
  const auto key = service::SigningKey::Generate("k1");
  auto res = f.Get("/api/x", Bearer(service::SignJwt(ValidClaims(), key)));
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[boost::beast::http::field::retry_after], "5");
  // Anonymous requests still pass: the services decide what needs a caller.
  EXPECT_EQ(f.Get("/api/x").result_int(), 200u);
}

TEST(GatewayAuthTest, TheUpstreamUrlsPathIsPutInFrontOfTheForwardedPath) {
  Fixture f;
  EXPECT_EQ(f.Get("/api")["X-Target"], "/svc");
  EXPECT_EQ(f.Get("/api?q=1")["X-Target"], "/svc?q=1");
  EXPECT_EQ(f.Get("/api/orders/7?x=1")["X-Target"], "/svc/orders/7?x=1");
}

}  // namespace
}  // namespace vigil::gateway

// The security headers on a real server: on the handler's answers and on those the
// runtime writes itself (404, 405, 400, 431, 413, 500), on streamed heads, with a
// handler's own values kept (a service) or replaced (the gateway's mode), and never a
// Server or X-Powered-By field, nor Strict-Transport-Security over plain HTTP (tls_test
// sees it over TLS).
#include <gtest/gtest.h>

#include <string>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>

namespace vigil::http {
namespace {

using test_support::ClientResponse;
using test_support::RunningServer;

Routes MakeRoutes() {
  Routes r;
  r.Add("GET", "/plain", [](Exchange& ex) -> asio::awaitable<void> {
    ex.RespondJson(200, R"({"ok":true})");
    co_return;
  });
  // What an upstream relayed by the gateway, or a page handler, brings of its own.
  r.Add("GET", "/own", [](Exchange& ex) -> asio::awaitable<void> {
    ex.response().set(beast::http::field::cache_control, "no-cache");
    ex.response().set("Content-Security-Policy", "default-src 'self'");
    ex.response().set(beast::http::field::server, "upstream/1.0");
    ex.response().set("X-Powered-By", "PHP/5.0");
    ex.response().set(beast::http::field::strict_transport_security, "max-age=1");
    ex.RespondJson(200, "{}");
    co_return;
  });
  r.Add("GET", "/stream", [](Exchange& ex) -> asio::awaitable<void> {
    ResponseHeader head;
    head.result(200);
    head.set(beast::http::field::server, "upstream/1.0");
    head.set(beast::http::field::strict_transport_security, "max-age=1");
    head.set(beast::http::field::content_type, "text/plain");
    co_await ex.SendHead(head, std::nullopt);
    co_await ex.SendBody("abc", 3);
    co_await ex.Finish();
  });
  r.Add("GET", "/throw", [](Exchange&) -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  });
  r.Add("POST", "/plain", [](Exchange& ex) -> asio::awaitable<void> {
    ex.RespondJson(200, "{}");
    co_return;
  });
  return r;
}

struct Fixture {
  explicit Fixture(bool replace) : server(MakeRoutes(), MakePipeline(replace), Options()) {}

  Pipeline MakePipeline(bool replace) {
    SecurityHeadersOptions options;
    options.replace = replace;
    Pipeline p;
    p.Add<SecurityHeadersMiddleware>(options);
    p.Add<ErrorMiddleware>(telemetry->log());
    return p;
  }
  static ServerOptions Options() {
    ServerOptions o;
    o.max_header_bytes = 1024;
    o.max_body_bytes = 16;
    return o;
  }
  ClientResponse Call(std::string_view request) { return server.RoundTrip(request); }

  test_support::TestTelemetry telemetry{"security-headers-test"};
  RunningServer server;
};

// The set on a plain-HTTP answer: no Strict-Transport-Security, whoever set it.
void ExpectTheSet(const ClientResponse& res, std::string_view cache_control = "no-store") {
  SCOPED_TRACE(testing::Message() << "status " << res.result_int());
  EXPECT_EQ(res.count(beast::http::field::strict_transport_security), 0u);
  EXPECT_EQ(res["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(res["X-Frame-Options"], "DENY");
  EXPECT_EQ(res["Referrer-Policy"], "no-referrer");
  EXPECT_NE(res["Permissions-Policy"].find("camera=()"), std::string_view::npos);
  EXPECT_EQ(res["Cross-Origin-Opener-Policy"], "same-origin");
  EXPECT_EQ(res["Cross-Origin-Resource-Policy"], "same-origin");
  EXPECT_EQ(res["Cache-Control"], cache_control);
  EXPECT_EQ(res.count(beast::http::field::server), 0u);
  EXPECT_EQ(res.count("X-Powered-By"), 0u);
  EXPECT_EQ(res.count("Content-Security-Policy"), 1u);
  EXPECT_EQ(res.count("X-Frame-Options"), 1u);
}

constexpr std::string_view kApiPolicy = "default-src 'none'; frame-ancestors 'none'";

TEST(SecurityHeadersTest, EveryAnswerHasTheSetWhoeverWroteIt) {
  Fixture f(false);
  const std::string long_field = "X-Long: " + std::string(2000, 'a') + "\r\n";
  const std::pair<unsigned, std::string> cases[] = {
      {200, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"},
      {404, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"},
      {405, "DELETE /plain HTTP/1.1\r\nHost: t\r\n\r\n"},
      {400, "GET /plain HTTP/1.1\r\n\r\n"},  // no Host
      {431, "GET /plain HTTP/1.1\r\nHost: t\r\n" + long_field + "\r\n"},
      {413, "POST /plain HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"},
      {500, "GET /throw HTTP/1.1\r\nHost: t\r\n\r\n"},
  };
  for (const auto& [status, request] : cases) {
    const ClientResponse res = f.Call(request);
    EXPECT_EQ(res.result_int(), status) << request.substr(0, 40);
    ExpectTheSet(res);
    EXPECT_EQ(res["Content-Security-Policy"], kApiPolicy);
  }
}

TEST(SecurityHeadersTest, AServiceKeepsItsHandlersOwnValues) {
  Fixture f(false);
  const ClientResponse res = f.Call("GET /own HTTP/1.1\r\nHost: t\r\n\r\n");
  ExpectTheSet(res, "no-cache");
  EXPECT_EQ(res["Content-Security-Policy"], "default-src 'self'");
}

TEST(SecurityHeadersTest, TheGatewaysModeReplacesThemButCacheControl) {
  Fixture f(true);
  const ClientResponse res = f.Call("GET /own HTTP/1.1\r\nHost: t\r\n\r\n");
  ExpectTheSet(res, "no-cache");
  EXPECT_EQ(res["Content-Security-Policy"], kApiPolicy);
}

TEST(SecurityHeadersTest, AStreamedHeadHasTheSetToo) {
  for (const bool replace : {false, true}) {
    Fixture f(replace);
    const ClientResponse res = f.Call("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "abc");
    ExpectTheSet(res);
  }
}

TEST(SecurityHeadersTest, AnEmptyValueLeavesTheFieldOut) {
  SecurityHeadersOptions options;
  options.strict_transport_security.clear();
  const FieldBlock block = SecurityHeaders(options);
  EXPECT_EQ(block.Find("Strict-Transport-Security"), -1);
  EXPECT_GE(block.Find("X-Frame-Options"), 0);
  options.content_security_policy = "default-src 'self'\r\nSet-Cookie: x=1";
  EXPECT_THROW(SecurityHeaders(options), std::invalid_argument);
}

// The choice the middleware makes per exchange: the TLS block has the field, the plain
// one drops a response's own, in both modes.
TEST(SecurityHeadersTest, StrictTransportSecurityIsForTlsOnly) {
  for (const bool replace : {false, true}) {
    SCOPED_TRACE(testing::Message() << "replace " << replace);
    const SecurityHeaderFields fields(SecurityHeadersOptions{.replace = replace});
    ResponseHeader head;
    fields.For(false).ApplyTo(head);
    EXPECT_EQ(head.count(beast::http::field::strict_transport_security), 0u);
    EXPECT_EQ(head["X-Frame-Options"], "DENY");
    head.set(beast::http::field::strict_transport_security, "max-age=1");
    fields.For(false).ApplyTo(head);
    EXPECT_EQ(head.count(beast::http::field::strict_transport_security), 0u);

    head.set(beast::http::field::strict_transport_security, "max-age=1");
    fields.For(true).ApplyTo(head);
    EXPECT_EQ(head[beast::http::field::strict_transport_security],
              replace ? "max-age=63072000; includeSubDomains" : "max-age=1");
    head.erase(beast::http::field::strict_transport_security);
    fields.For(true).ApplyTo(head);
    EXPECT_EQ(head[beast::http::field::strict_transport_security],
              "max-age=63072000; includeSubDomains");
  }
  // The TLS block is the one SecurityHeaders lays out.
  std::string tls;
  std::string laid_out;
  SecurityHeaderFields({}).For(true).AppendTo(tls, 0);
  SecurityHeaders({}).AppendTo(laid_out, 0);
  EXPECT_EQ(tls, laid_out);
}

}  // namespace
}  // namespace vigil::http

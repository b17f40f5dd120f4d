#include <gtest/gtest.h>

#include <vigil/service/topology.hpp>

#include "config.hpp"

namespace vigil::gateway {
namespace {

std::string ErrorOf(std::string_view json) {
  try {
    ParseGatewayConfig(json, "test.json");
  } catch (const GatewayConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(GatewayConfigTest, ParsesRoutesWithDefaults) {
  auto c = ParseGatewayConfig(R"({"routes":[
      {"prefix":"/api/auth/","upstream":"http://127.0.0.1:8081","strip_prefix":true},
      {"prefix":"/","upstream":"http://localhost","timeout_ms":250,"max_body_bytes":0},
      {"prefix":"/v6","upstream":"http://[::1]:9000/"}]})",
                              "t");
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].prefix, "/api/auth") << "a trailing slash is dropped";
  EXPECT_TRUE(c.routes[0].strip_prefix);
  EXPECT_EQ(c.routes[0].upstream.authority, "127.0.0.1:8081");
  EXPECT_EQ(c.routes[0].timeout.count(), 5000);
  EXPECT_EQ(c.routes[1].prefix, "/");
  EXPECT_EQ(c.routes[1].upstream.port, 80);
  EXPECT_EQ(c.routes[1].timeout.count(), 250);
  EXPECT_EQ(c.routes[2].upstream.host, "::1");
  EXPECT_EQ(c.routes[2].upstream.authority, "[::1]:9000");
}

TEST(GatewayConfigTest, DefaultsRouteThePlatform) {
  namespace topology = vigil::service::topology;
  auto c = DefaultGatewayConfig();
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].prefix, "/api/auth");
  EXPECT_EQ("http://" + c.routes[1].upstream.authority, topology::kCatalog.url);
  EXPECT_EQ(c.routes[2].prefix, "/api/orders");
}

TEST(GatewayConfigTest, EveryMistakeIsNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"{", "not valid JSON"},
      {"[]", "expected an object"},
      {R"({"routes":[], "extra":1})", "unknown key \"extra\""},
      {R"({"routes":[]})", "is empty"},
      {R"({"routes":{}})", "must be an array"},
      {R"({"routes":[{"upstream":"http://a:1"}]})", "routes[0]: \"prefix\" must be a string"},
      {R"({"routes":[{"prefix":"api","upstream":"http://a:1"}]})", "must start with '/'"},
      {R"({"routes":[{"prefix":"/a/{id}","upstream":"http://a:1"}]})", "literal path"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1"},{"prefix":"/a/","upstream":"http://b:1"}]})",
       "routes[1]: prefix \"/a\" is routed twice"},
      {R"({"routes":[{"prefix":"/a","upstream":"https://a:1"}]})", "expected http://host[:port]"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:0"}]})", "port must be from 1 to 65535"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1/p?x=1"}]})",
       "the path of \"upstream\" must be literal"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1/{id}"}]})",
       "the path of \"upstream\" must be literal"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1","timeout_ms":0}]})",
       "\"timeout_ms\" must be from 1"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1","timeout_ms":"5"}]})",
       "\"timeout_ms\" must be a whole number"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1","strip_prefix":"yes"}]})",
       "\"strip_prefix\" must be true or false"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1","retries":3}]})",
       "routes[0]: unknown key \"retries\""},
  };
  for (const auto& [json, expected] : cases) {
    const std::string error = ErrorOf(json);
    EXPECT_NE(error.find(expected), std::string::npos) << json << " -> " << error;
    EXPECT_EQ(error.rfind("test.json: ", 0), 0u) << error;
  }
}

// What the file gives goes on the wire or into the router as it is: every trailing slash
// of a prefix is dropped (one left would make a route no request reaches), and prefixes,
// upstream paths and hosts with spaces, control or non-ASCII characters are refused at
// load, not when the proxy builds its routes or writes a request upstream.
TEST(GatewayConfigTest, PrefixesAndUpstreamsAreWhatTheWireAndTheRouterTake) {
  const GatewayConfig c = ParseGatewayConfig(
      R"({"routes":[{"prefix":"/api/auth//","upstream":"http://a:1/x//"},
                    {"prefix":"///","upstream":"http://[::1]:2"}]})",
      "test.json");
  EXPECT_EQ(c.routes[0].prefix, "/api/auth");
  EXPECT_EQ(c.routes[0].upstream_path, "/x");
  EXPECT_EQ(c.routes[1].prefix, "/");
  const std::pair<const char*, const char*> cases[] = {
      {R"({"routes":[{"prefix":"/a\tb","upstream":"http://a:1"}]})", "literal path"},
      {R"({"routes":[{"prefix":"/a\u0001","upstream":"http://a:1"}]})", "literal path"},
      {R"({"routes":[{"prefix":"/caf\u00e9","upstream":"http://a:1"}]})", "literal path"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1/te\u0643"}]})",
       "the path of \"upstream\" must be literal"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a:1/p\r\nX-Evil: 1"}]})",
       "the path of \"upstream\" must be literal"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://V[::1]:9000/v1"}]})",
       "the host must be a name"},
      {R"({"routes":[{"prefix":"/a","upstream":"http://a\r\nX-Evil:1"}]})",
       "the host must be a name"},
  };
  for (const auto& [json, expected] : cases) {
    const std::string error = ErrorOf(json);
    EXPECT_NE(error.find(expected), std::string::npos) << json << " -> " << error;
  }
}

TEST(GatewayConfigTest, AnUpstreamUrlMayCarryAPathToPutInFront) {
  const GatewayConfig c = ParseGatewayConfig(
      R"({"routes":[{"prefix":"/api/orders","upstream":"http://127.0.0.1:8083/orders/",
                     "strip_prefix":true},
                    {"prefix":"/b","upstream":"http://b:2"}]})",
      "test.json");
  EXPECT_EQ(c.routes[0].upstream.authority, "127.0.0.1:8083");
  EXPECT_EQ(c.routes[0].upstream_path, "/orders");
  EXPECT_EQ(c.routes[1].upstream_path, "");
  EXPECT_EQ(DefaultGatewayConfig().routes[2].upstream_path, "/orders");
}

TEST(GatewayConfigTest, RateLimitsComeWithTheRoutes) {
  const auto c = ParseGatewayConfig(R"({"routes":[{"prefix":"/api","upstream":"http://a"}],
      "rate_limits":{"trusted_proxies":["10.0.0.0/8"],"policies":[{"name":"per-address",
      "key":["client_address"],"quota":5,"window_s":1,"match":[{"prefix":"/api"}]}]}})",
                                    "t");
  ASSERT_EQ(c.limits.policies.size(), 1u);
  EXPECT_EQ(c.limits.policies[0].name, "per-address");
  EXPECT_EQ(c.limits.trusted_proxies.size(), 1u);
  // Without "rate_limits": none. The embedded defaults limit logins and /api per address.
  EXPECT_TRUE(ParseGatewayConfig(R"({"routes":[{"prefix":"/","upstream":"http://a"}]})", "t")
                  .limits.policies.empty());
  const auto defaults = DefaultGatewayConfig();
  ASSERT_NE(defaults.limits.Find("login-per-address"), nullptr);
  EXPECT_TRUE(defaults.limits.Find("login-per-address")->Applies("POST", "/api/auth/login"));
  ASSERT_NE(defaults.limits.Find("api-per-address"), nullptr);
  // Mistakes are named like the routes' own.
  EXPECT_EQ(ErrorOf(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "rate_limits":{"policies":[{"name":"p","key":["ip"],"quota":1,"window_s":1}]}})"),
            "test.json: rate_limits.policies[0]: key part \"ip\" is not one of client_address, "
            "user, route, header:<Name>");
  EXPECT_EQ(ErrorOf(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "rate_limits":{"policies":[{"name":"p","key":["user"],"quota":1,"window_s":1}]}})"),
            "test.json: rate_limits: policy \"p\": the gateway limits before it authenticates: "
            "key on \"user\" in a service");
}

TEST(GatewayConfigTest, CorsOriginsAreExact) {
  const auto c = ParseGatewayConfig(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "cors":{"allowed_origins":["https://shop.example.com","http://localhost:5173"],
              "allow_credentials":false,"max_age_s":60}})",
                                    "t");
  EXPECT_EQ(c.cors.allowed_origins,
            (std::vector<std::string>{"https://shop.example.com", "http://localhost:5173"}));
  EXPECT_FALSE(c.cors.allow_credentials);
  EXPECT_EQ(c.cors.max_age.count(), 60);
  EXPECT_TRUE(ParseGatewayConfig(R"({"routes":[{"prefix":"/","upstream":"http://a"}]})", "t")
                  .cors.allowed_origins.empty());
  for (const char* bad : {R"("*")", R"("https://shop.example.com/")", R"("shop.example.com")",
                          R"("https://*.example.com")", R"(7)"}) {
    EXPECT_EQ(ErrorOf(std::string(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
        "cors":{"allowed_origins":[)") +
                      bad + "]}}"),
              "test.json: cors: each of \"allowed_origins\" must be an origin as a browser "
              "sends it, such as \"https://shop.example.com\" (http or https, the host in lower "
              "case, a port only when not the scheme's default; no path, no wildcard)")
        << bad;
  }
}

// Origins are compared exactly with what browsers send, which is one spelling of each: an
// entry in any other (a control character, upper case, the default port, an IPv6 address
// written long) could never match, and is refused at load instead of failing in silence.
TEST(GatewayConfigTest, CorsOriginsAreSpelledAsBrowsersSendThem) {
  const auto c = ParseGatewayConfig(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "cors":{"allowed_origins":["http://[::1]:8080","https://10.0.0.7","http://a-b.c_d:1"]}})",
                                    "t");
  EXPECT_EQ(c.cors.allowed_origins.size(), 3u);
  for (const char* bad :
       {R"("http://localhost:5\u007f173")", R"("https://shop.example.com\r\nX-Evil: 1")",
        R"("https://Shop.example.com")", R"("https://shop.example.com:443")",
        R"("http://shop.example.com:80")", R"("http://shop.example.com:0080")",
        R"("http://shop.example.com:")", R"("http://shop.example.com:65536")",
        R"("http://[0:0::1]")", R"("http://[::1")", R"("http://caf\u00e9.example")"}) {
    EXPECT_NE(ErrorOf(std::string(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
        "cors":{"allowed_origins":[)") +
                      bad + "]}}")
                  .find("must be an origin as a browser sends it"),
              std::string::npos)
        << bad;
  }
  EXPECT_EQ(ErrorOf(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "cors":{"allowed_origins":[],"max_age_s":-1}})"),
            "test.json: cors: \"max_age_s\" must be from 0 to 86400");
}

TEST(GatewayConfigTest, SecurityHeadersReplaceUpstreamsUnlessARouteKeepsThem) {
  const auto defaults =
      ParseGatewayConfig(R"({"routes":[{"prefix":"/","upstream":"http://a"}]})", "t");
  EXPECT_TRUE(defaults.security_headers.replace);
  EXPECT_EQ(defaults.security_headers.content_security_policy,
            "default-src 'none'; frame-ancestors 'none'");
  EXPECT_FALSE(defaults.routes[0].upstream_security_headers);
  const auto c = ParseGatewayConfig(R"({"routes":[{"prefix":"/shop","upstream":"http://a",
      "content_security_policy":"default-src 'self'","upstream_security_headers":true}],
      "security_headers":{"strict_transport_security":"","cache_control":"private"}})",
                                    "t");
  EXPECT_EQ(c.routes[0].content_security_policy, "default-src 'self'");
  EXPECT_TRUE(c.routes[0].upstream_security_headers);
  EXPECT_EQ(c.security_headers.strict_transport_security, "");
  EXPECT_EQ(c.security_headers.cache_control, "private");
  EXPECT_EQ(c.security_headers.referrer_policy, "no-referrer");
  EXPECT_EQ(ErrorOf(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "security_headers":{"x_frame_options":"ALLOW"}})"),
            "test.json: security_headers: unknown key \"x_frame_options\"");
  EXPECT_EQ(ErrorOf(R"({"routes":[{"prefix":"/","upstream":"http://a"}],
      "security_headers":{"referrer_policy":"a\r\nSet-Cookie: x"}})"),
            "test.json: security_headers: \"referrer_policy\" has a control character");
  EXPECT_EQ(ErrorOf(R"({"routes":[{"prefix":"/","upstream":"http://a",
      "upstream_security_headers":"yes"}]})"),
            "test.json: routes[0]: \"upstream_security_headers\" must be true or false");
}

TEST(GatewayConfigTest, MissingFileIsNamed) {
  try {
    LoadGatewayConfig("/nonexistent/routes.json");
    FAIL();
  } catch (const GatewayConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/routes.json: cannot be read");
  }
}

}  // namespace
}  // namespace vigil::gateway

// The gateway's routes: which path prefix goes to which upstream, and how.
//
// Read from a JSON file (`--config FILE` or VIGIL_GATEWAY_CONFIG), or the embedded
// defaults that put the platform's services behind one port:
//
//   {"routes": [
//     {"prefix": "/api/auth", "upstream": "http://127.0.0.1:8081", "strip_prefix": true,
//      "timeout_ms": 5000, "max_body_bytes": 1048576},
//     {"prefix": "/api/orders", "upstream": "http://127.0.0.1:8083/orders", "strip_prefix": true}
//   ],
//   "rate_limits": {"policies": [{"name": "api-per-address", "key": ["client_address"],
//                                 "quota": 600, "window_s": 60, "match": [{"prefix": "/api"}]}]}}
//
// Thread-safety: a value built at start-up and read-only afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/http/middleware/cors.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/ratelimit/limits.hpp>

namespace vigil::gateway {

struct RouteConfig {
  std::string prefix;  // "/api/auth": matches it and what lies below it, on whole segments
  http::UpstreamAddress upstream;
  bool strip_prefix = false;  // "/api/auth/login" goes upstream as "/login"
  // The path of the upstream URL ("http://127.0.0.1:8083/orders" -> "/orders"), put in
  // front of the forwarded path: "/api/orders/7" goes upstream as "/orders/7". Empty: none.
  std::string upstream_path;
  std::chrono::milliseconds timeout{5000};  // for the upstream's response to start
  std::uint64_t max_body_bytes = 0;         // 0: VIGIL_HTTP_MAX_BODY_BYTES
  // This route's Content-Security-Policy (a page's, where the API's would break it);
  // empty: the gateway's.
  std::string content_security_policy;
  // The upstream's own values of the security headers pass (the gateway's fill in what
  // it leaves out); by default the gateway's replace them.
  bool upstream_security_headers = false;
  bool operator==(const RouteConfig&) const = default;
};

struct GatewayConfig {
  std::vector<RouteConfig> routes;
  // "rate_limits" (ratelimit/limits.hpp); none when the file has none. A "user" key part
  // is refused here: the gateway limits before it authenticates (services key on users).
  ratelimit::Limits limits;
  // "cors": {"allowed_origins": ["https://shop.example.com"], "allow_credentials": true,
  // "max_age_s": 600}: browsers' cross-origin requests (http/middleware/cors.hpp). None:
  // no origin is allowed.
  http::CorsOptions cors;
  // "security_headers": {"strict_transport_security": "max-age=31536000", ...}: the values
  // of the security headers on every answer (http/middleware/security_headers.hpp; a key
  // per field, "" leaves it out). In replace mode: an upstream's values give way.
  http::SecurityHeadersOptions security_headers{.replace = true};
};

// A configuration that cannot be used; what() names the file and the offending entry.
class GatewayConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses and validates `json` (`source` names it in errors).
GatewayConfig ParseGatewayConfig(std::string_view json, std::string_view source);
// Reads `path`; throws GatewayConfigError when it cannot be read or parsed.
GatewayConfig LoadGatewayConfig(const std::string& path);
// The embedded routes: those of services/topology.json (/api/auth, /api/catalog,
// /api/orders to the services' default ports, the last to the orders service's /orders),
// with limits per client address on logins and on all of /api (kDefaultLimits).
extern const std::string_view kDefaultLimits;
GatewayConfig DefaultGatewayConfig();

}  // namespace vigil::gateway

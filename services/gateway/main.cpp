// vigil-gateway: the platform's front door, a reverse proxy that sees everything.
#include <array>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/http/middleware/access_log.hpp>
#include <vigil/http/middleware/cors.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/metrics.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/http/middleware/tracing.hpp>
#include <vigil/service/rate_limit.hpp>
#include <vigil/service/service.hpp>
#include <vigil/service/topology.hpp>
#include <vigil/telemetry/env.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "proxy.hpp"

namespace gateway = vigil::gateway;
namespace http = vigil::http;
namespace ratelimit = vigil::ratelimit;
namespace service = vigil::service;
namespace tel = vigil::telemetry;
namespace topology = vigil::service::topology;

namespace {

constexpr std::string_view kUsage =
    R"(Usage: vigil-gateway [--config FILE] [--help] [--routes] [--check]

The Vigil gateway: routes requests by path prefix to upstream services, streaming
bodies both ways, with a span, RED metrics and one access-log line per request.

  --config FILE   routes, rate limits, CORS origins and security headers as JSON (also
                  VIGIL_GATEWAY_CONFIG);
                  without it, the embedded routes of services/topology.json:
                  /api/auth, /api/catalog, /api/orders to auth, catalog and orders on
                  their default ports

  {"routes": [{"prefix": "/api/auth", "upstream": "http://auth.internal",
               "strip_prefix": true, "timeout_ms": 5000, "max_body_bytes": 1048576}],
   "rate_limits": {"policies": [{"name": "api-per-address", "key": ["client_address"],
                                 "quota": 600, "window_s": 60, "match": [{"prefix": "/api"}]}],
                   "trusted_proxies": ["10.0.0.0/8"]},
   "cors": {"allowed_origins": ["https://shop.example.com"], "allow_credentials": true,
            "max_age_s": 600},
   "security_headers": {"strict_transport_security": "max-age=63072000; includeSubDomains"}}

A route may add "content_security_policy" (a page's policy) or
"upstream_security_headers": true (the upstream's values pass); by default the gateway's
security headers replace an upstream's. Strict-Transport-Security goes on HTTPS answers
only (an upstream's is dropped over plain HTTP); behind an ingress that terminates TLS,
the ingress sets it.

Without --config, each client address may log in 1200 times a minute (200 at once) and send
30000 requests a minute to /api (3000 at once). SIGHUP re-reads the file: changed routes
and limits apply to the requests that follow (a bad file keeps the running ones); "cors"
and "security_headers" are read at start. Without "cors", no origin may make cross-origin
requests.

A request with "Authorization: Bearer <JWT>" is verified here against the keys auth
publishes (401 when bad) and reaches the service with a signed X-Vigil-Identity header.

Gateway environment:
  VIGIL_GATEWAY_CONFIG        the configuration file, when --config is not given
  VIGIL_GATEWAY_AUTH          verify bearer tokens here (default true)
  VIGIL_GATEWAY_JWKS_URL      auth's keys ()" VIGIL_TOPOLOGY_AUTH_URL R"(/.well-known/jwks.json)
  VIGIL_GATEWAY_JWKS_REFRESH  seconds between key refreshes (300)
  VIGIL_JWT_ISSUER, VIGIL_JWT_AUDIENCE, VIGIL_UPSTREAM_* (the pooled upstream connections)

HTTPS (on VIGIL_PORT; the admin port stays plain HTTP):
  VIGIL_TLS_CERT_FILE         PEM certificate chain: the certificate, then its intermediates
  VIGIL_TLS_KEY_FILE          its PEM private key, unencrypted (both files or neither)
  VIGIL_TLS_REDIRECT_PORT     also serve plain HTTP on this port, answering every request
                              with 308 to https://<host>:<VIGIL_PORT><target>
TLS 1.2 and 1.3 only (Mozilla's intermediate configuration), ALPN http/1.1. SIGHUP
re-reads both files for new connections (files that cannot be used keep the running ones).
)";

constexpr std::array<std::string_view, 1> kValueFlags{"--config"};

// The gateway proxies every request at rates far above a service's, one access-log line
// each: it keeps the SDK's default log ring per thread.
const service::ServiceDefinition kDefinition{
    "gateway", topology::kGateway.port, topology::kGateway.admin_port, kUsage, kValueFlags, 0};

// The routes file named by --config or VIGIL_GATEWAY_CONFIG, or the embedded routes.
// Throws telemetry::ConfigError naming the flag or variable when the file is unusable.
gateway::GatewayConfig ReadConfig(const service::ServiceHost& host) {
  const auto flag = host.flag("--config");
  const std::string path = flag ? std::string(*flag) : tel::env::String("VIGIL_GATEWAY_CONFIG", "");
  if (path.empty()) return gateway::DefaultGatewayConfig();
  try {
    return gateway::LoadGatewayConfig(path);
  } catch (const gateway::GatewayConfigError& e) {
    throw tel::ConfigError(flag ? "--config" : "VIGIL_GATEWAY_CONFIG", e.what());
  }
}

// The routes and limits of the configuration: built at start, and again on SIGHUP, when
// the file is read anew. Changed routes get a new proxy (new upstream pools) for the
// requests routed from then on, while requests in flight finish on the old one (kept,
// with its pools, for the life of the program); new limits apply at once, and the counters
// of policies kept by name go on. A file that cannot be used changes nothing.
class Configuration {
 public:
  Configuration(service::ServiceHost& host, ratelimit::Limiter& limiter,
                gateway::Authenticator* auth)
      : host_(host), limiter_(limiter), auth_(auth), pool_(http::PoolOptions::FromEnv()) {}

  // A proxy for `config`'s routes, owned by the host, its routes added to `routes`.
  void Route(const gateway::GatewayConfig& config, http::Routes& routes) {
    tel::Telemetry& telemetry = host_.telemetry();
    auto& proxy = host_.Make<gateway::Proxy>(host_.runtime(), config, telemetry, pool_,
                                             host_.identity(), limiter_, auth_);
    proxy.AddRoutes(routes);
    routes_ = config.routes;
    for (const auto& r : config.routes) {
      telemetry.log().Info("route", {{"http.route", r.prefix == "/" ? "/*" : r.prefix + "/*"},
                                     {"server.address", r.upstream.authority},
                                     {"strip_prefix", r.strip_prefix},
                                     {"timeout_ms", r.timeout.count()}});
    }
  }

  void Reload() {
    tel::Logger& log = host_.telemetry().log();
    try {
      gateway::GatewayConfig config = ReadConfig(host_);
      const bool routes_changed = config.routes != routes_;
      if (routes_changed) {
        http::Routes routes;
        Route(config, routes);
        host_.ReplaceRoutes(std::move(routes));
      }
      const std::size_t policies = config.limits.policies.size();
      limiter_.Reload(std::move(config.limits));
      log.Info(
          "configuration reloaded",
          {{"routes", routes_.size()}, {"routes_changed", routes_changed}, {"policies", policies}});
    } catch (const std::exception& e) {
      log.Warn("configuration not reloaded: keeping the running one", {{"error", e.what()}});
    }
  }

 private:
  service::ServiceHost& host_;
  ratelimit::Limiter& limiter_;
  gateway::Authenticator* auth_;
  http::PoolOptions pool_;
  std::vector<gateway::RouteConfig> routes_;  // those serving
};

}  // namespace

int main(int argc, char** argv) {
  return service::RunService(kDefinition, argc, argv, [](service::ServiceHost& host) {
    tel::Telemetry& telemetry = host.telemetry();

    // What every request meets, in this order (After hooks run in reverse). Bodies stream
    // through untouched: the gateway compresses nothing.
    const gateway::GatewayConfig config = ReadConfig(host);
    http::Pipeline& pipeline = host.pipeline();
    pipeline.Add<http::RequestIdMiddleware>();
    // The gateway's values of the security headers replace an upstream's.
    pipeline.Add<http::SecurityHeadersMiddleware>(config.security_headers);
    pipeline.Add<http::TracingMiddleware>(telemetry.tracer());
    pipeline.Add<http::MetricsMiddleware>(telemetry.metrics());
    if (http::AccessLogMiddleware::EnabledFromEnv()) {
      pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
    }
    pipeline.Add<http::ErrorMiddleware>(telemetry);
    // Browsers' cross-origin requests: preflights answered here, before any limit.
    pipeline.Add<http::CorsMiddleware>(config.cors);
    ratelimit::Limiter& limiter = service::AddRateLimits(host, config.limits);
    // No signed header is believed here: the gateway is the one that signs them.
    pipeline.Add<service::RateLimitMiddleware>(limiter, nullptr);

    // Routes: one streamed route per configured prefix, authenticated when a bearer token
    // comes with the request; the file read again on SIGHUP.
    const gateway::AuthOptions auth_options = gateway::AuthOptions::FromEnv();
    auto& auth = host.Make<gateway::Authenticator>(
        host.runtime(), telemetry, host.client_instruments(), host.identity(), auth_options);
    auto& configuration =
        host.Make<Configuration>(host, limiter, auth_options.enabled ? &auth : nullptr);
    configuration.Route(config, host.routes());
    for (const auto& p : config.limits.policies) {
      telemetry.log().Info("rate limit", {{"vigil.ratelimit.policy", p.name},
                                          {"quota", p.quota},
                                          {"window_s", p.window.count()},
                                          {"burst", p.burst}});
    }
    host.OnReload([&configuration] { configuration.Reload(); });
    if (!host.listing_routes()) auth.Start();
  });
}

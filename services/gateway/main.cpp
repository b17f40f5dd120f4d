// vigil-gateway: the platform's front door, a reverse proxy that sees everything.
#include <cstdio>
#include <string>
#include <string_view>
#include <vigil/http/server.hpp>
#include <vigil/service/service.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "proxy.hpp"

namespace http = vigil::http;
namespace tel = vigil::telemetry;
namespace gateway = vigil::gateway;

namespace {

constexpr const char* kUsage = R"(Usage: vigil-gateway [--config FILE] [--check] [--help]

The Vigil gateway: routes requests by path prefix to upstream services, streaming
bodies both ways, with a span, RED metrics and one access-log line per request.

  --config FILE   routes as JSON (also VIGIL_GATEWAY_CONFIG); without it, the embedded
                  routes /api/auth, /api/catalog, /api/orders -> 127.0.0.1:8081..8083
  --check         validate the configuration and environment, print the routes, exit

  {"routes": [{"prefix": "/api/auth", "upstream": "http://127.0.0.1:8081",
               "strip_prefix": true, "timeout_ms": 5000, "max_body_bytes": 1048576}]}

A request with "Authorization: Bearer <JWT>" is verified here against the keys auth
publishes (401 when bad) and reaches the service with a signed X-Vigil-Identity header.

Environment: VIGIL_PORT (8080), VIGIL_ADMIN_PORT (9080), VIGIL_BIND, VIGIL_WORKERS,
VIGIL_HTTP_*, VIGIL_UPSTREAM_*, VIGIL_SHUTDOWN_TIMEOUT, VIGIL_ACCESS_LOG,
VIGIL_GATEWAY_AUTH (true), VIGIL_GATEWAY_JWKS_URL
(http://127.0.0.1:8081/.well-known/jwks.json), VIGIL_GATEWAY_JWKS_REFRESH (300 s),
VIGIL_JWT_ISSUER, VIGIL_JWT_AUDIENCE, VIGIL_INTERNAL_SECRET, VIGIL_INTERNAL_SECRET_PREVIOUS
and the telemetry variables;
docs/operations.md lists them all.
)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = tel::env::String("VIGIL_GATEWAY_CONFIG", "");
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    if (arg == "--check") {
      check_only = true;
      continue;
    }
    std::fprintf(stderr, "vigil-gateway: unknown or incomplete argument '%s'\n\n%s", argv[i], kUsage);
    return 2;
  }
  try {
    const gateway::GatewayConfig config = config_path.empty()
                                              ? gateway::DefaultGatewayConfig()
                                              : gateway::LoadGatewayConfig(config_path);
    tel::ServiceInfo service;
    service.name = "gateway";
    service.version = std::string(vigil::service::PlatformVersion());
    tel::TelemetryOptions options = tel::OptionsFromEnv(service);
    const http::ServerOptions public_options = http::ServerOptions::FromEnv(8080);
    const http::ServerOptions admin_options = http::ServerOptions::AdminFromEnv(9080);
    const http::PoolOptions pool_options = http::PoolOptions::FromEnv();
    const gateway::AuthOptions auth_options = gateway::AuthOptions::FromEnv();
    vigil::service::IdentitySigner identity = vigil::service::IdentitySigner::FromEnv();
    const bool access_log = tel::env::Boolean("VIGIL_ACCESS_LOG", true);
    const std::size_t workers = http::Runtime::WorkersFromEnv();
    (void)http::Runtime::DrainTimeoutFromEnv();
    if (check_only) {
      for (const auto& r : config.routes) {
        std::printf("%s/* -> http://%s%s%s (timeout %lld ms)\n", r.prefix == "/" ? "" : r.prefix.c_str(),
                    r.upstream.authority.c_str(), r.upstream_path.c_str(),
                    r.strip_prefix ? " (prefix stripped)" : "",
                    static_cast<long long>(r.timeout.count()));
      }
      std::printf("configuration OK\n");
      return 0;
    }

    tel::Telemetry telemetry(std::move(options));
    http::Runtime runtime(workers);
    if (identity.uses_development_secret()) {
      telemetry.log().Warn("VIGIL_INTERNAL_SECRET is not set: using the development secret, "
                           "which anyone can read; set it in any shared deployment");
    }
    http::ClientInstruments instruments(telemetry.metrics());
    gateway::Authenticator auth(runtime, telemetry, instruments, std::move(identity), auth_options);
    gateway::Proxy proxy(runtime, config, telemetry, pool_options,
                         auth_options.enabled ? &auth : nullptr);

    http::Routes routes;
    proxy.AddRoutes(routes);
    http::Server server(runtime, public_options, std::move(routes),
                        vigil::service::StandardPipeline(telemetry, access_log, nullptr));
    http::Health health;
    http::Server admin(runtime, admin_options, http::AdminRoutes(telemetry, health), http::Pipeline{});
    for (const auto& r : config.routes) {
      telemetry.log().Info("route", {{"http.route", r.prefix == "/" ? "/*" : r.prefix + "/*"},
                                     {"server.address", r.upstream.authority},
                                     {"strip_prefix", r.strip_prefix},
                                     {"timeout_ms", r.timeout.count()}});
    }
    auth.Start();
    return runtime.RunUntilSignal({&server, &admin}, health, telemetry);
  } catch (const tel::ConfigError& e) {
    std::fprintf(stderr, "vigil-gateway: %s\n", e.what());
    return 2;
  } catch (const gateway::GatewayConfigError& e) {
    std::fprintf(stderr, "vigil-gateway: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigil-gateway: %s\n", e.what());
    return 1;
  }
}

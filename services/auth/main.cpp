// vigil-auth: accounts, passwords (argon2id), access tokens (Ed25519 JWT), refresh tokens.
#include <vigil/http/middleware/access_log.hpp>
#include <vigil/http/middleware/compression.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/metrics.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/http/middleware/tracing.hpp>
#include <vigil/service/database.hpp>
#include <vigil/service/rate_limit.hpp>
#include <vigil/service/retention.hpp>
#include <vigil/service/service.hpp>
#include <vigil/service/topology.hpp>

#include "api.hpp"
#include "options.hpp"
#include "store.hpp"

namespace {

constexpr const char* kUsage = R"(Usage: vigil-auth [--help] [--routes] [--check]

The Vigil auth service: registers users (passwords hashed with argon2id, m=19 MiB, t=2,
p=1), logs them in with short-lived Ed25519-signed access tokens (JWT, iss "vigil-auth",
aud "vigil") and single-use rotating refresh tokens, and publishes its verification keys
at GET /.well-known/jwks.json for the gateway.

  POST /register  POST /login  POST /refresh  POST /logout  GET /me
  GET /.well-known/jwks.json

Auth environment:
  VIGIL_AUTH_ACCESS_TTL    access token lifetime, seconds (60..86400, default 900)
  VIGIL_AUTH_REFRESH_TTL   refresh token lifetime, seconds (300..31536000, default
                           2592000 = 30 days); each use issues a new one
  VIGIL_AUTH_KEY_ROTATION  seconds the newest signing key signs before a new one is
                           created (10..31536000, default 86400); keys are kept in the
                           database and published for rotation + access TTL
Retention: 30 s after start and then every 10 minutes, the refresh tokens of families
whose newest token expired over an hour ago are deleted (in batches of 500), and so are
signing keys an hour past their publication (never the newest).
Default database: SQLite at $VIGIL_DATA_DIR/auth.db.
)";

}  // namespace

int main(int argc, char** argv) {
  namespace auth = vigil::auth;
  namespace http = vigil::http;
  namespace ratelimit = vigil::ratelimit;
  namespace service = vigil::service;
  namespace tel = vigil::telemetry;
  static const service::ServiceDefinition kDefinition{"auth", service::topology::kAuth.port,
                                                      service::topology::kAuth.admin_port, kUsage};
  return service::RunService(kDefinition, argc, argv, [](service::ServiceHost& host) {
    tel::Telemetry& telemetry = host.telemetry();

    // What every request meets, in this order (After hooks run in reverse: a database
    // outage becomes a 503, errors become problem answers, then they are compressed,
    // logged and counted).
    http::Pipeline& pipeline = host.pipeline();
    pipeline.Add<http::RequestIdMiddleware>();
    pipeline.Add<http::SecurityHeadersMiddleware>(http::SecurityHeadersOptions{});
    pipeline.Add<http::TracingMiddleware>(telemetry.tracer());
    pipeline.Add<http::MetricsMiddleware>(telemetry.metrics());
    if (http::AccessLogMiddleware::EnabledFromEnv()) {
      pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
    }
    pipeline.Add<http::CompressionMiddleware>(telemetry.metrics(),
                                              http::CompressionOptions::FromEnv());
    pipeline.Add<http::ErrorMiddleware>(telemetry, service::ErrorUser(host.identity()));
    ratelimit::Limiter& limiter = service::AddRateLimits(host, auth::kDefaultLimits);
    pipeline.Add<service::RateLimitMiddleware>(limiter, &host.identity());
    pipeline.Add<service::DatabaseOutageMiddleware>();

    // Routes: accounts, tokens and the published keys; logins also limited per account.
    const auth::AuthOptions options = auth::AuthOptions::FromEnv();
    auth::AuthApi& api =
        auth::InstallAuth(host, service::OpenDatabase(host, auth::Migrations()), options, &limiter);
    service::StartPurges(host, api.retention());
  });
}

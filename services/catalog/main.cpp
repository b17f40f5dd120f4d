// vigil-catalog: items, search, stock reservations; cached reads with ETags.
#include <string_view>
#include <vigil/http/middleware/access_log.hpp>
#include <vigil/http/middleware/compression.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/metrics.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/http/middleware/tracing.hpp>
#include <vigil/service/database.hpp>
#include <vigil/service/rate_limit.hpp>
#include <vigil/service/service.hpp>
#include <vigil/service/topology.hpp>
#include <vigil/storage/database.hpp>

#include "api.hpp"

namespace catalog = vigil::catalog;
namespace http = vigil::http;
namespace service = vigil::service;
namespace storage = vigil::storage;
namespace tel = vigil::telemetry;

namespace {

constexpr std::string_view kUsage = R"(Usage: vigil-catalog [--help] [--routes] [--check]

The Vigil catalog: items with prefix search and cursor pagination, reads served from an
in-memory cache with ETags (If-None-Match -> 304), and the stock reservations the orders
service makes, each one transaction that never oversells.

Catalog environment:
  VIGIL_CATALOG_CACHE_SIZE       items kept in the read cache (default 10000; 0 turns it off)
  VIGIL_HTTP_COMPRESS_MIN_BYTES  compress responses of at least this many bytes (default 1024)
  DATABASE_URL / VIGIL_DATA_DIR  PostgreSQL, or SQLite at $VIGIL_DATA_DIR/catalog.db
)";

const service::ServiceDefinition kDefinition{"catalog", service::topology::kCatalog.port,
                                             service::topology::kCatalog.admin_port, kUsage};

}  // namespace

int main(int argc, char** argv) {
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
    // No limits of its own by default (reads are cached and cheap; the gateway limits each
    // client); VIGIL_RATELIMIT_CONFIG can add some.
    pipeline.Add<service::RateLimitMiddleware>(service::AddRateLimits(host, R"({"policies": []})"),
                                               &host.identity());
    pipeline.Add<service::DatabaseOutageMiddleware>();

    // Routes: items and reservations, on the catalog's database and its read cache.
    const catalog::CatalogOptions options = catalog::CatalogOptions::FromEnv();
    storage::Database& db = service::OpenDatabase(host, catalog::Migrations());
    host.Make<catalog::CatalogApi>(db, telemetry.metrics(), host.identity(), options)
        .AddRoutes(host);
  });
}

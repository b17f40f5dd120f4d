// vigil-orders: a user's orders, each reserving its stock at the catalog.
#include <vigil/http/client.hpp>
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
#include <vigil/storage/database.hpp>

#include "api.hpp"
#include "options.hpp"
#include "store.hpp"

namespace http = vigil::http;
namespace orders = vigil::orders;
namespace service = vigil::service;
namespace storage = vigil::storage;
namespace tel = vigil::telemetry;

namespace {

constexpr const char* kUsage = R"(Usage: vigil-orders [--help] [--routes] [--check]

The Vigil orders service: POST /orders reserves the items' stock at the catalog and
stores the order at the catalog's prices (an Idempotency-Key makes a retry safe);
GET /orders and GET /orders/{id} answer the calling user's orders.

Environment:
  VIGIL_CATALOG_URL             the catalog service ()" VIGIL_TOPOLOGY_CATALOG_URL R"()
  VIGIL_ORDERS_CATALOG_TIMEOUT  milliseconds to wait for the catalog's answer (3000)
  VIGIL_ORDERS_IDEMPOTENCY_TTL  seconds an Idempotency-Key is remembered (60..2592000,
                                default 86400); after it the same key makes a new order.
                                Expired keys are deleted 30 s after start and then every
                                10 minutes, in batches of 500
  VIGIL_UPSTREAM_MAX_IDLE, VIGIL_UPSTREAM_IDLE_TIMEOUT, VIGIL_UPSTREAM_CONNECT_TIMEOUT
                                the kept-alive connections to the catalog
  The database is orders.db under VIGIL_DATA_DIR unless DATABASE_URL names a
  PostgreSQL database.
)";

}  // namespace

int main(int argc, char** argv) {
  return service::RunService(
      {"orders", service::topology::kOrders.port, service::topology::kOrders.admin_port, kUsage},
      argc, argv, [](service::ServiceHost& host) {
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
        pipeline.Add<service::RateLimitMiddleware>(
            service::AddRateLimits(host, orders::kDefaultLimits), &host.identity());
        pipeline.Add<service::DatabaseOutageMiddleware>();

        // Routes: a user's orders, each reserving its stock at the catalog.
        const orders::OrdersOptions options = orders::OrdersOptions::FromEnv();
        const http::PoolOptions pool = http::PoolOptions::FromEnv();

        storage::Database& db = service::OpenDatabase(host, orders::Migrations());

        auto& upstream =
            host.Make<http::Upstream>(host.runtime(), options.catalog, pool, telemetry.metrics());
        auto& catalog = host.Make<http::Client>(upstream, telemetry.tracer(),
                                                host.client_instruments(), options.catalog_timeout);
        auto& api = host.Make<orders::OrdersApi>(db, catalog, host.identity(), telemetry,
                                                 options.idempotency_ttl);
        api.AddRoutes(host);
        service::StartPurges(host, api.retention());
      });
}

#include "options.hpp"

#include <vigil/service/service.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::orders {

OrdersOptions OrdersOptions::FromEnv() {
  namespace env = telemetry::env;
  OrdersOptions o;
  o.catalog = service::UpstreamFromEnv("VIGIL_CATALOG_URL", service::topology::kCatalog.url);
  o.catalog_timeout =
      std::chrono::milliseconds(env::Integer("VIGIL_ORDERS_CATALOG_TIMEOUT", 3000, 1, 600000));
  o.idempotency_ttl = std::chrono::seconds(
      env::Integer("VIGIL_ORDERS_IDEMPOTENCY_TTL", kDefaultIdempotencyTtl.count(), 60, 2592000));
  return o;
}

}  // namespace vigil::orders

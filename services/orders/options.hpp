// The orders service's settings, read from the environment once at start-up; tests build
// the struct directly.
//
//   orders::OrdersOptions options = orders::OrdersOptions::FromEnv();
//   options.idempotency_ttl;  // how long an Idempotency-Key is remembered
//
// Thread-safety: a value.
#pragma once

#include <chrono>
#include <vigil/http/client.hpp>
#include <vigil/service/topology.hpp>

#include "model.hpp"

namespace vigil::orders {

struct OrdersOptions {
  // The catalog service (VIGIL_CATALOG_URL).
  http::UpstreamAddress catalog = http::UpstreamAddress::Parse(service::topology::kCatalog.url);
  // How long to wait for the catalog's answer (VIGIL_ORDERS_CATALOG_TIMEOUT).
  std::chrono::milliseconds catalog_timeout{3000};
  // How long an Idempotency-Key is remembered (VIGIL_ORDERS_IDEMPOTENCY_TTL).
  std::chrono::seconds idempotency_ttl = kDefaultIdempotencyTtl;

  // VIGIL_CATALOG_URL (an http:// URL, default the catalog's in services/topology.json),
  // VIGIL_ORDERS_CATALOG_TIMEOUT (1..600000 ms, default 3000),
  // VIGIL_ORDERS_IDEMPOTENCY_TTL (60..2592000 s, default 86400). Throws
  // telemetry::ConfigError naming the variable.
  static OrdersOptions FromEnv();
};

}  // namespace vigil::orders

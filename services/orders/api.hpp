// The orders service's API: a user's orders, each created by reserving its items'
// stock at the catalog, at the catalog's prices.
//
//   POST /orders         {"lines":[{"item_id","quantity"}]}, optional Idempotency-Key
//                        -> 201 order, Location: /api/orders/<id>
//   GET  /orders         ?limit=1..100 (50) &cursor=<next_cursor>
//                        -> 200 {"orders":[...], "next_cursor": id | null}, newest first
//   GET  /orders/{id}    -> 200 order | 404 (also for another user's order)
//
// Every route requires a user identity (X-Vigil-Identity). main() opens the database and
// the catalog client; tests build the same API on their own ones:
//
//   auto& orders = host.Make<orders::OrdersApi>(db, catalog_client, host.identity(),
//                                               host.telemetry(), options.idempotency_ttl);
//   orders.AddRoutes(host);
//   service::StartPurges(host, orders.retention());
//
// Creating an order, in order: the Idempotency-Key is claimed (or the earlier order
// with that key answered again), the stock is reserved at the catalog, then the order
// is stored. When storing fails, the reservation is released and the key forgotten, so
// that the client's retry starts afresh.
//
// Idempotency-Keys are remembered for the idempotency TTL (VIGIL_ORDERS_IDEMPOTENCY_TTL,
// one day): after it the same key makes a new order, and retention() deletes the expired
// keys, run by service::StartPurges shortly after start and every ten minutes.
//
// Metrics: vigil_orders_created_total and vigil_orders_value_cents_total (counters,
// with exemplars), vigil_orders_idempotency_keys_purged_total; one "order created" info
// line per order.
//
// Thread-safety: handlers run concurrently on every worker; the API holds no
// per-request state.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vigil/http/client.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/retention.hpp>
#include <vigil/service/service.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "catalog_client.hpp"
#include "model.hpp"
#include "store.hpp"

namespace vigil::orders {

namespace asio = boost::asio;

// Orders' limits when VIGIL_RATELIMIT_CONFIG is unset: 60 orders created per user per
// minute, 20 at once (in api.cpp).
extern const std::string_view kDefaultLimits;

inline constexpr std::int64_t kDefaultListLimit = 50;
inline constexpr std::int64_t kMaxListLimit = 100;

class OrdersApi {
 public:
  // `catalog` calls the catalog service; all four must outlive the API; `db` has the
  // orders migrations applied.
  OrdersApi(storage::Database& db, http::Client& catalog, const service::IdentitySigner& identity,
            telemetry::Telemetry& telemetry,
            std::chrono::seconds idempotency_ttl = kDefaultIdempotencyTtl);

  // Adds the three routes to `host` (which must not outlive this API).
  void AddRoutes(service::ServiceHost& host);

  // The retention purge: the expired Idempotency-Keys (OrderStore::PurgeKeys, table
  // idempotency_keys), counted in vigil_orders_idempotency_keys_purged_total.
  const service::RetentionPurge& retention() const noexcept { return retention_; }

  asio::awaitable<void> Create(http::Exchange& ex);
  asio::awaitable<void> List(http::Exchange& ex);
  asio::awaitable<void> Get(http::Exchange& ex);

 private:
  // Best effort, after a failed creation: each failure is logged, never thrown.
  asio::awaitable<void> Release(http::Exchange& ex, const std::string& order_id);
  asio::awaitable<void> ForgetKey(http::Exchange& ex, const std::string& user_id,
                                  const std::string& key, const std::string& order_id);

  OrderStore store_;
  CatalogReservations catalog_;
  const service::IdentitySigner& identity_;
  telemetry::Logger& log_;
  telemetry::Counter& created_;
  telemetry::Counter& value_cents_;
  service::RetentionPurge retention_;
};

}  // namespace vigil::orders

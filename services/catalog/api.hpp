// The catalog service's HTTP API: items (create, read, replace, delete, search) and the
// stock reservations the orders service makes. Item reads are served from an in-memory
// LRU cache with strong ETags, so that clients revalidate with If-None-Match and get a
// 304 without a body.
//
//   storage::Database& db = service::OpenDatabase(host, catalog::Migrations());
//   host.Make<catalog::CatalogApi>(db, host.telemetry().metrics(), host.identity(),
//                                  catalog::CatalogOptions::FromEnv()).AddRoutes(host);
//
// Routes (service-local paths; the gateway serves them under /api/catalog):
//   POST   /items               user             -> 201 item
//   GET    /items/{id}          anyone           -> 200 item + ETag | 304 | 404
//   PUT    /items/{id}          user             -> 200 item | 404
//   DELETE /items/{id}          user             -> 204 | 404
//   GET    /items?q=&category=&limit=&cursor=    -> 200 {"items":[...],"next_cursor"}
//   POST   /reservations        service:orders   -> 201 | 200 (replay) | 409 | 422
//   DELETE /reservations/{id}   service:orders   -> 204
//
// Thread-safety: handlers run concurrently on every worker; the cache and the store are
// safe for that.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <vigil/http/exchange.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/metrics.hpp>

#include "item_cache.hpp"
#include "model.hpp"
#include "options.hpp"
#include "store.hpp"

namespace vigil::service {
class ServiceHost;
}

namespace vigil::catalog {

class CatalogApi {
 public:
  // `db` (migrated with Migrations()) and `identity` must outlive the API.
  CatalogApi(storage::Database& db, telemetry::Registry& registry,
             const service::IdentitySigner& identity, CatalogOptions options);

  // Adds every route above to `host`'s public listener.
  void AddRoutes(service::ServiceHost& host);

  asio::awaitable<void> CreateItem(http::Exchange& ex);
  asio::awaitable<void> GetItem(http::Exchange& ex);
  asio::awaitable<void> UpdateItem(http::Exchange& ex);
  asio::awaitable<void> DeleteItem(http::Exchange& ex);
  asio::awaitable<void> ListItems(http::Exchange& ex);
  asio::awaitable<void> CreateReservation(http::Exchange& ex);
  asio::awaitable<void> ReleaseReservation(http::Exchange& ex);

  ItemCache& cache() noexcept { return cache_; }

 private:
  void RespondItem(http::Exchange& ex, unsigned status, const RenderedItem& item) const;

  ItemStore store_;
  const service::IdentitySigner& identity_;
  ItemCache cache_;
};

}  // namespace vigil::catalog

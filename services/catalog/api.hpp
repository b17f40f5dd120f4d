// The catalog service's HTTP API: items (create, read, replace, delete, search) and the
// stock reservations the orders service makes. Item reads are served from an in-memory
// LRU cache with strong ETags, so that clients revalidate with If-None-Match and get a
// 304 without a body.
//
//   storage::Database& db = host.OpenDatabase(catalog::CatalogMigrations());
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

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vigil/http/exchange.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/lru_cache.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/metrics.hpp>

#include "store.hpp"

namespace vigil::service {
class ServiceHost;
}

namespace vigil::catalog {

struct CatalogOptions {
  // Items kept in the read cache; 0 turns it off.
  std::size_t cache_size = 10000;

  // VIGIL_CATALOG_CACHE_SIZE (0 .. 10000000, default 10000). Throws
  // telemetry::ConfigError naming the variable when it is malformed.
  static CatalogOptions FromEnv();
};

// An item as served: its JSON body and the strong ETag of that body.
struct RenderedItem {
  std::string body;
  std::string etag;
};

// The item cache, safe against a read that races a write: a reader that fetched an item
// before a write committed must not put the old version in the cache after the writer
// invalidated it. Each key hashes to a stripe whose counter every invalidation bumps; a
// reader stamps the counter before reading the database and keeps its result only if
// the counter has not moved, checked again after the insert.
//
// Thread-safety: all methods may be called concurrently.
class ItemCache {
 public:
  ItemCache(std::size_t capacity, telemetry::Registry& registry);

  std::optional<RenderedItem> Get(const std::string& id) { return lru_.Get(id); }
  // Call before reading the item from the database.
  std::uint64_t Stamp(std::string_view id) const noexcept;
  // Caches `item` unless `id` was invalidated since `stamp` was taken.
  void Fill(const std::string& id, RenderedItem item, std::uint64_t stamp);
  // Call after a write to the item has committed.
  void Invalidate(const std::string& id);

 private:
  std::atomic<std::uint64_t>& Stripe(std::string_view id) const noexcept;

  service::LruCache<std::string, RenderedItem> lru_;
  mutable std::array<std::atomic<std::uint64_t>, 64> stripes_{};
};

class CatalogApi {
 public:
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

// Validation shared with the tests.
// 1 to 64 characters of [a-z0-9-].
bool IsValidCategory(std::string_view category) noexcept;
// The item's JSON: {"id","name","category","price_cents","stock"}.
std::string ItemJson(const Item& item);
RenderedItem RenderItem(const Item& item);

}  // namespace vigil::catalog

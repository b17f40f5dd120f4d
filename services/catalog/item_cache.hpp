// The catalog's cache of rendered items, safe against a read that races a write: a
// reader that fetched an item before a write committed must not put the old version in
// the cache after the writer invalidated it. Each key hashes to a stripe whose counter
// every invalidation bumps; a reader stamps the counter before reading the database and
// keeps its result only if the counter has not moved, checked again after the insert.
//
//   std::uint64_t stamp = cache.Stamp(id);
//   std::optional<Item> item = co_await store.Get(ctx, id);
//   cache.Fill(id, RenderItem(*item), stamp);          // after the read
//   cache.Invalidate(id);                               // after a write committed
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vigil/service/lru_cache.hpp>
#include <vigil/telemetry/metrics.hpp>

#include "model.hpp"

namespace vigil::catalog {

class ItemCache {
 public:
  // Holds up to `capacity` items (0: none); counts hits, misses and evictions under
  // cache="items" in `registry`.
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

}  // namespace vigil::catalog

#include "item_cache.hpp"

#include <functional>

namespace vigil::catalog {

ItemCache::ItemCache(std::size_t capacity, telemetry::Registry& registry)
    : lru_(capacity, registry, "items") {}

std::atomic<std::uint64_t>& ItemCache::Stripe(std::string_view id) const noexcept {
  return stripes_[std::hash<std::string_view>{}(id) % stripes_.size()];
}

std::uint64_t ItemCache::Stamp(std::string_view id) const noexcept { return Stripe(id).load(); }

void ItemCache::Fill(const std::string& id, RenderedItem item, std::uint64_t stamp) {
  std::atomic<std::uint64_t>& stripe = Stripe(id);
  if (stripe.load() != stamp) return;
  lru_.Put(id, std::move(item));
  // An invalidation between the check and the Put may have erased nothing yet: look
  // again, after the Put, and undo it. (Sequentially consistent on both sides: either
  // this load sees the writer's bump, or the writer's Erase comes after our Put.)
  if (stripe.load() != stamp) lru_.Erase(id);
}

void ItemCache::Invalidate(const std::string& id) {
  Stripe(id).fetch_add(1);
  lru_.Erase(id);
}

}  // namespace vigil::catalog

// The catalog's tables (their migrations) and every statement that touches them: items,
// and stock reservations with their lines. Knows SQL and transactions, nothing of HTTP.
//
//   catalog::ItemStore store(db);
//   std::optional<catalog::Item> item = co_await store.Get(ex.context(), id);
//   catalog::Reservation r = co_await store.Reserve(ex.context(), request,
//                                               service::WallClockMillis());
//
// The SQL runs unchanged on SQLite and PostgreSQL. On PostgreSQL the text columns use
// the "C" collation, so that comparisons are bytewise as on SQLite: the name prefix
// range (name >= q AND name < q') and the id order then mean the same on both.
//
// Thread-safety: an ItemStore is immutable after construction and may be used from every
// worker at once (the Database serialises what it must).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/context.hpp>

#include "model.hpp"

namespace vigil::catalog {

namespace asio = boost::asio;

// The catalog's schema, for Database::Migrate("catalog", ...).
std::span<const storage::Migration> Migrations() noexcept;

// The smallest string above every string that starts with `prefix` (bytewise, as the
// "C" collation compares), keeping valid UTF-8: `prefix` with its last code point
// incremented. nullopt when no such bound exists (a prefix of only U+10FFFF).
std::optional<std::string> PrefixUpperBound(std::string_view prefix);

class ItemStore {
 public:
  explicit ItemStore(storage::Database& db) noexcept : db_(db) {}

  // Inserts a new item (version 1). Throws storage::ConstraintViolation if `id` exists.
  asio::awaitable<Item> Create(const telemetry::RequestContext& context, Item item,
                               std::int64_t now_ms);
  asio::awaitable<std::optional<Item>> Get(const telemetry::RequestContext& context,
                                           std::string id);
  // Replaces the item's fields; nullopt when there is no such item.
  asio::awaitable<std::optional<Item>> Update(const telemetry::RequestContext& context, Item item,
                                              std::int64_t now_ms);
  // False when there was no such item.
  asio::awaitable<bool> Delete(const telemetry::RequestContext& context, std::string id);
  asio::awaitable<ItemPage> List(const telemetry::RequestContext& context, ListQuery query);

  // In one transaction: records the reservation and takes each line's quantity from
  // its item's stock (never below zero), or changes nothing and throws UnknownItem or
  // InsufficientStock. An existing reservation with `request.id` is returned as stored
  // (created = false) and changes nothing. Lines must name distinct items.
  asio::awaitable<Reservation> Reserve(const telemetry::RequestContext& context,
                                       Reservation request, std::int64_t now_ms);
  // Gives a reservation's stock back, once: the ids of the items whose stock changed
  // (empty for an unknown or already released reservation).
  asio::awaitable<std::vector<std::string>> Release(const telemetry::RequestContext& context,
                                                    std::string id, std::int64_t now_ms);

 private:
  storage::Database& db_;
};

}  // namespace vigil::catalog

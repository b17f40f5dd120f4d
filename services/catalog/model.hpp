// The catalog's domain: items and stock reservations as stored and answered, and the
// pure functions around them: reading and validating request bodies and query strings,
// the JSON answered to clients. Nothing here does I/O, so the rules (bounds, field names
// in errors) are tested without a server.
//
//   catalog::ItemFields fields = catalog::ReadItemFields(ex);           // 400/415/422
//   catalog::RenderedItem rendered = catalog::RenderItem(item);         // body + ETag
//
// Thread-safety: value types and pure functions; use from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::http {
class Exchange;
}

namespace vigil::catalog {

// Bound of price_cents, stock and a reservation line's quantity.
inline constexpr std::int64_t kMaxAmount = 1'000'000'000;
// Characters of an item's name, and of a search prefix.
inline constexpr std::size_t kMaxNameLength = 200;
// Lines of one reservation.
inline constexpr std::size_t kMaxLines = 100;
// The page size of a listing when `limit` is absent, and its largest value.
inline constexpr std::int64_t kDefaultListLimit = 20;
inline constexpr std::int64_t kMaxListLimit = 100;

struct ItemFields {
  std::string name;
  std::string category;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
};

struct Item {
  std::string id;
  ItemFields fields;
};

// One page of a listing, ordered by id. `more` when rows follow the last one.
struct ItemPage {
  std::vector<Item> items;
  bool more = false;
};

struct ListQuery {
  std::string prefix;    // empty: any name
  std::string category;  // empty: any category
  std::string after;     // the last id of the previous page; empty: from the start
  std::int64_t limit = kDefaultListLimit;
};

struct ReservationLine {
  std::string item_id;
  std::int64_t quantity = 0;
  std::int64_t price_cents = 0;  // the item's price when reserved (filled by Reserve)
};

struct Reservation {
  std::string id;
  std::vector<ReservationLine> lines;
  // True when this call made the reservation; false when it existed already (the
  // stored one is returned, whatever the request said).
  bool created = false;
};

// A reservation named an item that does not exist; nothing was reserved.
class UnknownItem : public std::runtime_error {
 public:
  UnknownItem(std::size_t line, std::string item_id)
      : std::runtime_error("unknown item " + item_id), line_(line), item_id_(std::move(item_id)) {}
  std::size_t line() const noexcept { return line_; }  // index in the request's lines
  const std::string& item_id() const noexcept { return item_id_; }

 private:
  std::size_t line_;
  std::string item_id_;
};

// A reservation line asked for more than the item's stock; nothing was reserved.
class InsufficientStock : public std::runtime_error {
 public:
  explicit InsufficientStock(std::string item_id)
      : std::runtime_error("insufficient stock for item " + item_id),
        item_id_(std::move(item_id)) {}
  const std::string& item_id() const noexcept { return item_id_; }

 private:
  std::string item_id_;
};

// An item as served: its JSON body and the strong ETag of that body.
struct RenderedItem {
  std::string body;
  std::string etag;
};

// 1 to 64 characters of [a-z0-9-].
bool IsValidCategory(std::string_view category) noexcept;
// The item's JSON: {"id","name","category","price_cents","stock"}.
std::string ItemJson(const Item& item);
// ItemJson and its strong ETag.
RenderedItem RenderItem(const Item& item);
// {"id","lines":[{"item_id","quantity","price_cents"}]}
std::string ReservationJson(const Reservation& reservation);

// The body of POST /items and PUT /items/{id}: {"name","category","price_cents","stock"}
// within their bounds and no other field. Throws http::HttpError 400 (not a JSON object),
// 415 (not JSON) or 422 naming the field.
ItemFields ReadItemFields(const http::Exchange& exchange);

// The query of GET /items: q (a name prefix, at most kMaxNameLength characters of UTF-8),
// category, limit (1..kMaxListLimit, default kDefaultListLimit) and cursor (a
// next_cursor this listing returned); empty q and category filter nothing. Throws
// http::HttpError 422 naming the parameter for a bad q, category, limit or cursor, 400
// naming it when it is repeated or its percent-encoding is malformed.
ListQuery ReadListQuery(const http::Exchange& exchange);

// The body of POST /reservations: {"id","lines":[{"item_id","quantity"}]} with an order
// id, 1..kMaxLines lines of distinct valid item ids and quantities 1..kMaxAmount, and no
// other field. Throws http::HttpError 400, 415 or 422 naming the field.
Reservation ReadReservation(const http::Exchange& exchange);

}  // namespace vigil::catalog

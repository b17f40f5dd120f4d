// An order as the orders service stores and answers it, and the pure functions around
// it: reading a create request, the Idempotency-Key header, the request's fingerprint,
// the JSON answered to clients.
//
// Handlers use these between the request and the store; nothing here does I/O, so the
// rules (limits, canonical form, field names in errors) are tested without a server.
//
//   std::vector<orders::LineRequest> lines = orders::ReadCreateOrder(ex);      // 400/422
//   std::optional<std::string> key = orders::ReadIdempotencyKey(ex);           // 400
//   std::string hash = orders::RequestHash(lines);
//
// Thread-safety: value types and pure functions; use from any thread.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::http {
class Exchange;
}

namespace vigil::orders {

inline constexpr std::size_t kMaxLines = 50;
inline constexpr std::int64_t kMaxQuantity = 1000;
inline constexpr std::size_t kMaxIdempotencyKey = 255;
inline constexpr std::string_view kIdempotencyKeyHeader = "Idempotency-Key";
// How long an Idempotency-Key is remembered unless configured otherwise (OrdersOptions).
inline constexpr std::chrono::seconds kDefaultIdempotencyTtl = std::chrono::hours(24);

// One line as the client asks for it.
struct LineRequest {
  std::string item_id;
  std::int64_t quantity = 0;
  friend bool operator==(const LineRequest&, const LineRequest&) = default;
};

// One line as reserved and stored: the price is the catalog's at reservation time.
struct OrderLine {
  std::string item_id;
  std::int64_t quantity = 0;
  std::int64_t price_cents = 0;
  friend bool operator==(const OrderLine&, const OrderLine&) = default;
};

struct Order {
  std::string id;
  std::string user_id;
  std::string status;
  std::int64_t total_cents = 0;
  std::int64_t created_at_ms = 0;  // Unix time in milliseconds
  std::vector<OrderLine> lines;    // sorted by item_id
};

// The body of POST /orders: {"lines":[{"item_id","quantity"}]} with 1..kMaxLines lines,
// each item_id a valid id, each quantity 1..kMaxQuantity, no item twice and no other
// field. Returns the lines sorted by item_id (the order of lines carries no meaning, so
// the stored order, the answer and the fingerprint do not depend on it). Throws
// http::HttpError 400 (not a JSON object), 415 (not JSON) or 422 naming the field
// ("lines[2].quantity: ...").
std::vector<LineRequest> ReadCreateOrder(const http::Exchange& exchange);
std::vector<LineRequest> ReadCreateOrder(boost::json::object body);

// The Idempotency-Key header: nullopt when absent; 1..kMaxIdempotencyKey visible ASCII
// characters, sent once. Throws http::HttpError 400 otherwise.
std::optional<std::string> ReadIdempotencyKey(const http::Exchange& exchange);
// True for 1..kMaxIdempotencyKey characters in '!'..'~'.
bool IsValidIdempotencyKey(std::string_view key) noexcept;

// The lowercase hex SHA-256 of the canonical form of `lines` (sorted as
// ReadCreateOrder returns them): "<item_id>=<quantity>\n" per line. Two requests with
// the same lines in any order have the same hash.
std::string RequestHash(std::span<const LineRequest> lines);

// `unix_ms` as RFC 3339 in UTC with milliseconds: "2026-11-22T13:05:10.123Z".
std::string FormatTimestamp(std::int64_t unix_ms);

// {"id","status","total_cents","lines":[{"item_id","quantity","price_cents"}],"created_at"}
boost::json::object OrderJson(const Order& order);

}  // namespace vigil::orders

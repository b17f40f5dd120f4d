// The orders service's tables (their migrations) and every statement it runs on them.
//
// Three tables, valid on SQLite and PostgreSQL alike: orders (one row per order, indexed
// by (user_id, id) so that a user's orders read newest first), order_lines (the items of
// an order with the price reserved at the catalog) and idempotency_keys (which request,
// by its fingerprint, a client's Idempotency-Key was first used for, and which order id
// it was given).
//
// A key is remembered for the idempotency TTL: past it, ClaimKey takes the key as new
// (the request makes a new order) and PurgeKeys deletes it, so the table holds about
// one TTL's worth of keys.
//
//   orders::OrderStore store(db, std::chrono::hours(24));
//   auto claim = co_await store.ClaimKey(ex.context(), user, key, hash, NewId(), now_ms);
//   co_await store.Insert(ex.context(), order);
//
// Thread-safety: an OrderStore is safe to use from every worker at once (the Database is).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/context.hpp>

#include "model.hpp"

namespace vigil::orders {

namespace asio = boost::asio;

// How ClaimKey found an Idempotency-Key.
enum class KeyOutcome {
  kClaimed,     // this request owns the key: create the order under KeyClaim::order_id
  kReplay,      // the same request already made KeyClaim::order: answer it again
  kInProgress,  // the same request was made and has not finished (or failed) yet
  kMismatch,    // the key was used for a different request
};

struct KeyClaim {
  KeyOutcome outcome = KeyOutcome::kClaimed;
  std::string order_id;        // kClaimed: the id to use (a new one, or an abandoned one's)
  std::optional<Order> order;  // kReplay
};

// The orders schema, for Database::Migrate("orders", ...).
std::span<const storage::Migration> Migrations() noexcept;

class OrderStore {
 public:
  // A claimed key whose order was never stored (the process stopped mid-request) is
  // taken over by the next identical request once it is this old. Longer than any
  // request can take, so a request still running is never overtaken.
  static constexpr std::chrono::milliseconds kAbandonedAfter = std::chrono::minutes(5);

  explicit OrderStore(storage::Database& db,
                      std::chrono::seconds idempotency_ttl = kDefaultIdempotencyTtl) noexcept
      : db_(db), idempotency_ttl_(idempotency_ttl) {}

  // Records that `user_id` used `key` for the request fingerprinted `request_hash`,
  // to be created as order `order_id` — unless the key was used before, in which case
  // the outcome says how (see KeyOutcome). One transaction.
  //
  // A key claimed at least the idempotency TTL before `now_ms` counts as never used: it
  // is taken over for this request (compare-and-set, so of two such requests one wins
  // and the other is kInProgress). Except that a claim whose order was never stored is
  // kInProgress until kAbandonedAfter whatever the TTL: its request may still be running.
  asio::awaitable<KeyClaim> ClaimKey(const telemetry::RequestContext& context,
                                     std::string_view user_id, std::string_view key,
                                     std::string_view request_hash, std::string_view order_id,
                                     std::int64_t now_ms);
  // Deletes the claim of `key` made for `order_id`, so that a retry of a request that
  // failed can proceed.
  asio::awaitable<void> ForgetKey(const telemetry::RequestContext& context,
                                  std::string_view user_id, std::string_view key,
                                  std::string_view order_id);

  // Stores the order and its lines in one transaction. Throws storage::ConstraintViolation
  // when an order with this id exists.
  asio::awaitable<void> Insert(const telemetry::RequestContext& context, const Order& order);

  // The order `order_id` when it belongs to `user_id`.
  asio::awaitable<std::optional<Order>> Find(const telemetry::RequestContext& context,
                                             std::string_view user_id, std::string_view order_id);

  // Up to `limit` of the user's orders, newest first, older than the order `before`
  // when given (the cursor of the next page).
  asio::awaitable<std::vector<Order>> List(const telemetry::RequestContext& context,
                                           std::string_view user_id, std::int64_t limit,
                                           std::optional<std::string> before);

  // Deletes up to service::kPurgeBatch keys claimed before `now_ms` minus the idempotency
  // TTL (and minus kAbandonedAfter at least, so that no running request loses its claim),
  // in one transaction. Returns the rows deleted: fewer than service::kPurgeBatch when no
  // more are due.
  asio::awaitable<std::int64_t> PurgeKeys(const telemetry::RequestContext& context,
                                          std::int64_t now_ms);

  std::chrono::seconds idempotency_ttl() const noexcept { return idempotency_ttl_; }

 private:
  storage::Database& db_;
  std::chrono::seconds idempotency_ttl_;
};

}  // namespace vigil::orders

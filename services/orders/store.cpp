#include "store.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vigil/service/retention.hpp>

namespace vigil::orders {

namespace {

using storage::Param;
using storage::Row;
using storage::Session;
using storage::Statement;

constexpr std::string_view kSchema = R"(
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  status TEXT NOT NULL,
  total_cents BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX orders_user_id_id ON orders (user_id, id);
CREATE TABLE order_lines (
  order_id TEXT NOT NULL REFERENCES orders (id),
  item_id TEXT NOT NULL,
  quantity BIGINT NOT NULL,
  price_cents BIGINT NOT NULL,
  PRIMARY KEY (order_id, item_id)
);
CREATE TABLE idempotency_keys (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  order_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, key)
)
)";

constexpr std::array<storage::Migration, 2> kMigrations{{
    {1, "orders, order_lines, idempotency_keys", kSchema},
    // The purge takes the oldest keys first, from a range of this index.
    {2, "index idempotency_keys by created_at",
     "CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at)"},
}};

// RETURNING yields a row only when the insert happened, on both engines: the answer
// does not depend on how a driver counts rows for ON CONFLICT DO NOTHING.
const Statement kClaimKey{
    "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING RETURNING order_id"};
const Statement kGetKey{
    "SELECT request_hash, order_id, created_at FROM idempotency_keys "
    "WHERE user_id = $1 AND key = $2"};
// Compare-and-set on created_at: of two requests taking over one abandoned key, one wins.
const Statement kTakeOverKey{
    "UPDATE idempotency_keys SET created_at = $3 "
    "WHERE user_id = $1 AND key = $2 AND created_at = $4 RETURNING order_id"};
// Compare-and-set on created_at, like kTakeOverKey: an expired key starts afresh for a
// new request (its fingerprint, its order id).
const Statement kRenewKey{
    "UPDATE idempotency_keys SET request_hash = $3, order_id = $4, created_at = $5 "
    "WHERE user_id = $1 AND key = $2 AND created_at = $6 RETURNING order_id"};
const Statement kOrderExists{"SELECT 1 FROM orders WHERE id = $1 AND user_id = $2"};
// Up to service::kPurgeBatch of the oldest keys, from a range of the created_at index. Matching
// created_at too makes the delete a compare-and-set: on PostgreSQL, a key that a
// concurrent claim renewed after the subquery chose it no longer matches when the
// delete, having waited for that claim, checks the row again, and stays. The LIMIT is a
// literal so that PostgreSQL's generic plan knows how small the batch is.
const Statement kPurgeKeys{
    "DELETE FROM idempotency_keys WHERE (user_id, key, created_at) IN ("
    "SELECT user_id, key, created_at FROM idempotency_keys WHERE created_at < $1 LIMIT " +
    std::to_string(service::kPurgeBatch) + ")"};
const Statement kForgetKey{
    "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND order_id = $3"};

const Statement kInsertOrder{
    "INSERT INTO orders (id, user_id, status, total_cents, created_at) "
    "VALUES ($1, $2, $3, $4, $5)"};
const Statement kInsertLine{
    "INSERT INTO order_lines (order_id, item_id, quantity, price_cents) "
    "VALUES ($1, $2, $3, $4)"};

// Orders come with their lines in one query; the columns are those ReadOrders expects.
const Statement kFindOrder{
    "SELECT o.id, o.user_id, o.status, o.total_cents, o.created_at, "
    "l.item_id, l.quantity, l.price_cents "
    "FROM orders o JOIN order_lines l ON l.order_id = o.id "
    "WHERE o.id = $1 AND o.user_id = $2 ORDER BY l.item_id"};
const Statement kListOrders{
    "SELECT o.id, o.user_id, o.status, o.total_cents, o.created_at, "
    "l.item_id, l.quantity, l.price_cents "
    "FROM orders o JOIN order_lines l ON l.order_id = o.id "
    "WHERE o.id IN (SELECT id FROM orders WHERE user_id = $1 ORDER BY id DESC LIMIT $2) "
    "ORDER BY o.id DESC, l.item_id"};
const Statement kListOrdersBefore{
    "SELECT o.id, o.user_id, o.status, o.total_cents, o.created_at, "
    "l.item_id, l.quantity, l.price_cents "
    "FROM orders o JOIN order_lines l ON l.order_id = o.id "
    "WHERE o.id IN (SELECT id FROM orders WHERE user_id = $1 AND id < $3 "
    "ORDER BY id DESC LIMIT $2) "
    "ORDER BY o.id DESC, l.item_id"};

// Rows of kFindOrder / kListOrders, grouped by order (they arrive sorted by order id).
std::vector<Order> ReadOrders(std::vector<Row>& rows) {
  std::vector<Order> orders;
  for (const Row& row : rows) {
    if (orders.empty() || orders.back().id != row.Text(0)) {
      Order order;
      order.id = row.Text(0);
      order.user_id = row.Text(1);
      order.status = row.Text(2);
      order.total_cents = row.Int(3);
      order.created_at_ms = row.Int(4);
      orders.push_back(std::move(order));
    }
    orders.back().lines.push_back(OrderLine{std::string(row.Text(5)), row.Int(6), row.Int(7)});
  }
  return orders;
}

std::optional<Order> FindOrder(Session& session, std::string_view user_id,
                               std::string_view order_id) {
  storage::Result result = session.Query(kFindOrder, {order_id, user_id});
  std::vector<Order> orders = ReadOrders(result.rows);
  if (orders.empty()) return std::nullopt;
  return std::move(orders.front());
}

}  // namespace

std::span<const storage::Migration> Migrations() noexcept { return kMigrations; }

asio::awaitable<KeyClaim> OrderStore::ClaimKey(const telemetry::RequestContext& context,
                                               std::string_view user_id, std::string_view key,
                                               std::string_view request_hash,
                                               std::string_view order_id, std::int64_t now_ms) {
  const std::int64_t ttl_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(idempotency_ttl_).count();
  co_return co_await db_.Transact(context, [&](Session& s) -> KeyClaim {
    if (s.Query(kClaimKey, {user_id, key, request_hash, order_id, now_ms}).FirstRow()) {
      return KeyClaim{KeyOutcome::kClaimed, std::string(order_id), std::nullopt};
    }
    std::optional<Row> existing = s.Query(kGetKey, {user_id, key}).FirstRow();
    if (!existing) {
      // Forgotten between our insert and this read (its request failed): a retry by the
      // client will claim it; this request must not guess.
      return KeyClaim{KeyOutcome::kInProgress, {}, std::nullopt};
    }
    const std::int64_t claimed_at = existing->Int(2);
    if (now_ms - claimed_at >= ttl_ms) {
      // Past its retention the key is treated as the purge would leave it: absent.
      const bool settled =
          now_ms - claimed_at >= kAbandonedAfter.count() ||
          s.Query(kOrderExists, {existing->Text(1), user_id}).FirstRow().has_value();
      if (settled) {
        if (s.Query(kRenewKey, {user_id, key, request_hash, order_id, now_ms, claimed_at})
                .FirstRow()) {
          return KeyClaim{KeyOutcome::kClaimed, std::string(order_id), std::nullopt};
        }
      }
      return KeyClaim{KeyOutcome::kInProgress, {}, std::nullopt};
    }
    if (existing->Text(0) != request_hash) return KeyClaim{KeyOutcome::kMismatch, {}, std::nullopt};
    std::string existing_order(existing->Text(1));
    if (auto order = FindOrder(s, user_id, existing_order)) {
      return KeyClaim{KeyOutcome::kReplay, std::move(existing_order), std::move(order)};
    }
    if (now_ms - claimed_at < kAbandonedAfter.count()) {
      return KeyClaim{KeyOutcome::kInProgress, {}, std::nullopt};
    }
    // Abandoned: reuse its order id, so that the catalog (idempotent per reservation id)
    // answers with whatever the abandoned request reserved instead of reserving twice.
    if (auto taken = s.Query(kTakeOverKey, {user_id, key, now_ms, claimed_at}).FirstRow()) {
      return KeyClaim{KeyOutcome::kClaimed, std::string(taken->Text(0)), std::nullopt};
    }
    return KeyClaim{KeyOutcome::kInProgress, {}, std::nullopt};
  });
}

asio::awaitable<void> OrderStore::ForgetKey(const telemetry::RequestContext& context,
                                            std::string_view user_id, std::string_view key,
                                            std::string_view order_id) {
  co_await db_.Transact(context, [&](Session& s) {
    s.Query(kForgetKey, {user_id, key, order_id});
    return 0;
  });
}

asio::awaitable<void> OrderStore::Insert(const telemetry::RequestContext& context,
                                         const Order& order) {
  co_await db_.Transact(context, [&](Session& s) {
    s.Query(kInsertOrder,
            {order.id, order.user_id, order.status, order.total_cents, order.created_at_ms});
    for (const OrderLine& line : order.lines) {
      s.Query(kInsertLine, {order.id, line.item_id, line.quantity, line.price_cents});
    }
    return 0;
  });
}

asio::awaitable<std::optional<Order>> OrderStore::Find(const telemetry::RequestContext& context,
                                                       std::string_view user_id,
                                                       std::string_view order_id) {
  co_return co_await db_.Transact(context,
                                  [&](Session& s) { return FindOrder(s, user_id, order_id); });
}

asio::awaitable<std::vector<Order>> OrderStore::List(const telemetry::RequestContext& context,
                                                     std::string_view user_id, std::int64_t limit,
                                                     std::optional<std::string> before) {
  co_return co_await db_.Transact(context, [&](Session& s) {
    storage::Result result =
        before ? s.Query(kListOrdersBefore, {user_id, limit, std::string_view(*before)})
               : s.Query(kListOrders, {user_id, limit});
    return ReadOrders(result.rows);
  });
}

asio::awaitable<std::int64_t> OrderStore::PurgeKeys(const telemetry::RequestContext& context,
                                                    std::int64_t now_ms) {
  const std::int64_t keep_ms =
      std::max(std::chrono::duration_cast<std::chrono::milliseconds>(idempotency_ttl_).count(),
               static_cast<std::int64_t>(kAbandonedAfter.count()));
  const std::int64_t cutoff = now_ms - keep_ms;
  co_return co_await db_.Transact(
      context, [&](Session& s) { return s.Query(kPurgeKeys, {cutoff}).affected; });
}

}  // namespace vigil::orders

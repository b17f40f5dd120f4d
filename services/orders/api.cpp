#include "api.hpp"

#include <sodium.h>

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <exception>
#include <vigil/service/clock.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/service/query.hpp>

namespace vigil::orders {

const std::string_view kDefaultLimits = R"({"policies": [
  {"name": "orders-per-user", "key": ["user"], "quota": 60, "window_s": 60, "burst": 20,
   "match": [{"prefix": "/orders", "methods": ["POST"]}]}]})";

namespace {

namespace json = boost::json;

constexpr std::string_view kConfirmed = "confirmed";

// An order's body is kMaxLines short lines; refusing large ones early costs nothing.
constexpr std::uint64_t kMaxBodyBytes = 64 * 1024;

void RespondCreated(http::Exchange& ex, const Order& order, bool replayed) {
  ex.RespondJson(201, json::serialize(OrderJson(order)));
  ex.response().set(boost::beast::http::field::location, "/api/orders/" + order.id);
  if (replayed) ex.response().set("Idempotent-Replayed", "true");
}

http::HttpError NoSuchOrder() { return http::HttpError(404, "no such order"); }

}  // namespace

OrdersApi::OrdersApi(storage::Database& db, http::Client& catalog,
                     const service::IdentitySigner& identity, telemetry::Telemetry& telemetry,
                     std::chrono::seconds idempotency_ttl)
    : store_(db, idempotency_ttl),
      catalog_(catalog, identity, telemetry.log()),
      identity_(identity),
      log_(telemetry.log()),
      created_(telemetry.metrics().AddCounter(
          "vigil_orders_created_total",
          "Orders created (an Idempotency-Key replay creates none).")),
      value_cents_(telemetry.metrics().AddCounter("vigil_orders_value_cents_total",
                                                  "The totals of the orders created, in cents.")),
      retention_(telemetry.log(), service::WallClockMillis,
                 {{"idempotency_keys", "expired idempotency keys purged",
                   telemetry.metrics().AddCounter(
                       "vigil_orders_idempotency_keys_purged_total",
                       "Idempotency-Keys deleted by the retention purge, past their TTL."),
                   [this](const telemetry::RequestContext& context, std::int64_t now_ms) {
                     return store_.PurgeKeys(context, now_ms);
                   }}}) {
  // Safe to call any number of times; the hash functions need nothing else.
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

void OrdersApi::AddRoutes(service::ServiceHost& host) {
  host.Route("POST", "/orders", [this](http::Exchange& ex) { return Create(ex); },
             {.max_body_bytes = kMaxBodyBytes});
  host.Route("GET", "/orders", [this](http::Exchange& ex) { return List(ex); });
  host.Route("GET", "/orders/{id}", [this](http::Exchange& ex) { return Get(ex); });
}

asio::awaitable<void> OrdersApi::Create(http::Exchange& ex) {
  const std::string user = service::RequireUser(ex, identity_);
  const std::optional<std::string> key = ReadIdempotencyKey(ex);
  const std::vector<LineRequest> lines = ReadCreateOrder(ex);
  const std::int64_t now_ms = service::WallClockMillis();
  std::string order_id = service::NewId();

  if (key) {
    KeyClaim claim =
        co_await store_.ClaimKey(ex.context(), user, *key, RequestHash(lines), order_id, now_ms);
    switch (claim.outcome) {
      case KeyOutcome::kReplay:
        RespondCreated(ex, *claim.order, true);
        co_return;
      case KeyOutcome::kInProgress:
        throw http::HttpError(409, "a request with this Idempotency-Key is in progress")
            .WithErrorType("idempotency_in_progress");
      case KeyOutcome::kMismatch:
        throw http::HttpError(422, "Idempotency-Key was used with a different request")
            .WithErrorType("idempotency_mismatch");
      case KeyOutcome::kClaimed:
        order_id = std::move(claim.order_id);
        break;
    }
  }

  Order order;
  order.id = order_id;
  order.user_id = user;
  order.status = kConfirmed;
  order.created_at_ms = now_ms;
  std::exception_ptr failure;
  bool release = false;
  bool exists = false;
  try {
    try {
      order.lines = co_await catalog_.Reserve(ex.worker(), ex.context(), order.id, lines);
    } catch (const http::HttpError& e) {
      release = CatalogReservations::MayHaveReserved(e);
      throw;
    }
    release = true;
    for (const OrderLine& line : order.lines) order.total_cents += line.quantity * line.price_cents;
    co_await store_.Insert(ex.context(), order);
  } catch (const storage::ConstraintViolation&) {
    // Only a request that took over an abandoned key can meet an order with its id:
    // the abandoned request finished after all, and the reservation is that order's.
    failure = std::current_exception();
    release = false;
    exists = true;
  } catch (...) {
    failure = std::current_exception();
  }

  if (failure) {
    if (exists && key) {
      if (auto stored = co_await store_.Find(ex.context(), user, order.id)) {
        RespondCreated(ex, *stored, true);
        co_return;
      }
    }
    if (release) co_await Release(ex, order.id);
    if (key) co_await ForgetKey(ex, user, *key, order.id);
    std::rethrow_exception(failure);
  }

  created_.Inc(1, ex.context().span);
  value_cents_.Inc(static_cast<double>(order.total_cents), ex.context().span);
  log_.Info(ex.context(), "order created",
            {{"order.id", order.id},
             {"order.lines", order.lines.size()},
             {"order.total_cents", order.total_cents}});
  RespondCreated(ex, order, false);
}

asio::awaitable<void> OrdersApi::List(http::Exchange& ex) {
  const std::string user = service::RequireUser(ex, identity_);
  const std::int64_t limit = service::QueryLimit(ex.query(), kDefaultListLimit, kMaxListLimit);
  std::optional<std::string> cursor = service::QueryParam(ex.query(), "cursor");
  if (cursor && !service::IsValidId(*cursor)) {
    throw http::HttpError(422, "cursor: must be the next_cursor of an earlier page");
  }
  const std::vector<Order> orders =
      co_await store_.List(ex.context(), user, limit, std::move(cursor));
  json::array items;
  items.reserve(orders.size());
  for (const Order& order : orders) items.push_back(OrderJson(order));
  json::value next = nullptr;
  if (static_cast<std::int64_t>(orders.size()) == limit) next = json::string(orders.back().id);
  ex.RespondJson(200, json::serialize(json::object{{"orders", std::move(items)},
                                                   {"next_cursor", std::move(next)}}));
}

asio::awaitable<void> OrdersApi::Get(http::Exchange& ex) {
  const std::string user = service::RequireUser(ex, identity_);
  const std::string id = service::DecodePathSegment(ex.Param("id"));
  if (!service::IsValidId(id)) throw NoSuchOrder();
  const std::optional<Order> order = co_await store_.Find(ex.context(), user, id);
  if (!order) throw NoSuchOrder();
  ex.RespondJson(200, json::serialize(OrderJson(*order)));
}

asio::awaitable<void> OrdersApi::Release(http::Exchange& ex, const std::string& order_id) {
  std::string error;
  try {
    co_await catalog_.Release(ex.worker(), ex.context(), order_id);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (error.empty()) {
    log_.Warn(ex.context(), "reservation released after a failed order", {"order.id", order_id});
  } else {
    // The stock stays held at the catalog until an operator releases it.
    log_.Error(ex.context(), "releasing the reservation of a failed order failed",
               {{"order.id", order_id}, {"error.message", error}});
  }
}

asio::awaitable<void> OrdersApi::ForgetKey(http::Exchange& ex, const std::string& user_id,
                                           const std::string& key, const std::string& order_id) {
  std::string error;
  try {
    co_await store_.ForgetKey(ex.context(), user_id, key, order_id);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    // A retry with this key answers 409 until the claim is abandoned (OrderStore).
    log_.Error(ex.context(), "forgetting the Idempotency-Key of a failed order failed",
               {{"order.id", order_id}, {"error.message", error}});
  }
}

}  // namespace vigil::orders

#include "api.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <functional>
#include <unordered_set>
#include <vector>
#include <vigil/http/etag.hpp>
#include <vigil/service/base64url.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/service/service.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::catalog {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::int64_t kMaxAmount = 1'000'000'000;  // price_cents, stock and quantity bound
constexpr std::size_t kMaxNameLength = 200;
constexpr std::size_t kMaxLines = 100;
constexpr std::int64_t kDefaultLimit = 20;
constexpr std::int64_t kMaxLimit = 100;
// Item and reservation bodies are small; refusing large ones early costs nothing.
constexpr std::uint64_t kMaxBodyBytes = 64 * 1024;

std::int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ids are validated before anything reaches the database: a path that cannot name an
// item is simply not found.
std::string RequireItemId(const http::Exchange& ex) {
  const std::string_view id = ex.Param("id");
  if (!service::IsValidId(id)) throw http::HttpError(404, "no such item");
  return std::string(id);
}

ItemFields ReadItemFields(const http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  ItemFields f;
  f.name = body.String("name", 1, kMaxNameLength);
  f.category = body.String("category", 1, 64);
  if (!IsValidCategory(f.category)) {
    throw http::HttpError(422, "category: must be 1 to 64 characters of a-z, 0-9 and '-'");
  }
  f.price_cents = body.Integer("price_cents", 0, kMaxAmount);
  f.stock = body.Integer("stock", 0, kMaxAmount);
  body.RejectUnknown();
  return f;
}

// Code points of valid UTF-8 without NUL (which neither engine stores in TEXT); nullopt
// for anything else.
std::optional<std::size_t> Utf8Length(std::string_view s) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); ++count) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c == 0) return std::nullopt;
    if (c < 0x80) {
      n = 1;
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07u;
    } else {
      return std::nullopt;
    }
    if (i + n > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    i += n;
  }
  return count;
}

std::int64_t ParseLimit(std::string_view text) {
  const auto bad = [] {
    return http::HttpError(422,
                           "limit: must be an integer between 1 and " + std::to_string(kMaxLimit));
  };
  if (text.empty() || text.size() > 3) throw bad();
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') throw bad();
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > kMaxLimit) throw bad();
  return value;
}

ListQuery ReadListQuery(const http::Exchange& ex) {
  const std::string_view query = ex.query();
  ListQuery q;
  q.limit = kDefaultLimit;
  if (auto limit = service::QueryParam(query, "limit")) q.limit = ParseLimit(*limit);
  // An empty q or category (an empty search box) filters nothing.
  if (auto prefix = service::QueryParam(query, "q"); prefix && !prefix->empty()) {
    const auto length = Utf8Length(*prefix);
    if (!length || *length > kMaxNameLength) {
      throw http::HttpError(
          422, "q: must be text of at most " + std::to_string(kMaxNameLength) + " characters");
    }
    q.prefix = std::move(*prefix);
  }
  if (auto category = service::QueryParam(query, "category"); category && !category->empty()) {
    if (!IsValidCategory(*category)) {
      throw http::HttpError(422, "category: must be 1 to 64 characters of a-z, 0-9 and '-'");
    }
    q.category = std::move(*category);
  }
  if (auto cursor = service::QueryParam(query, "cursor"); cursor && !cursor->empty()) {
    auto after = service::Base64UrlDecode(*cursor);
    if (!after || !service::IsValidId(*after)) {
      throw http::HttpError(400, "cursor: not a cursor this listing returned");
    }
    q.after = std::move(*after);
  }
  return q;
}

std::string ReservationJson(const Reservation& r) {
  json::object out;
  out.emplace("id", r.id);
  json::array lines;
  lines.reserve(r.lines.size());
  for (const ReservationLine& line : r.lines) {
    json::object l;
    l.emplace("item_id", line.item_id);
    l.emplace("quantity", line.quantity);
    l.emplace("price_cents", line.price_cents);
    lines.emplace_back(std::move(l));
  }
  out.emplace("lines", std::move(lines));
  return json::serialize(out);
}

// A 204 has neither body nor the metadata of one.
void RespondNoContent(http::Exchange& ex) {
  ex.Respond(204, "", "application/json");
  ex.response().erase(bhttp::field::content_type);
}

}  // namespace

CatalogOptions CatalogOptions::FromEnv() {
  CatalogOptions o;
  o.cache_size = static_cast<std::size_t>(
      telemetry::env::Integer("VIGIL_CATALOG_CACHE_SIZE", 10000, 0, 10'000'000));
  return o;
}

bool IsValidCategory(std::string_view category) noexcept {
  if (category.empty() || category.size() > 64) return false;
  for (const char c : category) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::string ItemJson(const Item& item) {
  json::object o;
  o.reserve(5);
  o.emplace("id", item.id);
  o.emplace("name", item.fields.name);
  o.emplace("category", item.fields.category);
  o.emplace("price_cents", item.fields.price_cents);
  o.emplace("stock", item.fields.stock);
  return json::serialize(o);
}

RenderedItem RenderItem(const Item& item) {
  RenderedItem r;
  r.body = ItemJson(item);
  r.etag = http::StrongEtag(r.body);
  return r;
}

// ---- ItemCache ---------------------------------------------------------------------------

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

// ---- CatalogApi --------------------------------------------------------------------------

CatalogApi::CatalogApi(storage::Database& db, telemetry::Registry& registry,
                       const service::IdentitySigner& identity, CatalogOptions options)
    : store_(db), identity_(identity), cache_(options.cache_size, registry) {}

void CatalogApi::AddRoutes(service::ServiceHost& host) {
  const http::RouteOptions small_body{.max_body_bytes = kMaxBodyBytes};
  host.Route(
      "POST", "/items", [this](http::Exchange& ex) { return CreateItem(ex); }, small_body);
  host.Route("GET", "/items", [this](http::Exchange& ex) { return ListItems(ex); });
  host.Route("GET", "/items/{id}", [this](http::Exchange& ex) { return GetItem(ex); });
  host.Route(
      "PUT", "/items/{id}", [this](http::Exchange& ex) { return UpdateItem(ex); }, small_body);
  host.Route("DELETE", "/items/{id}", [this](http::Exchange& ex) { return DeleteItem(ex); });
  host.Route(
      "POST", "/reservations", [this](http::Exchange& ex) { return CreateReservation(ex); },
      small_body);
  host.Route("DELETE", "/reservations/{id}",
             [this](http::Exchange& ex) { return ReleaseReservation(ex); });
}

void CatalogApi::RespondItem(http::Exchange& ex, unsigned status, const RenderedItem& item) const {
  ex.response().set(bhttp::field::etag, item.etag);
  ex.RespondJson(status, item.body);
}

asio::awaitable<void> CatalogApi::CreateItem(http::Exchange& ex) {
  service::RequireUser(ex, identity_);
  Item item{service::NewId(), ReadItemFields(ex)};
  item = co_await store_.Create(ex.context(), std::move(item), NowMillis());
  RespondItem(ex, 201, RenderItem(item));
}

asio::awaitable<void> CatalogApi::GetItem(http::Exchange& ex) {
  const std::string id = RequireItemId(ex);
  std::optional<RenderedItem> item = cache_.Get(id);
  if (!item) {
    const std::uint64_t stamp = cache_.Stamp(id);
    const std::optional<Item> stored = co_await store_.Get(ex.context(), id);
    if (!stored) throw http::HttpError(404, "no such item");
    item = RenderItem(*stored);
    cache_.Fill(id, *item, stamp);
  }
  // Clients may keep the item but must ask again before using it; asking with
  // If-None-Match costs a 304 without a body when nothing changed.
  ex.response().set(bhttp::field::cache_control, "no-cache");
  if (http::IfNoneMatchMatches(ex.header("if-none-match"), item->etag)) {
    ex.response().set(bhttp::field::etag, item->etag);
    ex.Respond(304, "", "application/json");
    // A 304 carries the validators and Vary of the 200 it stands for, not its
    // Content-Type.
    ex.response().erase(bhttp::field::content_type);
    ex.response().set(bhttp::field::vary, "Accept-Encoding");
    co_return;
  }
  RespondItem(ex, 200, *item);
}

asio::awaitable<void> CatalogApi::UpdateItem(http::Exchange& ex) {
  service::RequireUser(ex, identity_);
  Item item{RequireItemId(ex), ReadItemFields(ex)};
  const std::optional<Item> updated =
      co_await store_.Update(ex.context(), std::move(item), NowMillis());
  if (!updated) throw http::HttpError(404, "no such item");
  cache_.Invalidate(updated->id);
  RespondItem(ex, 200, RenderItem(*updated));
}

asio::awaitable<void> CatalogApi::DeleteItem(http::Exchange& ex) {
  service::RequireUser(ex, identity_);
  const std::string id = RequireItemId(ex);
  const bool deleted = co_await store_.Delete(ex.context(), id);
  if (!deleted) throw http::HttpError(404, "no such item");
  cache_.Invalidate(id);
  RespondNoContent(ex);
}

asio::awaitable<void> CatalogApi::ListItems(http::Exchange& ex) {
  ListQuery query = ReadListQuery(ex);
  const ItemPage page = co_await store_.List(ex.context(), std::move(query));
  std::string body = "{\"items\":[";
  for (std::size_t i = 0; i < page.items.size(); ++i) {
    if (i > 0) body += ',';
    body += ItemJson(page.items[i]);
  }
  body += "],\"next_cursor\":";
  if (page.more && !page.items.empty()) {
    // base64url never needs JSON escaping.
    body += '"';
    body += service::Base64UrlEncode(page.items.back().id);
    body += '"';
  } else {
    body += "null";
  }
  body += '}';
  ex.RespondJson(200, std::move(body));
}

asio::awaitable<void> CatalogApi::CreateReservation(http::Exchange& ex) {
  service::RequireService(ex, identity_, "orders");
  service::JsonReader body(service::ParseJsonObject(ex));
  Reservation request;
  request.id = body.String("id", 1, 64);
  if (!service::IsValidId(request.id)) {
    throw http::HttpError(422, "id: must be an order id (28 lowercase hex digits)");
  }
  std::vector<service::JsonReader> lines = body.Objects("lines", 1, kMaxLines);
  body.RejectUnknown();
  std::unordered_set<std::string> seen;
  for (service::JsonReader& line : lines) {
    ReservationLine l;
    l.item_id = line.String("item_id", 1, 64);
    if (!service::IsValidId(l.item_id)) {
      throw http::HttpError(422, line.path() + ".item_id: no such item " + l.item_id);
    }
    l.quantity = line.Integer("quantity", 1, kMaxAmount);
    line.RejectUnknown();
    if (!seen.insert(l.item_id).second) {
      throw http::HttpError(422, line.path() + ".item_id: the item appears in more than one line");
    }
    request.lines.push_back(std::move(l));
  }

  std::optional<Reservation> reservation;
  try {
    reservation = co_await store_.Reserve(ex.context(), std::move(request), NowMillis());
  } catch (const UnknownItem& e) {
    throw http::HttpError(
        422, "lines[" + std::to_string(e.line()) + "].item_id: no such item " + e.item_id());
  } catch (const InsufficientStock& e) {
    throw http::HttpError(409, "insufficient stock for item " + e.item_id());
  }
  if (reservation->created) {
    for (const ReservationLine& line : reservation->lines) cache_.Invalidate(line.item_id);
  }
  ex.RespondJson(reservation->created ? 201 : 200, ReservationJson(*reservation));
}

asio::awaitable<void> CatalogApi::ReleaseReservation(http::Exchange& ex) {
  service::RequireService(ex, identity_, "orders");
  const std::string_view id = ex.Param("id");
  // Releasing what does not exist is already done.
  if (service::IsValidId(id)) {
    const std::vector<std::string> changed =
        co_await store_.Release(ex.context(), std::string(id), NowMillis());
    for (const std::string& item_id : changed) cache_.Invalidate(item_id);
  }
  RespondNoContent(ex);
}

}  // namespace vigil::catalog

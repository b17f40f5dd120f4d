#include "api.hpp"

#include <vector>
#include <vigil/http/etag.hpp>
#include <vigil/service/base64url.hpp>
#include <vigil/service/clock.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/service.hpp>

namespace vigil::catalog {

namespace bhttp = boost::beast::http;

namespace {

// Item and reservation bodies are small; refusing large ones early costs nothing.
constexpr std::uint64_t kMaxBodyBytes = 64 * 1024;

// Ids are validated before anything reaches the database: a path that cannot name an
// item is simply not found.
std::string RequireItemId(const http::Exchange& ex) {
  const std::string_view id = ex.Param("id");
  if (!service::IsValidId(id)) throw http::HttpError(404, "no such item");
  return std::string(id);
}

// A 204 has neither body nor the metadata of one.
void RespondNoContent(http::Exchange& ex) {
  ex.Respond(204, "", "application/json");
  ex.response().erase(bhttp::field::content_type);
}

}  // namespace

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
  item = co_await store_.Create(ex.context(), std::move(item), service::WallClockMillis());
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
      co_await store_.Update(ex.context(), std::move(item), service::WallClockMillis());
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
  Reservation request = ReadReservation(ex);
  std::optional<Reservation> reservation;
  try {
    reservation =
        co_await store_.Reserve(ex.context(), std::move(request), service::WallClockMillis());
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
  // A path that cannot name a reservation is not found; releasing one that does not
  // exist (any more) is already done.
  if (!service::IsValidId(id)) throw http::HttpError(404, "no such reservation");
  const std::vector<std::string> changed =
      co_await store_.Release(ex.context(), std::string(id), service::WallClockMillis());
  for (const std::string& item_id : changed) cache_.Invalidate(item_id);
  RespondNoContent(ex);
}

}  // namespace vigil::catalog

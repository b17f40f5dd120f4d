#include "model.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <unordered_set>
#include <vigil/http/etag.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/service/base64url.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/service/query.hpp>

namespace vigil::catalog {

namespace json = boost::json;

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

ListQuery ReadListQuery(const http::Exchange& ex) {
  const std::string_view query = ex.query();
  ListQuery q;
  q.limit = service::QueryLimit(query, kDefaultListLimit, kMaxListLimit);
  // An empty q or category (an empty search box) filters nothing.
  if (auto prefix = service::QueryParam(query, "q"); prefix && !prefix->empty()) {
    // As a name is stored: UTF-8 without U+0000 (JsonReader::String).
    const auto length = service::Utf8Length(*prefix);
    if (!length || *length > kMaxNameLength || prefix->find('\0') != std::string::npos) {
      throw http::HttpError(422, "q: must be UTF-8 text of at most " +
                                     std::to_string(kMaxNameLength) + " characters");
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
      throw http::HttpError(422, "cursor: not a cursor this listing returned");
    }
    q.after = std::move(*after);
  }
  return q;
}

Reservation ReadReservation(const http::Exchange& ex) {
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
  return request;
}

}  // namespace vigil::catalog

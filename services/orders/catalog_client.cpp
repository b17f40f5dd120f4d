#include "catalog_client.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <string>
#include <vigil/telemetry/text.hpp>

namespace vigil::orders {

namespace {

namespace beast = boost::beast;
namespace json = boost::json;

constexpr std::string_view kCaller = "service:orders";
// A catalog detail passed on to the client is cut at this length.
constexpr std::size_t kMaxDetail = 300;

http::Client::Request NewRequest(beast::http::verb method, std::string target,
                                 const service::IdentitySigner& identity) {
  http::Client::Request request(method, target, 11);
  request.set(service::kIdentityHeader, identity.Sign(kCaller));
  return request;
}

// The catalog's words for a refusal the client can act on (a problem document's
// detail), or `fallback` when its body has none.
std::string CatalogDetail(const std::string& body, std::string_view fallback) {
  boost::system::error_code ec;
  const json::value value = json::parse(body, ec);
  if (!ec && value.is_object()) {
    const json::value* detail = value.get_object().if_contains("detail");
    if (detail != nullptr && detail->is_string() && !detail->get_string().empty()) {
      // Cut on a UTF-8 character boundary, so that the answer stays valid JSON text.
      return std::string(telemetry::text::Utf8Prefix(detail->get_string(), kMaxDetail));
    }
  }
  return std::string(fallback);
}

// The same failure, told as the catalog's rather than as an anonymous upstream's.
http::HttpError Unreachable(const http::HttpError& e) {
  std::string detail = e.status() == 504 ? "the catalog service did not answer in time"
                                         : "the catalog service could not be reached";
  return http::HttpError(e.status(), detail + "; try again shortly").WithErrorType(e.error_type());
}

http::HttpError InvalidReservation() {
  return http::HttpError(502, "the catalog service answered with an unusable reservation")
      .WithErrorType("catalog_invalid_response");
}

// The priced lines of a reservation answer, in the order of `lines`; nullopt unless
// every requested line is there, with its quantity and a price in range.
std::optional<std::vector<OrderLine>> PricedLines(const std::string& body,
                                                  std::string_view order_id,
                                                  std::span<const LineRequest> lines) {
  boost::system::error_code ec;
  const json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const json::object& reservation = value.get_object();
  const json::value* id = reservation.if_contains("id");
  const json::value* answered = reservation.if_contains("lines");
  if (id == nullptr || !id->is_string() || id->get_string() != order_id || answered == nullptr ||
      !answered->is_array() || answered->get_array().size() != lines.size()) {
    return std::nullopt;
  }
  std::vector<OrderLine> priced;
  priced.reserve(lines.size());
  for (const LineRequest& line : lines) {
    const json::array& items = answered->get_array();
    const auto match = std::find_if(items.begin(), items.end(), [&](const json::value& v) {
      const json::value* item = v.is_object() ? v.get_object().if_contains("item_id") : nullptr;
      return item != nullptr && item->is_string() && item->get_string() == line.item_id;
    });
    if (match == items.end()) return std::nullopt;
    const json::object& item = match->get_object();
    const json::value* quantity = item.if_contains("quantity");
    const json::value* price = item.if_contains("price_cents");
    if (quantity == nullptr || !quantity->is_int64() || quantity->get_int64() != line.quantity ||
        price == nullptr || !price->is_int64() || price->get_int64() < 0 ||
        price->get_int64() > kMaxPriceCents) {
      return std::nullopt;
    }
    priced.push_back(OrderLine{line.item_id, line.quantity, price->get_int64()});
  }
  return priced;
}

}  // namespace

asio::awaitable<std::vector<OrderLine>> CatalogReservations::Reserve(
    std::size_t worker, const telemetry::RequestContext& context, std::string_view order_id,
    std::span<const LineRequest> lines) {
  json::array body_lines;
  body_lines.reserve(lines.size());
  for (const LineRequest& line : lines) {
    body_lines.push_back(json::object{{"item_id", line.item_id}, {"quantity", line.quantity}});
  }
  const std::string body =
      json::serialize(json::object{{"id", order_id}, {"lines", std::move(body_lines)}});

  http::Client::Response response;
  for (int attempt = 0;; ++attempt) {
    http::Client::Request request = NewRequest(beast::http::verb::post, "/reservations", identity_);
    request.set(beast::http::field::content_type, "application/json");
    request.body() = body;
    try {
      response = co_await client_.Send(worker, context, std::move(request));
    } catch (const http::HttpError& e) {
      // A reservation is idempotent per id, so the POST may go again when a kept-alive
      // connection turned out closed (http::Client retries only idempotent methods).
      if (attempt == 0 && e.error_type() == "connection_reset") continue;
      throw Unreachable(e);
    }
    break;
  }

  const unsigned status = response.result_int();
  if (status == 200 || status == 201) {
    if (auto priced = PricedLines(response.body(), order_id, lines)) co_return std::move(*priced);
    log_.Error(context, "catalog answered an unusable reservation",
               {{"order.id", order_id}, {"http.response.status_code", status}});
    throw InvalidReservation();
  }
  if (status == 409) {
    throw http::HttpError(409, CatalogDetail(response.body(), "insufficient stock"))
        .WithErrorType("insufficient_stock");
  }
  if (status == 422) {
    throw http::HttpError(422, CatalogDetail(response.body(), "an item cannot be ordered"))
        .WithErrorType("unknown_item");
  }
  if (status == 503) {
    throw http::HttpError(503, "the catalog service is unavailable; try again shortly")
        .WithErrorType("catalog_unavailable");
  }
  // 401/403 here mean that the services disagree on the internal secret; other codes
  // are the catalog's own failures. Either way an operator needs to know, the client
  // only that it was not its fault.
  log_.Error(context, "catalog refused a reservation",
             {{"order.id", order_id}, {"http.response.status_code", status}});
  throw http::HttpError(502, "the catalog service failed to reserve stock; try again shortly")
      .WithErrorType("catalog_error");
}

asio::awaitable<void> CatalogReservations::Release(std::size_t worker,
                                                   const telemetry::RequestContext& context,
                                                   std::string_view order_id) {
  http::Client::Request request =
      NewRequest(beast::http::verb::delete_, "/reservations/" + std::string(order_id), identity_);
  http::Client::Response response;
  try {
    response = co_await client_.Send(worker, context, std::move(request));
  } catch (const http::HttpError& e) {
    throw Unreachable(e);
  }
  const unsigned status = response.result_int();
  // 404: there is nothing to give back, which is what was wanted.
  if ((status >= 200 && status < 300) || status == 404) co_return;
  throw http::HttpError(502, "the catalog service refused to release a reservation (status " +
                                 std::to_string(status) + ")")
      .WithErrorType("catalog_error");
}

bool CatalogReservations::MayHaveReserved(const http::HttpError& error) noexcept {
  if (error.status() != 502 && error.status() != 504) return false;
  // Refused: nothing was sent.
  return error.error_type() != "connection_refused";
}

}  // namespace vigil::orders

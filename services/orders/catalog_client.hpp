// The orders service's side of the catalog's reservation contract.
//
// POST /reservations {"id","lines"} reserves stock for every line at once and answers
// the price of each item; the same id again answers the same reservation, so a request
// repeated after an unclear failure never reserves twice. DELETE /reservations/{id}
// gives the stock back (also idempotent). Both calls carry X-Vigil-Identity for
// "service:orders" and the request's trace context.
//
//   orders::CatalogReservations catalog(client, host.identity(), telemetry.log());
//   std::vector<orders::OrderLine> priced =
//       co_await catalog.Reserve(ex.worker(), ex.context(), order_id, lines);
//
// Thread-safety: safe to use from every worker at once (http::Client is).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/log.hpp>

#include "model.hpp"

namespace vigil::orders {

namespace asio = boost::asio;

// Largest unit price accepted from the catalog, so that a total can never overflow:
// kMaxLines * kMaxQuantity * kMaxPriceCents < 2^63.
inline constexpr std::int64_t kMaxPriceCents = 1'000'000'000'000;

class CatalogReservations {
 public:
  // `log` receives what the client is not told: the catalog's unexpected answers.
  CatalogReservations(http::Client& client, const service::IdentitySigner& identity,
                      telemetry::Logger& log) noexcept
      : client_(client), identity_(identity), log_(log) {}

  // Reserves `lines` under `order_id` and returns them priced, in the same order.
  // Throws http::HttpError:
  //   409 / 422 with the catalog's detail (insufficient stock, unknown item): nothing was
  //       reserved;
  //   503 when the catalog says it is unavailable: nothing was reserved;
  //   502 / 504 when it could not be reached, failed or answered something unusable:
  //       MayHaveReserved() tells whether stock may nevertheless be held.
  // The catalog's own words reach the client only for 409 and 422.
  asio::awaitable<std::vector<OrderLine>> Reserve(std::size_t worker,
                                                  const telemetry::RequestContext& context,
                                                  std::string_view order_id,
                                                  std::span<const LineRequest> lines);

  // Gives back the stock reserved under `order_id`. Throws http::HttpError (502/504)
  // when the catalog cannot be reached or does not answer 2xx.
  asio::awaitable<void> Release(std::size_t worker, const telemetry::RequestContext& context,
                                std::string_view order_id);

  // True when a Reserve() that threw `error` may still have reserved stock at the
  // catalog (the request may have arrived; its answer was lost or unusable), so that
  // the reservation should be released.
  static bool MayHaveReserved(const http::HttpError& error) noexcept;

 private:
  http::Client& client_;
  const service::IdentitySigner& identity_;
  telemetry::Logger& log_;
};

}  // namespace vigil::orders

// Stock reservations: all lines or none, replays of the same id, release exactly once,
// only the orders service may call, and concurrent reservations never oversell.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <map>
#include <vigil/service/ids.hpp>

#include "catalog_test_server.hpp"

namespace vigil::catalog {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using testing::CatalogServer;
using testing::Detail;
using testing::ItemBody;
using testing::Json;

std::string ReservationBody(std::string_view id,
                            const std::vector<std::pair<std::string, std::int64_t>>& lines) {
  boost::json::object o;
  o["id"] = id;
  boost::json::array a;
  for (const auto& [item, quantity] : lines) {
    boost::json::object l;
    l["item_id"] = item;
    l["quantity"] = quantity;
    a.push_back(std::move(l));
  }
  o["lines"] = std::move(a);
  return boost::json::serialize(o);
}

class ReservationsTest : public ::testing::Test {
 protected:
  std::string Create(std::int64_t stock, std::int64_t price = 250) {
    const auto res = server_.Call("POST", "/items", ItemBody("thing", "stuff", price, stock),
                                  server_.UserIdentity());
    EXPECT_EQ(res.result_int(), 201u) << res.body();
    return std::string(Json(res).at("id").as_string());
  }
  std::int64_t Stock(const std::string& id) {
    const auto res = server_.Call("GET", "/items/" + id);
    EXPECT_EQ(res.result_int(), 200u) << res.body();
    return Json(res).at("stock").as_int64();
  }
  testing::ClientResponse Reserve(std::string_view id,
                                  const std::vector<std::pair<std::string, std::int64_t>>& lines) {
    return server_.Call("POST", "/reservations", ReservationBody(id, lines),
                        server_.OrdersIdentity());
  }
  testing::ClientResponse Release(std::string_view id) {
    return server_.Call("DELETE", "/reservations/" + std::string(id), {}, server_.OrdersIdentity());
  }

  CatalogServer server_;
};

TEST_F(ReservationsTest, ReservesEveryLineWithItsPrice) {
  const std::string a = Create(10, 250);
  const std::string b = Create(5, 1000);
  const std::string order = service::NewId();
  const auto res = Reserve(order, {{b, 2}, {a, 3}});
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  const auto body = Json(res).as_object();
  EXPECT_EQ(testing::Str(body.at("id")), order);
  const auto& lines = body.at("lines").as_array();
  ASSERT_EQ(lines.size(), 2u);
  // The request's order is kept.
  EXPECT_EQ(testing::Str(lines[0].at("item_id")), b);
  EXPECT_EQ(lines[0].at("quantity"), 2);
  EXPECT_EQ(lines[0].at("price_cents"), 1000);
  EXPECT_EQ(testing::Str(lines[1].at("item_id")), a);
  EXPECT_EQ(lines[1].at("quantity"), 3);
  EXPECT_EQ(lines[1].at("price_cents"), 250);
  EXPECT_EQ(Stock(a), 7);
  EXPECT_EQ(Stock(b), 3);
}

TEST_F(ReservationsTest, ReservingChangesCachedStock) {
  const std::string a = Create(10);
  EXPECT_EQ(Stock(a), 10);
  EXPECT_EQ(Stock(a), 10);  // now cached
  ASSERT_EQ(Reserve(service::NewId(), {{a, 4}}).result_int(), 201u);
  EXPECT_EQ(Stock(a), 6) << "the reservation invalidated the cached item";
}

TEST_F(ReservationsTest, AllOrNothing) {
  const std::string plenty = Create(10);
  const std::string scarce = Create(1);
  EXPECT_EQ(Stock(plenty), 10);  // cached before the failed attempt
  // The first line alone would succeed; the second cannot, so neither happens.
  const auto res = Reserve(service::NewId(), {{plenty, 4}, {scarce, 2}});
  EXPECT_EQ(res.result_int(), 409u) << res.body();
  EXPECT_EQ(res["Content-Type"], "application/problem+json");
  EXPECT_EQ(Detail(res), "insufficient stock for item " + scarce);
  EXPECT_EQ(Stock(plenty), 10);
  EXPECT_EQ(Stock(scarce), 1);

  // An unknown item, in any position, also rolls everything back, and is named.
  const std::string ghost = service::NewId();
  const auto unknown = Reserve(service::NewId(), {{plenty, 1}, {scarce, 1}, {ghost, 1}});
  EXPECT_EQ(unknown.result_int(), 422u) << unknown.body();
  EXPECT_EQ(Detail(unknown), "lines[2].item_id: no such item " + ghost);
  EXPECT_EQ(Stock(plenty), 10);
  EXPECT_EQ(Stock(scarce), 1);

  // A failed reservation leaves no trace: its id can be used again.
  const std::string order = service::NewId();
  EXPECT_EQ(Reserve(order, {{scarce, 5}}).result_int(), 409u);
  EXPECT_EQ(Reserve(order, {{scarce, 1}}).result_int(), 201u);
  EXPECT_EQ(Stock(scarce), 0);
}

TEST_F(ReservationsTest, TheSameIdIsReturnedAsStored) {
  const std::string a = Create(10, 300);
  const std::string order = service::NewId();
  const auto first = Reserve(order, {{a, 3}});
  ASSERT_EQ(first.result_int(), 201u);
  const auto again = Reserve(order, {{a, 3}});
  EXPECT_EQ(again.result_int(), 200u);
  EXPECT_EQ(again.body(), first.body());
  // Even with other lines: the stored reservation answers, nothing more is taken.
  const auto different = Reserve(order, {{a, 7}});
  EXPECT_EQ(different.result_int(), 200u);
  EXPECT_EQ(different.body(), first.body());
  EXPECT_EQ(Stock(a), 7);
}

TEST_F(ReservationsTest, ReleaseGivesStockBackOnce) {
  const std::string a = Create(10);
  const std::string b = Create(10);
  const std::string order = service::NewId();
  ASSERT_EQ(Reserve(order, {{a, 3}, {b, 4}}).result_int(), 201u);
  EXPECT_EQ(Stock(a), 7);
  const auto released = Release(order);
  EXPECT_EQ(released.result_int(), 204u);
  EXPECT_TRUE(released.body().empty());
  EXPECT_EQ(Stock(a), 10);
  EXPECT_EQ(Stock(b), 10);
  EXPECT_EQ(Release(order).result_int(), 204u);
  EXPECT_EQ(Stock(a), 10) << "a second release gives nothing back";
  EXPECT_EQ(Stock(b), 10);
  // An unknown id: nothing to do, still 204. A path that cannot name one is not found.
  EXPECT_EQ(Release(service::NewId()).result_int(), 204u);
  for (const char* id : {"not-an-id", "%ff", "0193A1C2D3E4F5A6B7C8D9E0F1A2"}) {
    const auto res = Release(id);
    EXPECT_EQ(res.result_int(), 404u) << id;
    EXPECT_EQ(Detail(res), "no such reservation") << id;
  }
}

TEST_F(ReservationsTest, ReleaseSurvivesADeletedItem) {
  const std::string a = Create(10);
  const std::string b = Create(10);
  const std::string order = service::NewId();
  ASSERT_EQ(Reserve(order, {{a, 1}, {b, 2}}).result_int(), 201u);
  ASSERT_EQ(server_.Call("DELETE", "/items/" + a, {}, server_.UserIdentity()).result_int(), 204u);
  EXPECT_EQ(Release(order).result_int(), 204u);
  EXPECT_EQ(Stock(b), 10);
}

TEST_F(ReservationsTest, OnlyTheOrdersServiceMayCall) {
  const std::string a = Create(10);
  const std::string body = ReservationBody(service::NewId(), {{a, 1}});
  EXPECT_EQ(server_.Call("POST", "/reservations", body).result_int(), 401u);
  const auto user = server_.Call("POST", "/reservations", body, server_.UserIdentity());
  EXPECT_EQ(user.result_int(), 403u);
  EXPECT_EQ(user["Content-Type"], "application/problem+json");
  EXPECT_EQ(server_.Call("DELETE", "/reservations/" + service::NewId(), {}, server_.UserIdentity())
                .result_int(),
            403u);
  EXPECT_EQ(server_.Call("DELETE", "/reservations/" + service::NewId()).result_int(), 401u);
  EXPECT_EQ(Stock(a), 10);
}

struct BadReservation {
  const char* body;
  unsigned status;
  const char* field;
};

class ReservationValidationTest : public ReservationsTest,
                                  public ::testing::WithParamInterface<BadReservation> {};

TEST_P(ReservationValidationTest, RefusedNamingTheField) {
  const auto res = server_.Call("POST", "/reservations", GetParam().body, server_.OrdersIdentity());
  EXPECT_EQ(res.result_int(), GetParam().status) << GetParam().body << " -> " << res.body();
  if (GetParam().field != nullptr) {
    EXPECT_EQ(Detail(res).rfind(std::string(GetParam().field) + ": ", 0), 0u) << Detail(res);
  }
}

#define ID "0193a1c2d3e4f5a6b7c8d9e0f1a2"
#define ITEM "0193a1c2d3e4f5a6b7c8d9e0f1b3"
INSTANTIATE_TEST_SUITE_P(
    Table, ReservationValidationTest,
    ::testing::Values(
        BadReservation{R"({"lines":[{"item_id":")" ITEM R"(","quantity":1}]})", 422, "id"},
        BadReservation{R"({"id":"order-1","lines":[{"item_id":")" ITEM R"(","quantity":1}]})", 422,
                       "id"},
        BadReservation{R"({"id":")" ID R"("})", 422, "lines"},
        BadReservation{R"({"id":")" ID R"(","lines":[]})", 422, "lines"},
        BadReservation{R"({"id":")" ID R"(","lines":{}})", 422, "lines"},
        BadReservation{R"({"id":")" ID R"(","lines":[7]})", 422, "lines[0]"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"quantity":1}]})", 422, "lines[0].item_id"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":"x","quantity":1}]})", 422,
                       "lines[0].item_id"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":")" ITEM R"(","quantity":0}]})",
                       422, "lines[0].quantity"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":")" ITEM R"(","quantity":-2}]})",
                       422, "lines[0].quantity"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":")" ITEM R"("}]})", 422,
                       "lines[0].quantity"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":")" ITEM
                       R"(","quantity":1,"note":"x"}]})",
                       422, "lines[0].note"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":")" ITEM
                       R"(","quantity":1},{"item_id":")" ITEM R"(","quantity":2}]})",
                       422, "lines[1].item_id"},
        BadReservation{R"({"id":")" ID R"(","lines":[{"item_id":")" ITEM
                       R"(","quantity":1}],"extra":1})",
                       422, "extra"},
        BadReservation{R"({"id":)", 400, nullptr}));
#undef ID
#undef ITEM

// A coroutine client: one request on its own connection, the status of the answer.
asio::awaitable<unsigned> PostOnce(std::uint16_t port, std::string request) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);
  beast::flat_buffer buffer;
  beast::http::response<beast::http::string_body> response;
  co_await beast::http::async_read(socket, buffer, response, asio::use_awaitable);
  co_return response.result_int();
}

TEST(ReservationRace, ConcurrentReservationsNeverOversell) {
  // Four workers and four database connections, so that reservations really overlap.
  CatalogServer server({}, 4, 4);
  constexpr std::int64_t kStock = 12;
  constexpr int kClients = 40;
  const auto created =
      server.Call("POST", "/items", ItemBody("hot", "t", 100, kStock), server.UserIdentity());
  const std::string hot(Json(created).at("id").as_string());
  const auto other_created =
      server.Call("POST", "/items", ItemBody("plenty", "t", 100, 1000), server.UserIdentity());
  const std::string plenty(Json(other_created).at("id").as_string());

  asio::io_context io;
  std::map<unsigned, int> statuses;
  const std::string identity = server.OrdersIdentity();
  for (int i = 0; i < kClients; ++i) {
    // Every reservation takes one unit of the scarce item and one of the plentiful one,
    // in alternating line order.
    std::vector<std::pair<std::string, std::int64_t>> lines = {{hot, 1}, {plenty, 1}};
    if (i % 2 == 1) std::swap(lines[0], lines[1]);
    const std::string body = ReservationBody(service::NewId(), lines);
    std::string request =
        "POST /reservations HTTP/1.1\r\nHost: catalog\r\nX-Vigil-Identity: " + identity +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    asio::co_spawn(io, PostOnce(server.port(), std::move(request)),
                   [&statuses](std::exception_ptr error, unsigned status) {
                     statuses[error ? 0u : status]++;
                   });
  }
  io.run();

  EXPECT_EQ(statuses[201], kStock) << "exactly the stock is sold";
  EXPECT_EQ(statuses[409], kClients - kStock);
  EXPECT_EQ(statuses[0], 0) << "no request failed";
  EXPECT_EQ(statuses.size(), 2u + (statuses.count(0) ? 1u : 0u)) << "only 201 and 409";
  const auto hot_now = server.Call("GET", "/items/" + hot);
  EXPECT_EQ(Json(hot_now).at("stock"), 0);
  const auto plenty_now = server.Call("GET", "/items/" + plenty);
  EXPECT_EQ(Json(plenty_now).at("stock"), 1000 - kStock) << "failed ones rolled back";
}

}  // namespace
}  // namespace vigil::catalog

// The orders API in one process: the service on loopback with SQLite in a temporary
// directory, a stand-in catalog, and a raw HTTP client. Runs under ASan+UBSan.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "orders_fixture.hpp"

namespace vigil::orders::testing {
namespace {

bool Has(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

class OrdersApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    f.catalog.AddItem(kItemA, 1250, 10);
    f.catalog.AddItem(kItemB, 399, 100);
    f.catalog.AddItem(kItemC, 5, 1000);
  }
  // Creates an order for `user`; returns its id.
  std::string Create(std::string_view user, const std::string& body) {
    auto res = f.Post("/orders", body, f.User(user));
    EXPECT_EQ(res.result_int(), 201u) << res.body();
    const json::object order = Body(res);
    return order.contains("id") ? std::string(order.at("id").as_string()) : "";
  }

  OrdersFixture f;
};

TEST_F(OrdersApiTest, CreatesAnOrderAtTheCatalogsPrices) {
  auto res = f.Post("/orders", Lines({Line(kItemB, 3), Line(kItemA, 2)}), f.User("alice"));
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
  const json::object order = Body(res);
  const std::string id(order.at("id").as_string());
  EXPECT_TRUE(service::IsValidId(id)) << id;
  EXPECT_EQ(res[boost::beast::http::field::location], "/api/orders/" + id);
  EXPECT_EQ(res["Idempotent-Replayed"], "");
  EXPECT_EQ(order.at("status"), "confirmed");
  EXPECT_EQ(order.at("total_cents"), 2 * 1250 + 3 * 399);
  EXPECT_EQ(order.at("lines"), json::parse(R"([
      {"item_id":"0193a1c2d3e4aaaaaaaaaaaaaaaa","quantity":2,"price_cents":1250},
      {"item_id":"0193a1c2d3e4bbbbbbbbbbbbbbbb","quantity":3,"price_cents":399}])"));
  const std::string created_at(order.at("created_at").as_string());
  EXPECT_EQ(created_at.size(), 24u) << created_at;
  EXPECT_EQ(created_at.back(), 'Z');
  EXPECT_EQ(f.catalog.Stock(kItemA), 8);
  EXPECT_EQ(f.catalog.Stock(kItemB), 97);
  EXPECT_EQ(f.catalog.reservation_ids(), std::vector<std::string>{id})
      << "the reservation is made under the order's id";

  auto again = f.Get("/orders/" + id, f.User("alice"));
  ASSERT_EQ(again.result_int(), 200u) << again.body();
  EXPECT_EQ(Body(again), order) << "what was answered is what was stored";
}

TEST_F(OrdersApiTest, CountsAndLogsEachOrder) {
  const std::string id = Create("alice", Lines({Line(kItemA, 2)}));
  Create("bob", Lines({Line(kItemC, 7)}));
  const std::string metrics = f.Metrics();
  EXPECT_TRUE(Has(metrics, "vigil_orders_created_total 2\n")) << metrics;
  EXPECT_TRUE(Has(metrics, "vigil_orders_value_cents_total 2535\n")) << metrics;
  const std::string logs = f.Logs();
  // The two workers' lines may come in either order.
  const std::size_t at = logs.find(R"("order.id":")" + id + "\"");
  ASSERT_NE(at, std::string::npos) << logs;
  const std::size_t start = logs.rfind('\n', at) + 1;  // npos + 1 == 0 for the first line
  const std::string line = logs.substr(start, logs.find('\n', at) - start);
  EXPECT_TRUE(Has(line, R"("level":"info","msg":"order created")")) << line;
  EXPECT_TRUE(Has(line, R"("order.lines":1)")) << line;
  EXPECT_TRUE(Has(line, R"("order.total_cents":2500)")) << line;
  EXPECT_TRUE(Has(line, R"("trace_id":")")) << line;
}

TEST_F(OrdersApiTest, TheCatalogCallContinuesTheOrdersRequestsTrace) {
  auto res = f.Post("/orders", Lines({Line(kItemA, 1)}),
                    f.User("alice") +
                        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
                        "X-Request-Id: rid-orders-1\r\n");
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  const auto seen = f.catalog.seen();
  ASSERT_EQ(seen.size(), 1u);
  const std::string& traceparent = seen[0].first;
  EXPECT_TRUE(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")) << traceparent;
  EXPECT_FALSE(Has(traceparent, "00f067aa0ba902b7"))
      << "the catalog's parent is the orders service's client span";
  EXPECT_EQ(traceparent.size(), 55u) << traceparent;
  EXPECT_EQ(seen[0].second, "rid-orders-1");
}

TEST_F(OrdersApiTest, EveryRouteNeedsAUser) {
  const std::string body = Lines({Line(kItemA, 1)});
  EXPECT_EQ(f.Post("/orders", body, "").result_int(), 401u);
  EXPECT_EQ(f.Get("/orders", "").result_int(), 401u);
  EXPECT_EQ(f.Get("/orders/0193a1c2d3e4f5a6b7c8d9e0f1a2", "").result_int(), 401u);
  auto forged = f.Post("/orders", body, "X-Vigil-Identity: v1.user:alice.99999999999.00ff\r\n");
  EXPECT_EQ(forged.result_int(), 401u);
  EXPECT_EQ(forged[boost::beast::http::field::content_type], "application/problem+json");
  const service::IdentitySigner other(std::string(64, 'x'));
  EXPECT_EQ(f.Post("/orders", body, "X-Vigil-Identity: " + other.Sign("user:alice") + "\r\n")
                .result_int(),
            401u)
      << "signed with another secret";
  EXPECT_EQ(f.Post("/orders", body, f.Service("catalog")).result_int(), 403u);
  EXPECT_EQ(f.Get("/orders", f.Service("gateway")).result_int(), 403u);
  EXPECT_EQ(f.catalog.posts(), 0) << "nothing reaches the catalog without a user";
  EXPECT_EQ(f.Count("orders"), 0);
}

TEST_F(OrdersApiTest, AnotherUsersOrderIsNotFound) {
  const std::string id = Create("alice", Lines({Line(kItemA, 1)}));
  auto res = f.Get("/orders/" + id, f.User("bob"));
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(Detail(res), "no such order");
  EXPECT_EQ(f.Get("/orders/" + id, f.User("alice")).result_int(), 200u);
  EXPECT_EQ(f.Get("/orders/0193a1c2d3e4f5a6b7c8d9e0f1a2", f.User("alice")).result_int(), 404u);
  auto malformed = f.Get("/orders/not-an-id", f.User("alice"));
  EXPECT_EQ(malformed.result_int(), 404u);
  EXPECT_EQ(Detail(malformed), "no such order");
  EXPECT_EQ(f.Get("/orders/" + id + "%00", f.User("alice")).result_int(), 404u);
  EXPECT_EQ(f.Get("/orders/%zz", f.User("alice")).result_int(), 400u);
}

TEST_F(OrdersApiTest, ListsTheCallersOrdersNewestFirst) {
  std::vector<std::string> alice;
  for (int i = 1; i <= 3; ++i) alice.push_back(Create("alice", Lines({Line(kItemC, i)})));
  const std::string bobs = Create("bob", Lines({Line(kItemB, 1)}));

  auto res = f.Get("/orders", f.User("alice"));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const json::object page = Body(res);
  const json::array& orders = page.at("orders").as_array();
  ASSERT_EQ(orders.size(), 3u);
  std::vector<std::string> ids;
  for (const auto& order : orders) {
    ids.emplace_back(order.at("id").as_string());
    EXPECT_EQ(order.at("lines").as_array().size(), 1u);
    EXPECT_EQ(order.at("status"), "confirmed");
  }
  EXPECT_TRUE(std::is_sorted(ids.rbegin(), ids.rend())) << "newest (largest id) first";
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()),
            std::set<std::string>(alice.begin(), alice.end()));
  EXPECT_EQ(page.at("next_cursor"), nullptr);
  // Each order is listed as GET /orders/{id} answers it.
  for (const auto& order : orders) {
    auto one = f.Get("/orders/" + std::string(order.at("id").as_string()), f.User("alice"));
    EXPECT_EQ(json::value(Body(one)), order);
  }

  auto bob = Body(f.Get("/orders", f.User("bob")));
  ASSERT_EQ(bob.at("orders").as_array().size(), 1u);
  EXPECT_EQ(bob.at("orders").as_array()[0].at("id").as_string(), bobs);
  auto carol = Body(f.Get("/orders", f.User("carol")));
  EXPECT_TRUE(carol.at("orders").as_array().empty());
}

TEST_F(OrdersApiTest, PagesWithLimitAndCursor) {
  for (int i = 1; i <= 5; ++i) Create("alice", Lines({Line(kItemC, i)}));
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    const std::string target = "/orders?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor);
    auto res = f.Get(target, f.User("alice"));
    ASSERT_EQ(res.result_int(), 200u) << res.body();
    const json::object page = Body(res);
    for (const auto& order : page.at("orders").as_array()) {
      seen.emplace_back(order.at("id").as_string());
    }
    const json::value& next = page.at("next_cursor");
    cursor = next.is_string() ? std::string(next.as_string()) : "";
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u);

  for (const char* bad : {"limit=0", "limit=101", "limit=abc", "limit=", "limit=-1", "limit=1e2"}) {
    auto res = f.Get(std::string("/orders?") + bad, f.User("alice"));
    EXPECT_EQ(res.result_int(), 422u) << bad;
    EXPECT_EQ(Detail(res), "limit: must be an integer between 1 and 100") << bad;
  }
  auto bad_cursor = f.Get("/orders?cursor=zzz", f.User("alice"));
  EXPECT_EQ(bad_cursor.result_int(), 422u);
  EXPECT_TRUE(Detail(bad_cursor).starts_with("cursor: ")) << Detail(bad_cursor);
  for (const char* twice : {"limit=1&limit=2", "cursor=a&cursor=b"}) {
    auto res = f.Get(std::string("/orders?") + twice, f.User("alice"));
    EXPECT_EQ(res.result_int(), 400u) << twice;
    EXPECT_TRUE(Detail(res).ends_with(": must be given once")) << Detail(res);
  }
  EXPECT_EQ(Body(f.Get("/orders?limit=100", f.User("alice"))).at("orders").as_array().size(), 5u);
}

// Each malformed request is refused with the field named, and nothing reaches the
// catalog or the database.
TEST_F(OrdersApiTest, ValidationNamesTheField) {
  struct Case {
    std::string body;
    unsigned status;
    std::string detail;  // a prefix of the problem's detail
  };
  const std::string a(kItemA);
  const std::vector<Case> cases = {
      {"{", 400, "the body is not valid JSON"},
      {"[1,2]", 400, "the body must be a JSON object"},
      {"", 400, "a JSON object body is required"},
      {"{}", 422, "lines: is required"},
      {R"({"lines":[]})", 422, "lines: must be an array of 1 to 50 objects"},
      {R"({"lines":"x"})", 422, "lines: must be an array"},
      {R"({"lines":[null]})", 422, "lines[0]: must be an object"},
      {R"({"lines":[{"item_id":"12","quantity":1}]})", 422, "lines[0].item_id: must be an item id"},
      {Lines({Line(kItemA, 1), R"({"item_id":"0193A1C2D3E4AAAAAAAAAAAAAAAA","quantity":1})"}), 422,
       "lines[1].item_id: must be an item id"},
      {R"({"lines":[{"quantity":1}]})", 422, "lines[0].item_id: is required"},
      {R"({"lines":[{"item_id":")" + a + R"("}]})", 422, "lines[0].quantity: is required"},
      {Lines({Line(kItemA, 0)}), 422, "lines[0].quantity: must be an integer between 1 and 1000"},
      {Lines({Line(kItemB, 1), Line(kItemA, 1001)}), 422, "lines[1].quantity: must be an integer"},
      {R"({"lines":[{"item_id":")" + a + R"(","quantity":"1"}]})", 422, "lines[0].quantity: "},
      {R"({"lines":[{"item_id":")" + a + R"(","quantity":2.5}]})", 422, "lines[0].quantity: "},
      {Lines({Line(kItemA, 1), Line(kItemB, 1), Line(kItemA, 2)}), 422,
       "lines[2].item_id: the item is already in lines[0]"},
      {R"({"lines":[{"item_id":")" + a + R"(","quantity":1,"price_cents":1}]})", 422,
       "lines[0].price_cents: is not a known field"},
      {R"({"lines":[{"item_id":")" + a + R"(","quantity":1}],"user_id":"bob"})", 422,
       "user_id: is not a known field"},
      {R"({"lines":[{"item_id":"\u0000","quantity":1}]})", 422,
       "lines[0].item_id: must not contain U+0000"},
      {"{\"lines\":[{\"item_id\":\"\xC0\xAF\",\"quantity\":1}]}", 400,
       "lines[0].item_id: must be valid UTF-8"},
      {R"({"lines":[{"item_id":")" + a + R"(","quantity":1e400}]})", 422, "lines[0].quantity: "},
      {R"({"lines":[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]})", 400, "the body nests"},
      // A body past 64 KiB is not read.
      {R"({"lines":[{"item_id":")" + a + R"(","quantity":1}])" + std::string(64 * 1024, ' ') +
           "}",
       413, "The request body exceeds 65536 bytes"},
  };
  for (const Case& c : cases) {
    auto res = f.Post("/orders", c.body, f.User("alice"));
    EXPECT_EQ(res.result_int(), c.status) << c.body << " -> " << res.body();
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/problem+json") << c.body;
    EXPECT_TRUE(Detail(res).starts_with(c.detail)) << c.body << " -> " << Detail(res);
  }
  auto text = f.Send("POST /orders HTTP/1.1\r\nHost: orders\r\n" + f.User("alice") +
                     "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(text.result_int(), 415u);
  EXPECT_EQ(f.catalog.posts(), 0);
  EXPECT_EQ(f.Count("orders"), 0);
}

TEST_F(OrdersApiTest, ABadIdempotencyKeyIs400) {
  const std::string body = Lines({Line(kItemA, 1)});
  for (const std::string& key :
       {std::string(256, 'k'), std::string("two words"), std::string("caf\xc3\xa9")}) {
    auto res = f.Post("/orders", body, f.User("alice") + Key(key));
    EXPECT_EQ(res.result_int(), 400u) << key;
    EXPECT_TRUE(Detail(res).starts_with("Idempotency-Key: ")) << Detail(res);
  }
  auto empty = f.Post("/orders", body, f.User("alice") + "Idempotency-Key:\r\n");
  EXPECT_EQ(empty.result_int(), 400u);
  auto twice = f.Post("/orders", body, f.User("alice") + Key("k1") + Key("k2"));
  EXPECT_EQ(twice.result_int(), 400u);
  EXPECT_EQ(f.catalog.posts(), 0);
  EXPECT_EQ(f.Post("/orders", body, f.User("alice") + Key(std::string(255, 'k'))).result_int(),
            201u);
}

}  // namespace
}  // namespace vigil::orders::testing

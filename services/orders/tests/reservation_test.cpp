// Creating orders when things go wrong or are repeated: Idempotency-Key replays, the
// catalog refusing, failing or away, and the database failing after stock was reserved.
// Runs under ASan+UBSan.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vigil/service/clock.hpp>

#include "orders_fixture.hpp"

namespace vigil::orders::testing {
namespace {

class ReservationTest : public ::testing::Test {
 protected:
  explicit ReservationTest(FixtureOptions options = {}) : f(std::move(options)) {
    f.catalog.AddItem(kItemA, 1250, 10);
    f.catalog.AddItem(kItemB, 399, 100);
  }
  OrdersFixture f;
};

TEST_F(ReservationTest, AKeyReplaysTheSameOrderAndReservesOnce) {
  const std::string body = Lines({Line(kItemA, 2), Line(kItemB, 1)});
  auto first = f.Post("/orders", body, f.User("alice") + Key("key-1"));
  ASSERT_EQ(first.result_int(), 201u) << first.body();
  EXPECT_EQ(first["Idempotent-Replayed"], "");

  auto second = f.Post("/orders", body, f.User("alice") + Key("key-1"));
  ASSERT_EQ(second.result_int(), 201u) << second.body();
  EXPECT_EQ(second["Idempotent-Replayed"], "true");
  EXPECT_EQ(Body(second), Body(first));
  EXPECT_EQ(second[boost::beast::http::field::location],
            first[boost::beast::http::field::location]);

  // The same lines in another order are the same request.
  auto reordered =
      f.Post("/orders", Lines({Line(kItemB, 1), Line(kItemA, 2)}), f.User("alice") + Key("key-1"));
  EXPECT_EQ(reordered.result_int(), 201u);
  EXPECT_EQ(Body(reordered), Body(first));

  EXPECT_EQ(f.catalog.posts(), 1);
  EXPECT_EQ(f.catalog.Stock(kItemA), 8);
  EXPECT_EQ(f.catalog.Stock(kItemB), 99);
  EXPECT_EQ(f.Count("orders"), 1);
  const std::string metrics = f.Metrics();
  EXPECT_NE(metrics.find("vigil_orders_created_total 1\n"), std::string::npos) << metrics;

  // Keys belong to a user: bob's "key-1" is another key.
  auto bobs = f.Post("/orders", body, f.User("bob") + Key("key-1"));
  ASSERT_EQ(bobs.result_int(), 201u);
  EXPECT_EQ(bobs["Idempotent-Replayed"], "");
  EXPECT_NE(Body(bobs).at("id"), Body(first).at("id"));
  // Without a key, the same body is a new order.
  auto unkeyed = f.Post("/orders", body, f.User("alice"));
  EXPECT_NE(Body(unkeyed).at("id"), Body(first).at("id"));
  EXPECT_EQ(f.catalog.posts(), 3);
}

TEST_F(ReservationTest, AKeyWithADifferentRequestIs422) {
  ASSERT_EQ(f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice") + Key("k")).result_int(),
            201u);
  auto other = f.Post("/orders", Lines({Line(kItemA, 2)}), f.User("alice") + Key("k"));
  EXPECT_EQ(other.result_int(), 422u);
  EXPECT_EQ(Detail(other), "Idempotency-Key was used with a different request");
  EXPECT_EQ(f.catalog.posts(), 1);
  EXPECT_EQ(f.Count("orders"), 1);
}

TEST_F(ReservationTest, AKeyWhoseRequestIsStillRunningIs409) {
  const std::string body = Lines({Line(kItemA, 1)});
  f.catalog.Hold();
  RawClient first(f.port());
  first.Send("POST /orders HTTP/1.1\r\nHost: orders\r\n" + f.User("alice") + Key("slow") +
             "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n\r\n" + body);
  f.catalog.WaitUntilHeld();

  auto meanwhile = f.Post("/orders", body, f.User("alice") + Key("slow"));
  EXPECT_EQ(meanwhile.result_int(), 409u);
  EXPECT_EQ(Detail(meanwhile), "a request with this Idempotency-Key is in progress");
  auto different = f.Post("/orders", Lines({Line(kItemB, 1)}), f.User("alice") + Key("slow"));
  EXPECT_EQ(different.result_int(), 422u);

  f.catalog.Unhold();
  auto done = first.Read();
  ASSERT_EQ(done.result_int(), 201u) << done.body();
  auto after = f.Post("/orders", body, f.User("alice") + Key("slow"));
  EXPECT_EQ(after.result_int(), 201u);
  EXPECT_EQ(after["Idempotent-Replayed"], "true");
  EXPECT_EQ(Body(after), Body(done));
  EXPECT_EQ(f.catalog.posts(), 1);
}

TEST_F(ReservationTest, AnAbandonedKeyIsTakenOverUnderItsOrderId) {
  // A process stopped after claiming the key (and perhaps reserving): its order id is
  // reused, so that the catalog answers the existing reservation instead of a second one.
  const std::string body = Lines({Line(kItemA, 3)});
  const std::string abandoned = "0193a1c2d3e40000000000000abc";
  const std::string hash = RequestHash(std::vector<LineRequest>{{std::string(kItemA), 3}});
  const std::int64_t now_ms = service::WallClockMillis();
  f.Execute(
      "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      {"alice", "old", hash, abandoned, now_ms - 1000});
  f.Execute(
      "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      {"alice", "stale", hash, abandoned, now_ms - 6 * 60 * 1000});

  EXPECT_EQ(f.Post("/orders", body, f.User("alice") + Key("old")).result_int(), 409u)
      << "a recent claim may still be running";
  auto res = f.Post("/orders", body, f.User("alice") + Key("stale"));
  ASSERT_EQ(res.result_int(), 201u) << res.body();
  EXPECT_EQ(Body(res).at("id").as_string(), abandoned);
  EXPECT_EQ(f.catalog.reservation_ids(), std::vector<std::string>{abandoned});
  auto replay = f.Post("/orders", body, f.User("alice") + Key("stale"));
  EXPECT_EQ(replay["Idempotent-Replayed"], "true");
  EXPECT_EQ(Body(replay).at("id").as_string(), abandoned);
}

TEST_F(ReservationTest, InsufficientStockIs409AndStoresNothing) {
  auto res = f.Post("/orders", Lines({Line(kItemB, 5), Line(kItemA, 11)}),
                    f.User("alice") + Key("too-many"));
  EXPECT_EQ(res.result_int(), 409u);
  EXPECT_EQ(Detail(res), "insufficient stock for item " + std::string(kItemA));
  EXPECT_EQ(f.catalog.Stock(kItemA), 10);
  EXPECT_EQ(f.catalog.Stock(kItemB), 100);
  EXPECT_EQ(f.catalog.deletes(), 0) << "nothing was reserved, nothing to release";
  EXPECT_EQ(f.Count("orders"), 0);
  EXPECT_EQ(f.Count("order_lines"), 0);
  EXPECT_EQ(f.Count("idempotency_keys"), 0) << "the key is free for a retry";
  EXPECT_TRUE(Body(f.Get("/orders", f.User("alice"))).at("orders").as_array().empty());

  // Once stock is there, the retry with the same key succeeds.
  f.catalog.AddItem(kItemA, 1250, 20);
  auto retry = f.Post("/orders", Lines({Line(kItemB, 5), Line(kItemA, 11)}),
                      f.User("alice") + Key("too-many"));
  EXPECT_EQ(retry.result_int(), 201u) << retry.body();
  EXPECT_EQ(retry["Idempotent-Replayed"], "");
}

TEST_F(ReservationTest, AnUnknownItemIs422WithTheCatalogsDetail) {
  const std::string unknown = "0193a1c2d3e4dddddddddddddddd";
  auto res = f.Post("/orders", Lines({Line(kItemA, 1), Line(unknown, 1)}), f.User("alice"));
  EXPECT_EQ(res.result_int(), 422u);
  EXPECT_EQ(Detail(res), "unknown item " + unknown);
  EXPECT_EQ(f.Count("orders"), 0);
}

TEST_F(ReservationTest, TheCatalogsFailuresAreNotPassedOn) {
  f.catalog.FailWith(500);
  auto res = f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice") + Key("k"));
  EXPECT_EQ(res.result_int(), 502u);
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/problem+json");
  EXPECT_EQ(res.body().find("secret trouble"), std::string::npos) << res.body();
  EXPECT_EQ(f.catalog.deletes(), 1) << "a failed answer may hide a reservation: released";
  EXPECT_EQ(f.Count("orders"), 0);
  EXPECT_EQ(f.Count("idempotency_keys"), 0);

  f.catalog.FailWith(503);
  auto unavailable = f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice"));
  EXPECT_EQ(unavailable.result_int(), 503u);
  EXPECT_EQ(unavailable.body().find("secret trouble"), std::string::npos);

  f.catalog.FailWith(401);
  EXPECT_EQ(f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice")).result_int(), 502u)
      << "the services disagree on the secret: not the client's fault";

  f.catalog.FailWith(0);
  EXPECT_EQ(f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice") + Key("k")).result_int(),
            201u);
  const std::string logs = f.Logs();
  EXPECT_NE(logs.find("catalog refused a reservation"), std::string::npos) << logs;
}

TEST_F(ReservationTest, WhenStoringFailsTheReservationIsReleasedAndTheKeyForgotten) {
  f.Execute("DROP TABLE order_lines");
  auto res = f.Post("/orders", Lines({Line(kItemA, 4)}), f.User("alice") + Key("doomed"));
  EXPECT_EQ(res.result_int(), 500u) << res.body();
  EXPECT_EQ(f.catalog.posts(), 1);
  EXPECT_EQ(f.catalog.deletes(), 1);
  EXPECT_EQ(f.catalog.Stock(kItemA), 10) << "the stock was given back";
  EXPECT_EQ(f.Count("orders"), 0) << "the order row was rolled back with its lines";
  EXPECT_EQ(f.Count("idempotency_keys"), 0);
  const std::string logs = f.Logs();
  EXPECT_NE(logs.find("reservation released after a failed order"), std::string::npos) << logs;
}

class CatalogDownTest : public ReservationTest {
 protected:
  // Nothing listens on port 1.
  CatalogDownTest() : ReservationTest({.catalog_url = "http://127.0.0.1:1"}) {}
};

TEST_F(CatalogDownTest, Is502AndStoresNothing) {
  auto res = f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice") + Key("k"));
  EXPECT_EQ(res.result_int(), 502u) << res.body();
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/problem+json");
  EXPECT_EQ(Detail(res), "the catalog service could not be reached; try again shortly");
  EXPECT_EQ(res.body().find("127.0.0.1"), std::string::npos) << "no internal address";
  EXPECT_EQ(f.Count("orders"), 0);
  EXPECT_EQ(f.Count("idempotency_keys"), 0);
  EXPECT_EQ(f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice") + Key("k")).result_int(),
            502u)
      << "the retry is tried again, not told it is in progress";
}

class SlowCatalogTest : public ReservationTest {
 protected:
  SlowCatalogTest()
      : ReservationTest({.catalog_url = "", .catalog_timeout = std::chrono::milliseconds(200)}) {}
};

TEST_F(SlowCatalogTest, Is504AndStoresNothing) {
  f.catalog.Hold();
  auto res = f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice"));
  EXPECT_EQ(res.result_int(), 504u) << res.body();
  EXPECT_EQ(Detail(res), "the catalog service did not answer in time; try again shortly");
  f.catalog.Unhold();
  EXPECT_EQ(f.Count("orders"), 0);
}

}  // namespace
}  // namespace vigil::orders::testing

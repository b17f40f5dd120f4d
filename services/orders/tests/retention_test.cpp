// Idempotency-Key retention: a key older than the TTL counts as unused (the same key
// makes a new order) and the purge deletes it, in bounded batches, periodically on the
// service's runtime, stopped with it. Keys are aged by moving their created_at back.
// Runs under ASan+UBSan.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <vigil/service/clock.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/testing/coroutine.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/text.hpp>

#include "options.hpp"
#include "orders_fixture.hpp"

namespace vigil::orders::testing {
namespace {

using test_support::Eventually;
using test_support::Has;
using test_support::Occurrences;

constexpr std::int64_t kMinuteMs = 60 * 1000;
// Generous: the periodic loop runs on a busy machine next to other tests.
constexpr std::chrono::seconds kScheduleWait{20};

// Runs one purge to its end on the calling thread.
service::PurgeReport RunPurge(OrdersApi& api) {
  return test_support::RunCoroutine([&] { return api.retention().Run(); });
}

class RetentionTest : public ::testing::Test {
 protected:
  explicit RetentionTest(FixtureOptions options = {}) : f(std::move(options)) {
    f.catalog.AddItem(kItemA, 1250, 100);
    f.catalog.AddItem(kItemB, 399, 100);
  }

  ClientResponse Order(std::string_view key, const std::string& body) {
    return f.Post("/orders", body, f.User("alice") + Key(key));
  }
  static std::string IdOf(const ClientResponse& res) {
    const json::object body = Body(res);
    return body.contains("id") ? std::string(body.at("id").as_string()) : "";
  }
  // Moves the claim of alice's `key` `ms` into the past.
  void Age(std::string_view key, std::int64_t ms) {
    f.Execute("UPDATE idempotency_keys SET created_at = created_at - $1 WHERE key = $2", {ms, key});
  }
  // `n` keys of one user claimed `age_ms` ago, for orders that were stored long ago.
  void InsertKeys(std::string_view prefix, int n, std::int64_t age_ms) {
    static const storage::Statement kInsert{
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) "
        "VALUES ('bulk', $1, 'hash', $2, $3)"};
    const std::int64_t created_at = service::WallClockMillis() - age_ms;
    f.db().TransactBlocking({}, [&](storage::Session& s) {
      for (int i = 0; i < n; ++i) {
        const std::string key = std::string(prefix) + std::to_string(i);
        s.Query(kInsert, {key, service::NewId(), created_at});
      }
    });
  }

  OrdersFixture f;
};

TEST_F(RetentionTest, AKeyPastTheTtlIsPurgedAndThenMakesANewOrder) {
  const std::string body = Lines({Line(kItemA, 1)});
  auto first = Order("old", body);
  ASSERT_EQ(first.result_int(), 201u) << first.body();
  auto kept = Order("recent", body);
  ASSERT_EQ(kept.result_int(), 201u) << kept.body();
  const std::int64_t ttl_ms = 86400 * 1000;
  Age("old", ttl_ms + 1000);
  Age("recent", ttl_ms - kMinuteMs);  // a minute short of the TTL

  const service::PurgeReport report = RunPurge(f.api());
  EXPECT_EQ(report.Deleted("idempotency_keys"), 1);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(f.Count("idempotency_keys"), 1);
  EXPECT_EQ(RunPurge(f.api()).Deleted("idempotency_keys"), 0);

  // The purged key is new again: a new order, a new reservation.
  auto again = Order("old", body);
  ASSERT_EQ(again.result_int(), 201u) << again.body();
  EXPECT_EQ(again["Idempotent-Replayed"], "");
  EXPECT_NE(IdOf(again), IdOf(first));
  EXPECT_EQ(f.catalog.posts(), 3);
  auto replay = Order("old", body);
  EXPECT_EQ(replay["Idempotent-Replayed"], "true");
  EXPECT_EQ(IdOf(replay), IdOf(again)) << "the key now stands for the new order";

  // The key within its TTL still replays.
  auto replay_kept = Order("recent", body);
  EXPECT_EQ(replay_kept.result_int(), 201u);
  EXPECT_EQ(replay_kept["Idempotent-Replayed"], "true");
  EXPECT_EQ(IdOf(replay_kept), IdOf(kept));
  EXPECT_EQ(f.catalog.posts(), 3);
  EXPECT_EQ(f.Count("orders"), 3);

  const std::string logs = f.Logs();
  EXPECT_EQ(Occurrences(logs, "\"msg\":\"expired idempotency keys purged\""), 1u) << logs;
  EXPECT_TRUE(Has(logs, "\"level\":\"info\",\"msg\":\"expired idempotency keys purged\"")) << logs;
  EXPECT_TRUE(Has(logs, "\"rows\":1")) << logs;
  const std::string metrics = f.Metrics();
  EXPECT_TRUE(Has(metrics, "vigil_orders_idempotency_keys_purged_total 1\n")) << metrics;
}

TEST_F(RetentionTest, AKeyPastTheTtlNotYetPurgedCountsAsUnused) {
  const std::string body = Lines({Line(kItemA, 1)});
  auto first = Order("k", body);
  ASSERT_EQ(first.result_int(), 201u) << first.body();
  Age("k", 86400 * 1000);

  // Another body is no mismatch any more: the key is taken over for it.
  auto other = Order("k", Lines({Line(kItemB, 2)}));
  ASSERT_EQ(other.result_int(), 201u) << other.body();
  EXPECT_EQ(other["Idempotent-Replayed"], "");
  EXPECT_NE(IdOf(other), IdOf(first));
  EXPECT_EQ(f.Count("idempotency_keys"), 1) << "taken over, not added";
  auto replay = Order("k", Lines({Line(kItemB, 2)}));
  EXPECT_EQ(replay["Idempotent-Replayed"], "true");
  EXPECT_EQ(IdOf(replay), IdOf(other));
  EXPECT_EQ(Order("k", body).result_int(), 422u) << "the renewed key has the new body";
  EXPECT_EQ(f.Count("orders"), 2);
}

class ShortTtlTest : public RetentionTest {
 protected:
  ShortTtlTest() : RetentionTest({.idempotency_ttl = std::chrono::seconds(60)}) {}
};

TEST_F(ShortTtlTest, AClaimWithoutAnOrderIsKeptUntilAbandonedWhateverTheTtl) {
  // Claims whose orders were never stored: their requests may still be running.
  const std::string body = Lines({Line(kItemA, 3)});
  const std::string hash = RequestHash(std::vector<LineRequest>{{std::string(kItemA), 3}});
  const std::int64_t now_ms = service::WallClockMillis();
  for (const auto& [key, age_ms] : {std::pair<std::string, std::int64_t>{"running", 2 * kMinuteMs},
                                    {"abandoned", 6 * kMinuteMs}}) {
    f.Execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) "
        "VALUES ('alice', $1, $2, $3, $4)",
        {key, hash, service::NewId(), now_ms - age_ms});
  }
  // A stored order's key expires with the TTL.
  auto done = Order("done", body);
  ASSERT_EQ(done.result_int(), 201u);
  Age("done", 2 * kMinuteMs);

  EXPECT_EQ(RunPurge(f.api()).Deleted("idempotency_keys"), 1) << "only the abandoned claim";
  EXPECT_EQ(Order("running", body).result_int(), 409u) << "past the TTL, but maybe running";
  EXPECT_EQ(f.Count("idempotency_keys"), 2);

  auto renewed = Order("done", body);
  ASSERT_EQ(renewed.result_int(), 201u) << renewed.body();
  EXPECT_EQ(renewed["Idempotent-Replayed"], "");
  EXPECT_NE(IdOf(renewed), IdOf(done));

  Age("running", 4 * kMinuteMs);  // six minutes old now: abandoned, and past the TTL
  auto taken = Order("running", body);
  ASSERT_EQ(taken.result_int(), 201u) << taken.body();
  EXPECT_EQ(taken["Idempotent-Replayed"], "");
}

TEST_F(RetentionTest, PurgesMoreKeysThanOneBatchInSeveralBatches) {
  static_assert(service::kPurgeBatch == 500);
  const std::int64_t expired_ms = 86400 * 1000 + kMinuteMs;
  InsertKeys("old-", 1203, expired_ms);  // three batches
  InsertKeys("new-", 10, kMinuteMs);
  ASSERT_EQ(f.Count("idempotency_keys"), 1213);

  const service::PurgeReport report = RunPurge(f.api());
  EXPECT_EQ(report.Deleted("idempotency_keys"), 1203);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(f.Count("idempotency_keys"), 10);
  EXPECT_TRUE(Has(f.Metrics(), "vigil_orders_idempotency_keys_purged_total 1203\n"));
  EXPECT_EQ(Occurrences(f.Logs(), "\"msg\":\"expired idempotency keys purged\""), 1u)
      << "one line per purge, not per batch";

  // Exactly one full batch: the purge looks once more and finds nothing.
  InsertKeys("older-", 500, expired_ms);
  EXPECT_EQ(RunPurge(f.api()).Deleted("idempotency_keys"), 500);
  EXPECT_EQ(f.Count("idempotency_keys"), 10);
}

TEST_F(RetentionTest, AFailedPurgeIsOneWarnLineAndTheServiceCarriesOn) {
  f.Execute("DROP TABLE idempotency_keys");
  const service::PurgeReport report = RunPurge(f.api());
  EXPECT_NE(report.error, "");
  EXPECT_EQ(report.Deleted("idempotency_keys"), 0);
  const std::string logs = f.Logs();
  EXPECT_EQ(Occurrences(logs, "\"msg\":\"retention purge failed\""), 1u) << logs;
  EXPECT_TRUE(Has(logs, "\"level\":\"warn\",\"msg\":\"retention purge failed\"")) << logs;
  EXPECT_TRUE(Has(logs, "\"db.collection.name\":\"idempotency_keys\"")) << logs;
  // Orders without a key need no key table.
  EXPECT_EQ(f.Post("/orders", Lines({Line(kItemA, 1)}), f.User("alice")).result_int(), 201u);
}

TEST(PurgeScheduleTest, RunsOnTheRuntimeAgainEveryPeriodAndStopsWithIt) {
  auto f = std::make_unique<OrdersFixture>(FixtureOptions{
      .purges = service::Schedule{std::chrono::milliseconds(0), std::chrono::milliseconds(20)}});
  for (int round = 0; round < 3; ++round) {
    f->Execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) "
        "VALUES ('bob', $1, 'hash', $2, $3)",
        {"k" + std::to_string(round), service::NewId(),
         service::WallClockMillis() - 2 * 86400 * 1000});
    const std::string expected =
        "vigil_orders_idempotency_keys_purged_total " + std::to_string(round + 1) + "\n";
    EXPECT_TRUE(Eventually([&] { return Has(f->Metrics(), expected); }, kScheduleWait))
        << f->Metrics();
  }
  f->Execute("DROP TABLE idempotency_keys");
  EXPECT_TRUE(Eventually(
      [&] { return Occurrences(f->Logs(), "\"msg\":\"retention purge failed\"") >= 2; },
      kScheduleWait));
  // Destroyed with the loop between two periods (or inside one): it ends with the
  // runtime, touching nothing that is gone (the sanitizer build checks).
  f.reset();
}

TEST(IdempotencyTtlTest, ReadFromTheEnvironmentWithinItsRange) {
  ::unsetenv("VIGIL_ORDERS_IDEMPOTENCY_TTL");
  EXPECT_EQ(OrdersOptions::FromEnv().idempotency_ttl, std::chrono::seconds(86400));
  ::setenv("VIGIL_ORDERS_IDEMPOTENCY_TTL", "60", 1);
  EXPECT_EQ(OrdersOptions::FromEnv().idempotency_ttl, std::chrono::seconds(60));
  ::setenv("VIGIL_ORDERS_IDEMPOTENCY_TTL", "2592000", 1);
  EXPECT_EQ(OrdersOptions::FromEnv().idempotency_ttl, std::chrono::seconds(2592000));
  ::setenv("VIGIL_ORDERS_IDEMPOTENCY_TTL", "", 1);
  EXPECT_EQ(OrdersOptions::FromEnv().idempotency_ttl, std::chrono::seconds(86400))
      << "empty is unset";
  for (const char* bad : {"59", "2592001", "0", "-5", "1d", "day"}) {
    ::setenv("VIGIL_ORDERS_IDEMPOTENCY_TTL", bad, 1);
    try {
      const auto ttl = OrdersOptions::FromEnv().idempotency_ttl;
      ADD_FAILURE() << "accepted \"" << bad << "\" as " << ttl.count();
    } catch (const tel::ConfigError& e) {
      EXPECT_TRUE(Has(e.what(), "VIGIL_ORDERS_IDEMPOTENCY_TTL")) << e.what();
    }
  }
  ::unsetenv("VIGIL_ORDERS_IDEMPOTENCY_TTL");
}

}  // namespace
}  // namespace vigil::orders::testing

// The auth tables' retention: refresh-token families deleted once their newest token has
// been expired for an hour, retired signing keys deleted, both in bounded batches, run
// periodically on the service's runtime and stopped with it. The clock is the test's.
#include <chrono>
#include <vigil/testing/coroutine.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/text.hpp>

#include "auth_fixture.hpp"

namespace vigil::auth::testing {
namespace {

using test_support::Has;
using test_support::Occurrences;

constexpr std::int64_t kRefreshTtl = 10000;

const storage::Statement kCountRows{"SELECT COUNT(*) FROM refresh_tokens"};
const storage::Statement kCountFamily{"SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1"};
const storage::Statement kFamilyOf{"SELECT family_id FROM refresh_tokens WHERE token_hash = $1"};
const storage::Statement kCountKeys{"SELECT COUNT(*) FROM signing_keys"};
const storage::Statement kInsertToken{
    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, used_at, revoked_at) "
    "VALUES ($1, $2, $3, $4, $5, NULL)"};

// Runs one purge to its end on the calling thread.
service::PurgeReport RunPurge(AuthApi& auth) {
  return test_support::RunCoroutine([&] { return auth.retention().Run(); });
}

class RetentionTest : public ::testing::Test {
 protected:
  RetentionTest() : server_(database_, Options()) {}

  AuthOptions Options() {
    AuthOptions options = CheapOptions(now_);
    options.refresh_ttl = kRefreshTtl;
    return options;
  }

  std::string Login(std::string_view email) {
    const Response r = server_.Post("/login", Credentials(email, "correct horse"));
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    return Field(JsonOf(r), "refresh_token");
  }
  // The refresh token that replaces `token`.
  std::string Rotate(const std::string& token) {
    const Response r = server_.Post("/refresh", RefreshBody(token));
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    return Field(JsonOf(r), "refresh_token");
  }
  unsigned RefreshStatus(const std::string& token) {
    return server_.Post("/refresh", RefreshBody(token)).result_int();
  }

  std::int64_t Rows() {
    return server_.db().TransactBlocking(
        {}, [](storage::Session& s) { return s.Query(kCountRows).FirstRow()->Int(0); });
  }
  std::string FamilyOf(const std::string& token) {
    return server_.db().TransactBlocking({}, [&](storage::Session& s) {
      return std::string(s.Query(kFamilyOf, {RefreshTokenHash(token)}).FirstRow()->Text(0));
    });
  }
  std::int64_t FamilyRows(const std::string& family) {
    return server_.db().TransactBlocking({}, [&](storage::Session& s) {
      return s.Query(kCountFamily, {family}).FirstRow()->Int(0);
    });
  }
  std::int64_t Keys() {
    return server_.db().TransactBlocking(
        {}, [](storage::Session& s) { return s.Query(kCountKeys).FirstRow()->Int(0); });
  }
  // `families` families of `per_family` tokens each, the newest (unspent) expiring at
  // `expires_at` and each older (spent) one `step` seconds before the next; returns the
  // rows made.
  std::int64_t InsertFamilies(std::string_view prefix, int families, int per_family,
                              std::int64_t expires_at, std::int64_t step = 1) {
    server_.db().TransactBlocking({}, [&](storage::Session& s) {
      for (int f = 0; f < families; ++f) {
        const std::string family = std::string(prefix) + "-family-" + std::to_string(f);
        for (int t = 0; t < per_family; ++t) {
          const std::string hash = family + "-token-" + std::to_string(t);
          const std::int64_t expiry = expires_at - (per_family - 1 - t) * step;
          const storage::Param used =
              t + 1 < per_family ? storage::Param(expiry - kRefreshTtl + 1) : storage::Param();
          s.Query(kInsertToken, {hash, family, "user", expiry, used});
        }
      }
    });
    return static_cast<std::int64_t>(families) * per_family;
  }

  TestDatabase database_;
  std::atomic<std::int64_t> now_{kStart};
  AuthServer server_;
};

TEST_F(RetentionTest, DeletesFamiliesExpiredForAnHourAndKeepsEveryRowOfTheOthers) {
  ASSERT_EQ(
      server_.Post("/register", Credentials("ivan@example.com", "correct horse")).result_int(),
      201u);
  const std::string a1 = Login("ivan@example.com");  // family A: dead by the purge
  const std::string c1 = Login("ivan@example.com");  // family C: spent token + a live one
  now_ += 10;
  const std::string a2 = Rotate(a1);  // A's newest expires at kStart + 10 + kRefreshTtl
  now_ = kStart + 3000;
  const std::string d1 = Login("ivan@example.com");  // family D: expired, within the margin
  now_ = kStart + 9000;
  const std::string c2 = Rotate(c1);  // C lives until kStart + 9000 + kRefreshTtl
  const std::string family_a = FamilyOf(a1);
  const std::string family_c = FamilyOf(c1);
  const std::string family_d = FamilyOf(d1);
  ASSERT_EQ(Rows(), 5);

  // One second before A's newest token has been expired for a whole hour: nothing goes.
  now_ = kStart + 10 + kRefreshTtl + AuthApi::kExpiredFamilyMargin;
  service::PurgeReport report = RunPurge(server_.auth());
  EXPECT_EQ(report.Deleted("refresh_tokens"), 0);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(Rows(), 5);

  now_ += 1;
  report = RunPurge(server_.auth());
  EXPECT_EQ(report.Deleted("refresh_tokens"), 2);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(FamilyRows(family_a), 0);
  EXPECT_EQ(FamilyRows(family_c), 2) << "a live token keeps its family's spent ones";
  EXPECT_EQ(FamilyRows(family_d), 1) << "expired less than an hour ago";
  EXPECT_EQ(RunPurge(server_.auth()).Deleted("refresh_tokens"), 0) << "nothing left to do";

  // A purged token answers like any unknown or expired one.
  const Response replayed = server_.Post("/refresh", RefreshBody(a1));
  EXPECT_EQ(replayed.result_int(), 401u);
  EXPECT_EQ(Field(JsonOf(replayed), "detail"), "invalid or expired refresh token");
  EXPECT_EQ(RefreshStatus(a2), 401u);

  // The spent token of the live family still gives the theft away: the family dies.
  EXPECT_EQ(RefreshStatus(c1), 401u);
  EXPECT_EQ(RefreshStatus(c2), 401u) << "the replay revoked the family";
  const std::string logs = server_.Logs();
  EXPECT_TRUE(Has(logs, "\"msg\":\"refresh token reuse\"")) << logs;
  EXPECT_TRUE(Has(logs, "\"auth.family_id\":\"" + family_c + "\"")) << logs;

  // One info line for the purge that deleted rows, none for those that did not.
  EXPECT_EQ(Occurrences(logs, "\"msg\":\"expired refresh tokens purged\""), 1u) << logs;
  EXPECT_TRUE(Has(logs, "\"level\":\"info\",\"msg\":\"expired refresh tokens purged\"")) << logs;
  EXPECT_TRUE(Has(logs, "\"rows\":2")) << logs;
  const std::string metrics = server_.Metrics();
  EXPECT_TRUE(Has(metrics, "vigil_auth_refresh_tokens_purged_total 2\n")) << metrics;
}

TEST_F(RetentionTest, PurgesMoreRowsThanOneBatchInSeveralBatches) {
  static_assert(service::kPurgeBatch == 500);
  const std::int64_t old_expiry = kStart - 2 * AuthApi::kExpiredFamilyMargin;
  // 1503 dead rows, one family of them larger than a batch: four batches.
  const std::int64_t dead =
      InsertFamilies("dead", 301, 3, old_expiry) + InsertFamilies("long", 1, 600, old_expiry);
  // Live families with many spent tokens that expired long ago: none of their rows may
  // go, though every batch meets them among the expired ones.
  const std::int64_t live_rows = InsertFamilies("live", 3, 40, kStart + 5, 1000);
  ASSERT_EQ(Rows(), dead + live_rows);

  const service::PurgeReport report = RunPurge(server_.auth());
  EXPECT_EQ(report.Deleted("refresh_tokens"), dead);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(Rows(), live_rows);
  EXPECT_EQ(FamilyRows("long-family-0"), 0);
  EXPECT_EQ(FamilyRows("live-family-0"), 40);
  const std::string metrics = server_.Metrics();
  EXPECT_TRUE(Has(metrics, "vigil_auth_refresh_tokens_purged_total 1503\n")) << metrics;
  EXPECT_EQ(Occurrences(server_.Logs(), "\"msg\":\"expired refresh tokens purged\""), 1u)
      << "one line per purge, not per batch";
}

TEST_F(RetentionTest, AFailedPurgeIsOneWarnLineAndTheServiceCarriesOn) {
  InsertFamilies("dead", 2, 2, kStart - 2 * AuthApi::kExpiredFamilyMargin);
  static const storage::Statement kDrop{"DROP TABLE refresh_tokens"};
  server_.db().TransactBlocking({}, [](storage::Session& s) { s.Query(kDrop); });

  const service::PurgeReport report = RunPurge(server_.auth());
  EXPECT_NE(report.error, "");
  EXPECT_EQ(report.Deleted("refresh_tokens"), 0);
  const std::string logs = server_.Logs();
  EXPECT_EQ(Occurrences(logs, "\"msg\":\"retention purge failed\""), 1u) << logs;
  EXPECT_TRUE(Has(logs, "\"level\":\"warn\",\"msg\":\"retention purge failed\"")) << logs;
  EXPECT_TRUE(Has(logs, "\"db.collection.name\":\"refresh_tokens\"")) << logs;
  EXPECT_FALSE(Has(logs, "purged\"")) << logs;
  // The service still answers.
  EXPECT_EQ(server_.Get("/.well-known/jwks.json").result_int(), 200u);
}

TEST(SigningKeyRetentionTest, DeletesKeysAnHourPastPublicationButNeverTheNewest) {
  TestDatabase database;
  std::atomic<std::int64_t> now{kStart};
  AuthOptions options = CheapOptions(now);
  options.key_rotation = 60;
  options.access_ttl = 120;
  AuthServer server(database, options);  // the first key, created at kStart
  auto keys = [&server] {
    return server.db().TransactBlocking(
        {}, [](storage::Session& s) { return s.Query(kCountKeys).FirstRow()->Int(0); });
  };
  auto jwks_size = [&server] {
    const Response r = server.Get("/.well-known/jwks.json");
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    auto set = service::KeySet::FromJwks(r.body());
    return set ? set->size() : 0u;
  };
  ASSERT_EQ(server.Post("/register", Credentials("judy@example.com", "correct horse")).result_int(),
            201u);
  auto login = [&server] {
    const Response r = server.Post("/login", Credentials("judy@example.com", "correct horse"));
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    return KidOf(Field(JsonOf(r), "access_token"));
  };
  const std::string first = login();
  now = kStart + 61;
  const std::string second = login();  // the first key is due: a second one signs
  ASSERT_NE(first, second);
  ASSERT_EQ(keys(), 2);

  // The first key is published until kStart + 60 + 120, then kept an hour more.
  now = kStart + 60 + 120 + SigningKeys::kRetiredKeyMargin - 1;
  service::PurgeReport report = RunPurge(server.auth());
  EXPECT_EQ(report.Deleted("signing_keys"), 0);
  EXPECT_EQ(keys(), 2);
  now += 1;
  report = RunPurge(server.auth());
  EXPECT_EQ(report.Deleted("signing_keys"), 1);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(keys(), 1);

  // Long after, with no request to rotate it, the second key is the newest: kept, and
  // the next request rotates as usual.
  now = kStart + 100000;
  EXPECT_EQ(RunPurge(server.auth()).Deleted("signing_keys"), 0);
  EXPECT_EQ(keys(), 1);
  const std::string third = login();
  EXPECT_NE(third, second);
  EXPECT_EQ(jwks_size(), 1u);
  EXPECT_EQ(RunPurge(server.auth()).Deleted("signing_keys"), 1) << "the second key, now retired";
  EXPECT_EQ(login(), third);

  const std::string logs = server.Logs();
  EXPECT_EQ(Occurrences(logs, "\"msg\":\"retired signing keys purged\""), 2u) << logs;
  const std::string metrics = server.Metrics();
  EXPECT_TRUE(Has(metrics, "vigil_auth_signing_keys_purged_total 2\n")) << metrics;
}

using test_support::Eventually;

// How long the schedule test waits for a period's effect (the local helper's old 20 s).
constexpr std::chrono::seconds kScheduleWait{20};

TEST(PurgeScheduleTest, RunsOnTheRuntimeAgainEveryPeriodAndStopsWithIt) {
  TestDatabase database;
  std::atomic<std::int64_t> now{kStart};
  {
    auto server = std::make_unique<AuthServer>(
        database, CheapOptions(now),
        service::Schedule{std::chrono::milliseconds(0), std::chrono::milliseconds(20)});
    static const storage::Statement kInsert{
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, used_at, "
        "revoked_at) VALUES ($1, $2, 'user', $3, NULL, NULL)"};
    // Rows that die while the loop runs: each period's purge finds the ones made since.
    for (int round = 0; round < 3; ++round) {
      const std::string id = std::to_string(round);
      server->db().TransactBlocking({}, [&](storage::Session& s) {
        s.Query(kInsert, {"t" + id, "f" + id, kStart - 2 * AuthApi::kExpiredFamilyMargin});
      });
      const std::string expected =
          "vigil_auth_refresh_tokens_purged_total " + std::to_string(round + 1) + "\n";
      EXPECT_TRUE(Eventually([&] { return Has(server->Metrics(), expected); }, kScheduleWait))
          << server->Metrics();
    }
    // A failing period is logged and the next one runs all the same.
    static const storage::Statement kDrop{"DROP TABLE refresh_tokens"};
    server->db().TransactBlocking({}, [](storage::Session& s) { s.Query(kDrop); });
    EXPECT_TRUE(Eventually(
        [&] { return Occurrences(server->Logs(), "\"msg\":\"retention purge failed\"") >= 2; },
        kScheduleWait));
    // Destroyed with the loop between two periods (or inside one): it ends with the
    // runtime, touching nothing that is gone (the sanitizer build checks).
    server.reset();
  }
}

}  // namespace
}  // namespace vigil::auth::testing

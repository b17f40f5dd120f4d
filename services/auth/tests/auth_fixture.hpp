// Test support for the auth service: the real routes on an ephemeral loopback port, SQLite
// in a fresh temporary directory (or, when VIGIL_TEST_DATABASE_URL names a PostgreSQL
// database, that database with the auth tables dropped first), a clock the test moves,
// logs in a file the test reads, and the argon2id cost lowered through AuthOptions
// (never through the environment).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vigil/service/base64url.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/jwt.hpp>
#include <vigil/service/service.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/service.hpp>
#include <vigil/testing/telemetry.hpp>

#include "api.hpp"
#include "store.hpp"

namespace vigil::auth::testing {

using test_support::TempDir;

inline constexpr std::int64_t kStart = 1'800'000'000;
inline constexpr char kSecret[] = "identity-secret-for-the-auth-tests-0123456789";

// Where a test's auth replicas keep their data: a fresh SQLite file, or the PostgreSQL
// database of VIGIL_TEST_DATABASE_URL emptied of the auth tables.
class TestDatabase {
 public:
  TestDatabase() {
    options_.connections = 2;
    const char* url = std::getenv("VIGIL_TEST_DATABASE_URL");
    if (url == nullptr || *url == '\0') {
      options_.engine = storage::Engine::kSqlite;
      options_.target = (dir_.path() / "auth.db").string();
      return;
    }
    options_.engine = storage::Engine::kPostgres;
    options_.target = url;
    test_support::TestTelemetry telemetry("auth-test");
    auto db = storage::Database::Open(options_, *telemetry);
    static const storage::Statement kDrop[] = {
        storage::Statement("DROP TABLE IF EXISTS users"),
        storage::Statement("DROP TABLE IF EXISTS refresh_tokens"),
        storage::Statement("DROP TABLE IF EXISTS signing_keys"),
        storage::Statement("DELETE FROM schema_migrations WHERE service = 'auth'")};
    for (const auto& statement : kDrop) {
      // One transaction each: on PostgreSQL a failed statement spoils its transaction.
      try {
        db->TransactBlocking(telemetry::RequestContext{},
                             [&](storage::Session& s) { s.Query(statement); });
      } catch (const storage::DatabaseError&) {
        // schema_migrations does not exist yet on a new database: nothing to reset.
      }
    }
  }
  const storage::DatabaseOptions& options() const { return options_; }

 private:
  TempDir dir_;
  storage::DatabaseOptions options_;
};

inline AuthOptions CheapOptions(std::atomic<std::int64_t>& clock) {
  AuthOptions options;
  options.password = {1, 8 * 1024};  // argon2id at the minimum cost: tests hash often
  options.clock = [&clock] { return clock.load(); };
  return options;
}

using Response = test_support::ClientResponse;

// One auth "replica": its own telemetry, runtime and database pool on `database`; with
// `purges`, the retention purge runs on its runtime on that schedule, as in vigil-auth;
// `secret` and `previous_secret` are its VIGIL_INTERNAL_SECRET and
// VIGIL_INTERNAL_SECRET_PREVIOUS.
class AuthServer {
 public:
  AuthServer(const TestDatabase& database, AuthOptions options,
             std::optional<service::Schedule> purges = std::nullopt, std::string secret = kSecret,
             std::string previous_secret = {})
      : identity_(std::move(secret), std::chrono::seconds(60), std::move(previous_secret)),
        service_({"auth", 0, 0, ""}, *telemetry_, identity_, [&](service::ServiceHost& host) {
          auto& db = host.Own(storage::Database::Open(database.options(), *telemetry_));
          db.Migrate("auth", Migrations());
          db_ = &db;
          auth_ = &InstallAuth(host, db, std::move(options));
          if (purges) service::StartPurges(host, auth_->retention(), *purges);
        }) {}

  Response Send(std::string_view method, std::string_view target, std::string_view body,
                std::string_view extra_headers = {}) {
    std::string request = std::string(method) + " " + std::string(target) +
                          " HTTP/1.1\r\nHost: auth\r\n" + std::string(extra_headers);
    if (!body.empty() || method == "POST") {
      request +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    }
    request += "\r\n";
    request += body;
    return service_.RoundTrip(request);
  }
  Response Post(std::string_view target, std::string_view body) {
    return Send("POST", target, body);
  }
  Response Get(std::string_view target, std::string_view extra_headers = {}) {
    return Send("GET", target, {}, extra_headers);
  }

  // Everything logged so far.
  std::string Logs() { return telemetry_.Logs(); }
  std::string Metrics() { return telemetry_.Metrics(); }

  const service::IdentitySigner& identity() const { return identity_; }
  AuthApi& auth() { return *auth_; }
  // The replica's own pool on the test database, for looking at and arranging rows.
  storage::Database& db() { return *db_; }

 private:
  test_support::TestTelemetry telemetry_{"auth-test"};
  service::IdentitySigner identity_;
  AuthApi* auth_ = nullptr;
  storage::Database* db_ = nullptr;
  test_support::RunningService service_;
};

inline boost::json::object JsonOf(const Response& response) {
  boost::json::error_code ec;
  auto value = boost::json::parse(response.body(), ec);
  EXPECT_FALSE(ec) << response.body();
  EXPECT_TRUE(value.is_object()) << response.body();
  return value.is_object() ? value.as_object() : boost::json::object{};
}

inline std::string Field(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

inline std::string Credentials(std::string_view email, std::string_view password) {
  return boost::json::serialize(boost::json::object{{"email", email}, {"password", password}});
}

inline std::string RefreshBody(std::string_view token) {
  return boost::json::serialize(boost::json::object{{"refresh_token", token}});
}

// The kid in a token's header.
inline std::string KidOf(std::string_view token) {
  const auto header = service::Base64UrlDecode(token.substr(0, token.find('.')));
  if (!header) return {};
  boost::json::error_code ec;
  auto value = boost::json::parse(*header, ec);
  if (ec || !value.is_object()) return {};
  return Field(value.as_object(), "kid");
}

}  // namespace vigil::auth::testing

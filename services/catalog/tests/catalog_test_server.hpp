// Test support: the catalog in-process, on SQLite in a fresh temporary directory, served
// on an ephemeral loopback port with the platform's middleware, and a blocking client
// that speaks to it with or without an identity.
//
// With VIGIL_CATALOG_TEST_POSTGRES=postgres://... set, every server runs on that
// PostgreSQL instead, in a schema of its own (created, then dropped with its tables), so
// that the same tests prove the SQL on both engines.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include <vigil/service/service.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/service.hpp>
#include <vigil/testing/telemetry.hpp>

#include "api.hpp"

namespace vigil::catalog::testing {

using test_support::ClientResponse;
using test_support::TempDir;

inline constexpr std::string_view kSecret = "catalog-test-secret-of-at-least-32-bytes!";

// A PostgreSQL schema for one test server, dropped with everything in it at the end.
class PostgresSchema {
 public:
  PostgresSchema(const std::string& url, telemetry::Telemetry& telemetry) {
    static std::atomic<int> counter{0};
    name_ = "catalog_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    storage::DatabaseOptions admin;
    admin.engine = storage::Engine::kPostgres;
    admin.target = url;
    admin.connections = 1;
    admin_ = storage::Database::Open(admin, telemetry);
    Run("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    Run("CREATE SCHEMA " + name_);
    // libpq URI parameters are percent-decoded: options=-c search_path=<schema>.
    target_ =
        url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name_;
  }
  ~PostgresSchema() {
    try {
      Run("DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "dropping " << name_ << ": " << e.what();
    }
  }
  const std::string& target() const { return target_; }

 private:
  void Run(const std::string& sql) {
    const storage::Statement statement(sql);
    admin_->TransactBlocking(telemetry::RequestContext{},
                             [&](storage::Session& s) { s.Query(statement); });
  }

  std::string name_;
  std::string target_;
  std::unique_ptr<storage::Database> admin_;
};

class CatalogServer {
 public:
  explicit CatalogServer(CatalogOptions options = {}, std::size_t workers = 2,
                         std::size_t connections = 4)
      : telemetry_(test_support::QuietTelemetry("catalog", dir_.File("catalog.log"))),
        signer_(std::string(kSecret)) {
    storage::DatabaseOptions db_options;
    db_options.engine = storage::Engine::kSqlite;
    db_options.target = dir_.File("catalog.db");
    db_options.connections = connections;
    if (const char* url = std::getenv("VIGIL_CATALOG_TEST_POSTGRES"); url != nullptr && *url) {
      schema_ = std::make_unique<PostgresSchema>(url, telemetry_);
      db_options.engine = storage::Engine::kPostgres;
      db_options.target = schema_->target();
    }
    db_ = storage::Database::Open(db_options, telemetry_);
    db_->Migrate("catalog", Migrations());

    server_ = std::make_unique<test_support::RunningService>(
        service::ServiceDefinition{"catalog", 0, 0, ""}, telemetry_, signer_,
        [&](service::ServiceHost& host) {
          api_ = &host.Make<CatalogApi>(*db_, telemetry_.metrics(), host.identity(), options);
          api_->AddRoutes(host);
        },
        workers);
  }
  ~CatalogServer() {
    server_.reset();
    db_.reset();  // before its schema goes
  }

  std::uint16_t port() const { return server_->port(); }
  CatalogApi& api() { return *api_; }
  telemetry::Telemetry& telemetry() { return telemetry_; }
  storage::Database& db() { return *db_; }

  std::string UserIdentity(std::string_view user = "u1") const {
    return signer_.Sign("user:" + std::string(user));
  }
  std::string OrdersIdentity() const { return signer_.Sign("service:orders"); }

  // One request on a new connection. `identity` empty: no X-Vigil-Identity.
  ClientResponse Call(std::string_view method, std::string_view target, std::string_view body = {},
                      std::string_view identity = {},
                      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string request =
        std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: catalog\r\n";
    if (!identity.empty()) request += "X-Vigil-Identity: " + std::string(identity) + "\r\n";
    for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT") {
      bool has_type = false;
      for (const auto& h : headers) has_type = has_type || h.first == "Content-Type";
      if (!has_type) request += "Content-Type: application/json\r\n";
      request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n";
    request += body;
    return server_->RoundTrip(request);
  }

  double CacheRequests(std::string_view result) {
    return telemetry_.metrics()
        .CounterFamily("vigil_cache_requests_total", "", {"cache", "result"})
        .WithLabels({"items", result})
        .Value();
  }

 private:
  TempDir dir_;
  telemetry::Telemetry telemetry_;
  service::IdentitySigner signer_;
  std::unique_ptr<PostgresSchema> schema_;
  std::unique_ptr<storage::Database> db_;
  CatalogApi* api_ = nullptr;
  std::unique_ptr<test_support::RunningService> server_;
};

inline boost::json::value Json(const ClientResponse& res) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(res.body(), ec);
  EXPECT_FALSE(ec) << "not JSON: " << res.body();
  return v;
}

// A JSON string's text (a marker when it is not a string, so that comparisons fail).
inline std::string Str(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string())
                       : "<not a string: " + boost::json::serialize(v) + ">";
}

// The problem document's detail.
inline std::string Detail(const ClientResponse& res) {
  const auto v = Json(res);
  if (!v.is_object() || !v.as_object().contains("detail")) return "<no detail: " + res.body() + ">";
  return std::string(v.at("detail").as_string());
}

inline std::string ItemBody(std::string_view name, std::string_view category,
                            std::int64_t price_cents, std::int64_t stock) {
  boost::json::object o;
  o["name"] = name;
  o["category"] = category;
  o["price_cents"] = price_cents;
  o["stock"] = stock;
  return boost::json::serialize(o);
}

}  // namespace vigil::catalog::testing

// Test support for the orders service: the service on an ephemeral loopback port with
// SQLite in a temporary directory, and a stand-in catalog that keeps the reservation
// contract (POST /reservations, DELETE /reservations/{id}) over an in-memory stock table.
//
//   OrdersFixture f;
//   f.catalog.AddItem(kItemA, 1250, 10);
//   auto res = f.Post("/orders", R"({"lines":[...]})", f.User("alice"));
//
// Thread-safety: a fixture is driven by the test's thread; the stand-in catalog's state
// is guarded, since its handlers run on its server's thread.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/service/service.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/service.hpp>
#include <vigil/testing/telemetry.hpp>

#include "api.hpp"
#include "store.hpp"

namespace vigil::orders::testing {

using test_support::TempDir;

namespace json = boost::json;
namespace tel = vigil::telemetry;
using test_support::ClientResponse;
using test_support::RawClient;
using test_support::RunningServer;

inline constexpr std::string_view kSecret = "orders-test-secret-orders-test-secret-0123";
// Item ids as the catalog makes them.
inline constexpr std::string_view kItemA = "0193a1c2d3e4aaaaaaaaaaaaaaaa";
inline constexpr std::string_view kItemB = "0193a1c2d3e4bbbbbbbbbbbbbbbb";
inline constexpr std::string_view kItemC = "0193a1c2d3e4cccccccccccccccc";

// The catalog's side of reservations, as its contract states it.
class FakeCatalog {
 public:
  explicit FakeCatalog(const service::IdentitySigner& signer)
      : signer_(signer), server_(Routes(), Pipeline(), http::ServerOptions{}, 1) {}
  ~FakeCatalog() { Unhold(); }

  std::uint16_t port() const { return server_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  void AddItem(std::string_view id, std::int64_t price_cents, std::int64_t stock) {
    std::lock_guard lock(mu_);
    items_[std::string(id)] = Item{price_cents, stock};
  }
  std::int64_t Stock(std::string_view id) {
    std::lock_guard lock(mu_);
    return items_.at(std::string(id)).stock;
  }
  int posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }
  int deletes() {
    std::lock_guard lock(mu_);
    return deletes_;
  }
  std::vector<std::string> reservation_ids() {
    std::lock_guard lock(mu_);
    return reservation_ids_;
  }
  // The traceparent and X-Request-Id of each reservation request, in order.
  std::vector<std::pair<std::string, std::string>> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // Every POST is answered with `status` and a problem body saying `detail` (0: normal).
  void FailWith(unsigned status, std::string detail = "the catalog's own secret trouble") {
    std::lock_guard lock(mu_);
    fail_status_ = status;
    fail_detail_ = std::move(detail);
  }
  // The next POST blocks (its server thread) until Unhold().
  void Hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
    held_ = false;
  }
  void WaitUntilHeld() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Unhold() {
    std::lock_guard lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }

 private:
  struct Item {
    std::int64_t price_cents;
    std::int64_t stock;
  };
  struct Reserved {
    std::string item_id;
    std::int64_t quantity;
    std::int64_t price_cents;
  };

  static http::Pipeline Pipeline() {
    static tel::Logger quiet(test_support::QuietLog());
    http::Pipeline p;
    p.Add<http::ErrorMiddleware>(quiet);
    return p;
  }

  static std::string Answer(const std::string& id, const std::vector<Reserved>& lines) {
    json::array out;
    for (const Reserved& r : lines) {
      out.push_back(json::object{
          {"item_id", r.item_id}, {"quantity", r.quantity}, {"price_cents", r.price_cents}});
    }
    return json::serialize(json::object{{"id", id}, {"lines", std::move(out)}});
  }

  http::Routes Routes() {
    http::Routes routes;
    routes.Add("POST", "/reservations", [this](http::Exchange& ex) -> asio::awaitable<void> {
      service::RequireService(ex, signer_, "orders");
      std::unique_lock lock(mu_);
      ++posts_;
      seen_.emplace_back(std::string(ex.header("traceparent")),
                         std::string(ex.header("X-Request-Id")));
      if (hold_) {
        held_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return !hold_; });
      }
      if (fail_status_ != 0) {
        ex.RespondProblem(fail_status_, fail_detail_);
        co_return;
      }
      service::JsonReader body(service::ParseJsonObject(ex));
      const std::string id = body.String("id", 1, 64);
      std::vector<service::JsonReader> lines = body.Objects("lines", 1, 100);
      body.RejectUnknown();
      reservation_ids_.push_back(id);
      if (auto stored = reservations_.find(id); stored != reservations_.end()) {
        ex.RespondJson(200, Answer(id, stored->second));
        co_return;
      }
      std::vector<Reserved> reserved;
      for (auto& line : lines) {
        const std::string item_id = line.String("item_id", 1, 64);
        const std::int64_t quantity = line.Integer("quantity", 1, 1000000);
        auto item = items_.find(item_id);
        if (item == items_.end()) throw http::HttpError(422, "unknown item " + item_id);
        if (item->second.stock < quantity) {
          throw http::HttpError(409, "insufficient stock for item " + item_id);
        }
        reserved.push_back(Reserved{item_id, quantity, item->second.price_cents});
      }
      for (const Reserved& r : reserved) items_[r.item_id].stock -= r.quantity;
      reservations_[id] = reserved;
      ex.RespondJson(201, Answer(id, reserved));
    });
    routes.Add("DELETE", "/reservations/{id}", [this](http::Exchange& ex) -> asio::awaitable<void> {
      service::RequireService(ex, signer_, "orders");
      std::lock_guard lock(mu_);
      ++deletes_;
      auto stored = reservations_.find(std::string(ex.Param("id")));
      if (stored != reservations_.end()) {
        for (const Reserved& r : stored->second) items_[r.item_id].stock += r.quantity;
        reservations_.erase(stored);
      }
      ex.Respond(204, "", "text/plain");
      co_return;
    });
    return routes;
  }

  const service::IdentitySigner& signer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Item> items_;
  std::map<std::string, std::vector<Reserved>> reservations_;
  std::vector<std::string> reservation_ids_;
  std::vector<std::pair<std::string, std::string>> seen_;
  int posts_ = 0;
  int deletes_ = 0;
  unsigned fail_status_ = 0;
  std::string fail_detail_;
  bool hold_ = false;
  bool held_ = false;
  // Last: its handlers use everything above.
  RunningServer server_;
};

struct FixtureOptions {
  // Empty: the stand-in catalog.
  std::string catalog_url = {};
  std::chrono::milliseconds catalog_timeout{10000};
  std::chrono::seconds idempotency_ttl = kDefaultIdempotencyTtl;
  // Set: the retention purge runs on the service's runtime on this schedule.
  std::optional<service::Schedule> purges = std::nullopt;
};

// The orders service on its own Runtime, SQLite under a temporary directory, logs in a
// file there.
class OrdersFixture {
 public:
  explicit OrdersFixture(FixtureOptions options = {})
      : signer_(std::string(kSecret)),
        catalog(signer_),
        db_(OpenDatabase(dir_, *telemetry_)),
        service_({"orders", 0, 0, ""}, *telemetry_, signer_, [&](service::ServiceHost& host) {
          const std::string url = options.catalog_url.empty() ? catalog.url() : options.catalog_url;
          auto& upstream =
              host.Make<http::Upstream>(host.runtime(), http::UpstreamAddress::Parse(url),
                                        http::PoolOptions{}, telemetry_->metrics());
          auto& client = host.Make<http::Client>(
              upstream, telemetry_->tracer(), host.client_instruments(), options.catalog_timeout);
          auto& api = host.Make<OrdersApi>(*db_, client, host.identity(), *telemetry_,
                                               options.idempotency_ttl);
          api.AddRoutes(host);
          if (options.purges) service::StartPurges(host, api.retention(), *options.purges);
          api_ = &api;
        }) {}

  // ---- Requests ---------------------------------------------------------------------
  std::string User(std::string_view id) const {
    return std::string(service::kIdentityHeader) + ": " + signer_.Sign("user:" + std::string(id)) +
           "\r\n";
  }
  std::string Service(std::string_view name) const {
    return std::string(service::kIdentityHeader) + ": " +
           signer_.Sign("service:" + std::string(name)) + "\r\n";
  }
  ClientResponse Post(std::string_view target, std::string_view body, std::string_view headers) {
    return Send("POST " + std::string(target) + " HTTP/1.1\r\nHost: orders\r\n" +
                std::string(headers) + "Content-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + std::string(body));
  }
  ClientResponse Get(std::string_view target, std::string_view headers) {
    return Send("GET " + std::string(target) + " HTTP/1.1\r\nHost: orders\r\n" +
                std::string(headers) + "\r\n");
  }
  ClientResponse Send(const std::string& raw) { return service_.RoundTrip(raw); }
  std::uint16_t port() const { return service_.port(); }

  // ---- Inspection ---------------------------------------------------------------------
  std::int64_t Count(std::string_view table) {
    const storage::Statement count("SELECT COUNT(*) FROM " + std::string(table));
    return db_->TransactBlocking(
        {}, [&](storage::Session& s) { return s.Query(count).FirstRow()->Int(0); });
  }
  void Execute(std::string sql, std::initializer_list<storage::Param> params = {}) {
    const storage::Statement statement(std::move(sql));
    std::vector<storage::Param> values(params);
    db_->TransactBlocking({}, [&](storage::Session& s) {
      s.Query(statement, values);
      return 0;
    });
  }
  std::string Metrics() { return telemetry_.Metrics(); }
  // Every log line written so far.
  std::string Logs() { return telemetry_.Logs(); }
  const service::IdentitySigner& signer() const { return signer_; }
  OrdersApi& api() { return *api_; }
  storage::Database& db() { return *db_; }

 private:
  // SQLite in `dir`; or, when VIGIL_ORDERS_TEST_DATABASE_URL names a PostgreSQL
  // database that the tests may wipe, that database with the tables made afresh.
  static std::unique_ptr<storage::Database> OpenDatabase(const TempDir& dir,
                                                         tel::Telemetry& telemetry) {
    storage::DatabaseOptions options;
    options.engine = storage::Engine::kSqlite;
    options.target = (dir.path() / "orders.db").string();
    options.connections = 2;
    if (const char* url = std::getenv("VIGIL_ORDERS_TEST_DATABASE_URL"); url != nullptr && *url) {
      options.engine = storage::Engine::kPostgres;
      options.target = url;
    }
    auto db = storage::Database::Open(options, telemetry);
    if (options.engine == storage::Engine::kPostgres) {
      static const storage::Statement kWipe{
          "DROP TABLE IF EXISTS order_lines, orders, idempotency_keys, schema_migrations"};
      db->TransactBlocking({}, [](storage::Session& s) {
        s.Query(kWipe);
        return 0;
      });
    }
    db->Migrate("orders", Migrations());
    return db;
  }
  TempDir dir_;
  test_support::TestTelemetry telemetry_{"orders"};
  service::IdentitySigner signer_;

 public:
  FakeCatalog catalog;

 private:
  std::unique_ptr<storage::Database> db_;
  OrdersApi* api_ = nullptr;
  test_support::RunningService service_;
};

// ---- Reading answers ------------------------------------------------------------------

inline json::object Body(const ClientResponse& res) {
  boost::system::error_code ec;
  json::value value = json::parse(res.body(), ec);
  if (ec || !value.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << res.body();
    return {};
  }
  return std::move(value.as_object());
}

inline std::string Detail(const ClientResponse& res) {
  const json::object body = Body(res);
  const json::value* detail = body.if_contains("detail");
  return detail != nullptr && detail->is_string() ? std::string(detail->get_string()) : "";
}

inline std::string Line(std::string_view item, std::int64_t quantity) {
  return R"({"item_id":")" + std::string(item) + R"(","quantity":)" + std::to_string(quantity) +
         "}";
}

inline std::string Lines(std::initializer_list<std::string> lines) {
  std::string out = R"({"lines":[)";
  bool first = true;
  for (const std::string& line : lines) {
    if (!first) out += ',';
    out += line;
    first = false;
  }
  return out + "]}";
}

inline std::string Key(std::string_view key) {
  return "Idempotency-Key: " + std::string(key) + "\r\n";
}

}  // namespace vigil::orders::testing

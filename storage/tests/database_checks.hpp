// The behaviour both engines share, as value-parameterised tests: each test program
// includes this header once, defines FreshDatabase() for its engine and instantiates
// EngineTest with it.
//
//   DatabaseOptions FreshDatabase(Engine) { ... a new, empty database ... }
//   INSTANTIATE_TEST_SUITE_P(Sqlite, EngineTest, ::testing::Values(Engine::kSqlite));
//
// Spans are read back from the OTLP/JSON file a Telemetry writes (its traces.file
// destination) after Shutdown() flushed it; metrics from the registry's exposition.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/testing/coroutine.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::storage {

namespace asio = boost::asio;
namespace tel = vigil::telemetry;

// A new empty database of `engine` for one test (options.connections and max_waiting
// at their defaults).
DatabaseOptions FreshDatabase(Engine engine);

namespace testing_support {

// A Telemetry whose spans go to a file, read back by Spans().
class CapturingTelemetry {
 public:
  CapturingTelemetry() : dir_("storage-spans"), path_(dir_.File("spans.jsonl")) {
    tel::TelemetryOptions options;
    options.service.name = "storage-test";
    options.log.handle_signals = false;
    options.log.level = tel::LogLevel::kError;
    options.traces.file = tel::OtlpFileExporterOptions{path_.string(), {}};
    telemetry_ = std::make_unique<tel::Telemetry>(std::move(options));
  }
  tel::Telemetry& operator*() { return *telemetry_; }
  tel::Telemetry* operator->() { return telemetry_.get(); }

  // Every span ended so far, one OTLP/JSON span object each. Shuts the Telemetry down:
  // call it once, at the end.
  std::vector<std::string> Spans() {
    telemetry_->Shutdown();
    std::ifstream in(path_);
    std::vector<std::string> spans;
    std::string line;
    const std::string marker = "{\"traceId\":";
    while (std::getline(in, line)) {
      for (std::size_t at = line.find(marker); at != std::string::npos;) {
        const std::size_t next = line.find(marker, at + 1);
        spans.push_back(line.substr(at, next == std::string::npos ? next : next - at));
        at = next;
      }
    }
    return spans;
  }

 private:
  test_support::TempDir dir_;
  std::filesystem::path path_;
  std::unique_ptr<tel::Telemetry> telemetry_;
};

inline std::string Attribute(std::string_view key, std::string_view value) {
  return "{\"key\":\"" + std::string(key) + "\",\"value\":{\"stringValue\":\"" +
         std::string(value) + "\"}}";
}

using test_support::Has;

}  // namespace testing_support

class EngineTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override { options_ = FreshDatabase(GetParam()); }

  std::unique_ptr<Database> Open(std::size_t connections = 4, std::size_t max_waiting = 1024) {
    DatabaseOptions options = options_;
    options.connections = connections;
    options.max_waiting = max_waiting;
    return Database::Open(options, *telemetry_);
  }
  std::string_view SystemName() const {
    return GetParam() == Engine::kSqlite ? "sqlite" : "postgresql";
  }

  DatabaseOptions options_;
  testing_support::CapturingTelemetry telemetry_;
  tel::RequestContext ctx_ = tel::RequestContext::NewRoot();
};

namespace testing_support {

inline const Migration kMigrations[] = {
    {1, "items",
     "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT, "
     "price_cents BIGINT NOT NULL, stock BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX items_by_category ON items (category)"},
    {2, "counters",
     "CREATE TABLE counters (name TEXT PRIMARY KEY, n BIGINT NOT NULL);"
     "INSERT INTO counters (name, n) VALUES ('hits', 0)"},
};

inline const Statement kInsertItem(
    "INSERT INTO items (id, name, category, price_cents, stock) VALUES ($1, $2, $3, $4, $5) "
    "RETURNING id, name");
inline const Statement kGetItem(
    "SELECT id, name, category, price_cents, stock FROM items WHERE id = $1");
inline const Statement kTakeStock(
    "UPDATE items SET stock = stock - $1 WHERE id = $2 AND stock >= $1 RETURNING stock");
inline const Statement kDeleteItem("DELETE FROM items WHERE category = $1");
inline const Statement kCountItems("SELECT count(*) FROM items");
inline const Statement kHit("UPDATE counters SET n = n + 1 WHERE name = 'hits'");
inline const Statement kHits("SELECT n FROM counters WHERE name = 'hits'");
inline const Statement kMigrationsOf(
    "SELECT version, name, applied_at FROM schema_migrations WHERE service = $1 "
    "ORDER BY version");

}  // namespace testing_support

using namespace testing_support;

TEST_P(EngineTest, MigrationsApplyOnceAndAReopenedDatabaseAppliesOnlyNewOnes) {
  {
    auto db = Open();
    EXPECT_EQ(db->engine(), GetParam());
    db->Migrate("catalog", kMigrations);
    // Applied migrations are skipped: a second run of migration 2 would fail on its
    // CREATE TABLE.
    EXPECT_NO_THROW(db->Migrate("catalog", kMigrations));
    auto rows = db->TransactBlocking(
        ctx_, [](Session& s) { return s.Query(kMigrationsOf, {"catalog"}).rows; });
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].Int(0), 1);
    EXPECT_EQ(rows[0].Text(1), "items");
    EXPECT_EQ(rows[1].Int(0), 2);
    EXPECT_GT(rows[1].Int(2), 1'700'000'000);  // applied_at, unix seconds
  }
  const Migration more[] = {
      kMigrations[0],
      kMigrations[1],
      {3, "more hits", "INSERT INTO counters (name, n) VALUES ('misses', 0)"},
  };
  auto db = Open();
  db->Migrate("catalog", more);
  // Another service's migrations are its own, even with the same versions.
  const Migration other[] = {{1, "orders", "CREATE TABLE orders (id TEXT PRIMARY KEY)"}};
  db->Migrate("orders", other);
  static const Statement kCounters("SELECT count(*) FROM counters");
  EXPECT_EQ(
      db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kCounters).rows[0].Int(0); }), 2);
  EXPECT_EQ(db->TransactBlocking(
                ctx_, [](Session& s) { return s.Query(kMigrationsOf, {"catalog"}).rows.size(); }),
            3u);
}

TEST_P(EngineTest, AFailedMigrationNamesItselfAndLeavesNothingBehind) {
  auto db = Open();
  db->Migrate("catalog", kMigrations);
  const Migration broken[] = {
      {7, "half done", "CREATE TABLE half (x BIGINT); SELECT * FROM no_such_table"}};
  try {
    db->Migrate("catalog", broken);
    FAIL() << "the migration was applied";
  } catch (const DatabaseError& e) {
    EXPECT_TRUE(Has(e.what(), "7")) << e.what();
    EXPECT_TRUE(Has(e.what(), "half done")) << e.what();
  }
  static const Statement kHalf("SELECT count(*) FROM half");
  EXPECT_THROW(db->TransactBlocking(ctx_, [](Session& s) { s.Query(kHalf); }), DatabaseError);
  EXPECT_EQ(db->TransactBlocking(
                ctx_, [](Session& s) { return s.Query(kMigrationsOf, {"catalog"}).rows.size(); }),
            2u);
}

TEST_P(EngineTest, PostgresSqlReplacesTheCommonSqlOnPostgres) {
  auto db = Open();
  const Migration m[] = {{1, "marker",
                          "CREATE TABLE marker (which TEXT); INSERT INTO marker VALUES ('common')",
                          "CREATE TABLE marker (which TEXT); INSERT INTO marker VALUES ('pg')"}};
  db->Migrate("x", m);
  static const Statement kWhich("SELECT which FROM marker");
  const std::string which = db->TransactBlocking(
      ctx_, [](Session& s) { return std::string(s.Query(kWhich).rows.at(0).Text(0)); });
  EXPECT_EQ(which, GetParam() == Engine::kPostgres ? "pg" : "common");
}

TEST_P(EngineTest, MigrationVersionsMustBePositiveAndDistinct) {
  auto db = Open();
  const Migration twice[] = {{1, "a", "SELECT 1"}, {1, "b", "SELECT 1"}};
  EXPECT_THROW(db->Migrate("x", twice), DatabaseError);
  const Migration zero[] = {{0, "a", "SELECT 1"}};
  EXPECT_THROW(db->Migrate("x", zero), DatabaseError);
}

TEST_P(EngineTest, InsertSelectUpdateDeleteWithReturningAndAffectedCounts) {
  auto db = Open();
  db->Migrate("catalog", kMigrations);
  db->TransactBlocking(ctx_, [](Session& s) {
    Result inserted = s.Query(kInsertItem, {"i1", "Lamp", "home", 1999, 5});
    EXPECT_EQ(inserted.affected, 1);
    ASSERT_EQ(inserted.rows.size(), 1u);
    EXPECT_EQ(inserted.rows[0].Text(0), "i1");
    EXPECT_EQ(inserted.rows[0].Text(1), "Lamp");
    s.Query(kInsertItem, {"i2", "Chair \"Ø\" 'x'", "home", 0, 1});
  });

  auto row =
      db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kGetItem, {"i1"}).FirstRow(); });
  ASSERT_TRUE(row.has_value());
  ASSERT_EQ(row->size(), 5u);
  EXPECT_EQ(row->Text(1), "Lamp");
  EXPECT_EQ(row->Int(3), 1999);
  EXPECT_EQ(row->Int(4), 5);

  const std::string odd = db->TransactBlocking(
      ctx_, [](Session& s) { return std::string(s.Query(kGetItem, {"i2"}).rows.at(0).Text(1)); });
  EXPECT_EQ(odd, "Chair \"Ø\" 'x'");

  auto stock = db->TransactBlocking(ctx_, [](Session& s) {
    Result r = s.Query(kTakeStock, {2, "i1"});
    EXPECT_EQ(r.affected, 1);
    return r.rows.at(0).Int(0);
  });
  EXPECT_EQ(stock, 3);
  // Not enough stock: no row matches, nothing changes.
  auto none = db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kTakeStock, {4, "i1"}); });
  EXPECT_TRUE(none.rows.empty());
  EXPECT_EQ(none.affected, 0);

  auto missing =
      db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kGetItem, {"nope"}).FirstRow(); });
  EXPECT_FALSE(missing.has_value());

  auto counted = db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kCountItems); });
  EXPECT_EQ(counted.affected, 0);  // a SELECT changes nothing, whatever ran before it
  EXPECT_EQ(counted.rows.at(0).Int(0), 2);
  EXPECT_EQ(db->TransactBlocking(
                ctx_, [](Session& s) { return s.Query(kDeleteItem, {"home"}).affected; }),
            2);
}

TEST_P(EngineTest, NullsAndLargeIntegersRoundTrip) {
  auto db = Open();
  db->Migrate("catalog", kMigrations);
  auto row = db->TransactBlocking(ctx_, [](Session& s) {
    s.Query(kInsertItem, {"n1", "", nullptr, INT64_MAX, INT64_MIN});
    return s.Query(kGetItem, {"n1"}).FirstRow();
  });
  ASSERT_TRUE(row.has_value());
  EXPECT_FALSE(row->IsNull(1));
  EXPECT_EQ(row->Text(1), "");  // empty text is not NULL
  EXPECT_TRUE(row->IsNull(2));
  EXPECT_EQ(row->Text(2), "");
  EXPECT_THROW(row->Int(2), DatabaseError);
  EXPECT_EQ(row->Int(3), INT64_MAX);
  EXPECT_EQ(row->Int(4), INT64_MIN);
  // A NULL parameter compares as unknown: no row.
  EXPECT_FALSE(db->TransactBlocking(ctx_, [](Session& s) {
                   return s.Query(kGetItem, {nullptr}).FirstRow();
                 }).has_value());
}

TEST_P(EngineTest, DuplicateKeyIsAConstraintViolationWithoutTheValue) {
  auto db = Open();
  db->Migrate("catalog", kMigrations);
  db->TransactBlocking(ctx_, [](Session& s) {
    s.Query(kInsertItem, {"dup-secret-value", "a", "c", 1, 1});
  });
  try {
    db->TransactBlocking(ctx_, [](Session& s) {
      s.Query(kInsertItem, {"dup-secret-value", "b", "c", 1, 1});
    });
    FAIL() << "no exception";
  } catch (const ConstraintViolation& e) {
    EXPECT_FALSE(Has(e.what(), "dup-secret-value")) << e.what();
    EXPECT_TRUE(Has(e.what(), "INSERT items")) << e.what();
  }
  // NOT NULL is a constraint too, but not a duplicate: a plain DatabaseError.
  try {
    db->TransactBlocking(ctx_, [](Session& s) { s.Query(kInsertItem, {"x", nullptr, "c", 1, 1}); });
    FAIL() << "no exception";
  } catch (const ConstraintViolation&) {
    FAIL() << "NOT NULL reported as a duplicate";
  } catch (const DatabaseError&) {
  }
}

TEST_P(EngineTest, WorkThatThrowsRollsBackAndTheExceptionPropagates) {
  auto db = Open();
  db->Migrate("catalog", kMigrations);
  struct Boom : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  EXPECT_THROW(db->TransactBlocking(ctx_,
                                    [](Session& s) {
                                      s.Query(kInsertItem, {"r1", "a", "c", 1, 1});
                                      throw Boom("boom");
                                    }),
               Boom);
  // A failed statement rolls back what the transaction did before it.
  EXPECT_THROW(db->TransactBlocking(ctx_,
                                    [](Session& s) {
                                      s.Query(kInsertItem, {"r2", "a", "c", 1, 1});
                                      s.Query(kInsertItem, {"r2", "a", "c", 1, 1});
                                    }),
               ConstraintViolation);
  EXPECT_EQ(
      db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kCountItems).rows[0].Int(0); }),
      0);
  // The connection is fine afterwards.
  db->TransactBlocking(ctx_, [](Session& s) { s.Query(kInsertItem, {"r1", "a", "c", 1, 1}); });
  EXPECT_EQ(
      db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kCountItems).rows[0].Int(0); }),
      1);
}

TEST_P(EngineTest, WrongParameterCountAndSeveralStatementsAreRefusedAlike) {
  auto db = Open(1);
  db->Migrate("catalog", kMigrations);
  try {
    db->TransactBlocking(ctx_, [](Session& s) { s.Query(kGetItem, {"a", "b"}); });
    FAIL() << "no exception";
  } catch (const DatabaseError& e) {
    EXPECT_TRUE(Has(e.what(), "takes 1 parameters, got 2")) << e.what();
  }
  static const Statement kTwo("SELECT 1; SELECT 2");
  EXPECT_THROW(db->TransactBlocking(ctx_, [](Session& s) { s.Query(kTwo); }), DatabaseError);
  static const Statement kBad("SELEKT 1");
  EXPECT_THROW(db->TransactBlocking(ctx_, [](Session& s) { s.Query(kBad); }), DatabaseError);
  EXPECT_EQ(db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kHits).rows[0].Int(0); }),
            0);
}

TEST_P(EngineTest, ConcurrentTransactsFromTwoIoContextsAddUpAndResumeOnTheirOwnThread) {
  auto db = Open(4);
  db->Migrate("catalog", kMigrations);
  constexpr int kCoroutines = 40;
  constexpr int kIncrements = 5;
  asio::io_context a;
  asio::io_context b;
  std::atomic<int> wrong_thread{0};
  std::atomic<int> ran_on_caller{0};
  auto worker = [&](asio::io_context& io) -> asio::awaitable<void> {
    for (int i = 0; i < kIncrements; ++i) {
      const auto caller = std::this_thread::get_id();
      const auto affected = co_await db->Transact(ctx_, [&](Session& s) {
        if (std::this_thread::get_id() == caller) ++ran_on_caller;
        return s.Query(kHit).affected;
      });
      EXPECT_EQ(affected, 1);
      if (!io.get_executor().running_in_this_thread() || std::this_thread::get_id() != caller) {
        ++wrong_thread;
      }
    }
  };
  for (int i = 0; i < kCoroutines; ++i) {
    asio::co_spawn(a, worker(a), asio::detached);
    asio::co_spawn(b, worker(b), asio::detached);
  }
  std::thread ta([&] { a.run(); });
  std::thread tb([&] { b.run(); });
  ta.join();
  tb.join();
  EXPECT_EQ(wrong_thread.load(), 0);
  EXPECT_EQ(ran_on_caller.load(), 0) << "work must run on a database thread";
  EXPECT_EQ(db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kHits).rows[0].Int(0); }),
            2 * kCoroutines * kIncrements);
}

TEST_P(EngineTest, TransactReturnsValuesVoidAndMoveOnlyResultsAndRethrows) {
  auto db = Open(2);
  db->Migrate("catalog", kMigrations);
  test_support::RunCoroutine([&]() -> asio::awaitable<void> {
    co_await db->Transact(ctx_, [](Session& s) { s.Query(kInsertItem, {"v1", "a", "c", 1, 7}); });
    auto row = co_await db->Transact(
        ctx_, [](Session& s) { return s.Query(kGetItem, {"v1"}).FirstRow(); });
    EXPECT_TRUE(row.has_value());
    if (row) {
      EXPECT_EQ(row->Int(4), 7);
    }
    auto owned = co_await db->Transact(ctx_, [](Session& s) {
      return std::make_unique<std::int64_t>(s.Query(kCountItems).rows.at(0).Int(0));
    });
    EXPECT_EQ(*owned, 1);
    bool thrown = false;
    try {
      co_await db->Transact(ctx_, [](Session& s) { s.Query(kInsertItem, {"v1", "a", "c", 1, 7}); });
    } catch (const ConstraintViolation&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
  });
}

TEST_P(EngineTest, TooManyWaitingCallsAreRefusedWithUnavailable) {
  auto db = Open(1, 2);
  db->Migrate("catalog", kMigrations);
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::thread blocker([&] {
    db->TransactBlocking(ctx_, [&](Session& s) {
      s.Query(kHit);
      started.set_value();
      released.wait();
    });
  });
  started.get_future().wait();

  // Two calls may wait for the one connection; the third is refused at once.
  asio::io_context io;
  int done = 0;
  int refused = 0;
  auto hit = [&]() -> asio::awaitable<void> {
    try {
      co_await db->Transact(ctx_, [](Session& s) { s.Query(kHit); });
      ++done;
    } catch (const Unavailable&) {
      ++refused;
    }
  };
  asio::co_spawn(io, hit(), asio::detached);
  asio::co_spawn(io, hit(), asio::detached);
  io.poll();  // both are queued now
  asio::co_spawn(io, hit(), asio::detached);
  EXPECT_THROW(db->TransactBlocking(ctx_, [](Session& s) { s.Query(kHit); }), Unavailable);
  while (refused == 0) io.run_one();
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(done, 0);

  release.set_value();
  blocker.join();
  io.restart();
  io.run();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kHits).rows[0].Int(0); }),
            3);
}

TEST_P(EngineTest, EveryStatementIsAClientSpanAndAHistogramObservation) {
  auto db = Open(2);
  db->Migrate("catalog", kMigrations);
  db->TransactBlocking(ctx_, [](Session& s) {
    s.Query(kInsertItem, {"s1", "a", "c", 1, 1});
    s.Query(kGetItem, {"s1"});
  });
  EXPECT_THROW(db->TransactBlocking(ctx_,
                                    [](Session& s) {
                                      s.Query(kInsertItem, {"s1", "a", "c", 1, 1});
                                    }),
               ConstraintViolation);
  EXPECT_TRUE(db->Healthy());

  const std::string metrics = telemetry_->metrics().Expose(tel::ExpositionFormat::kPrometheusText);
  const std::string system(SystemName());
  EXPECT_TRUE(Has(metrics, "db_client_operation_duration_seconds_count{db_system=\"" + system +
                               "\",db_operation_name=\"INSERT\"} 2"))
      << metrics;
  EXPECT_TRUE(Has(metrics, "db_client_operation_duration_seconds_count{db_system=\"" + system +
                               "\",db_operation_name=\"SELECT\"} 1"))
      << metrics;
  EXPECT_TRUE(Has(metrics, "db_client_operation_duration_seconds_bucket{db_system=\"" + system +
                               "\",db_operation_name=\"INSERT\",le=\"0.005\"}"))
      << metrics;
  EXPECT_TRUE(Has(metrics, "vigil_db_pool_connections{state=\"idle\"} 2")) << metrics;
  EXPECT_TRUE(Has(metrics, "vigil_db_pool_connections{state=\"in_use\"} 0")) << metrics;
  // Migrate's three transactions and the test's two.
  EXPECT_TRUE(Has(metrics, "vigil_db_pool_wait_seconds_count 5")) << metrics;
  db.reset();

  const std::vector<std::string> spans = telemetry_.Spans();
  const std::string trace = "\"traceId\":\"" + ctx_.span.trace_id.ToHex() + "\"";
  const std::string parent = "\"parentSpanId\":\"" + ctx_.span.span_id.ToHex() + "\"";
  int inserts = 0;
  int selects = 0;
  for (const std::string& span : spans) {
    // Transactions' own statements and migrations are not spans.
    EXPECT_FALSE(Has(span, "\"name\":\"BEGIN\"") || Has(span, "\"name\":\"COMMIT\"") ||
                 Has(span, "schema_migrations"))
        << span;
    if (Has(span, "\"name\":\"INSERT items\"")) {
      ++inserts;
      EXPECT_TRUE(Has(span, trace)) << span;
      EXPECT_TRUE(Has(span, parent)) << span;
      EXPECT_TRUE(Has(span, "\"kind\":3")) << span;
      EXPECT_TRUE(Has(span, Attribute("db.system.name", system))) << span;
      EXPECT_TRUE(Has(span, Attribute("db.operation.name", "INSERT"))) << span;
      EXPECT_TRUE(Has(span, Attribute("db.collection.name", "items"))) << span;
      EXPECT_TRUE(Has(span, Attribute("db.query.text", kInsertItem.sql()))) << span;
    }
    if (Has(span, "\"name\":\"SELECT items\"")) {
      ++selects;
      EXPECT_TRUE(Has(span, parent)) << span;
      EXPECT_FALSE(Has(span, "\"status\":{")) << span;
    }
  }
  EXPECT_EQ(inserts, 2);
  EXPECT_EQ(selects, 1);
  // The duplicate: an error status and the database's code as error.type.
  const std::string code = GetParam() == Engine::kSqlite ? "1555" : "23505";
  int errors = 0;
  for (const std::string& span : spans) {
    if (Has(span, "\"code\":2")) {
      ++errors;
      EXPECT_TRUE(Has(span, "\"name\":\"INSERT items\"")) << span;
      EXPECT_TRUE(Has(span, Attribute("error.type", code))) << span;
      EXPECT_TRUE(Has(span, Attribute("db.response.status_code", code))) << span;
    }
  }
  EXPECT_EQ(errors, 1);
}

}  // namespace vigil::storage

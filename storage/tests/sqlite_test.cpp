// The SQLite engine: the shared checks (database_checks.hpp) on a file in a temporary
// directory, plus what only SQLite has (pragmas, ":memory:", opening failures).
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/files.hpp>

#include "database_checks.hpp"
#include "sqlite_connection.hpp"

namespace vigil::storage {
namespace {

// Every test's files live under one directory, removed when the program ends.
const std::filesystem::path& TempRoot() {
  static const test_support::TempDir dir("storage-sqlite");
  return dir.path();
}

}  // namespace

DatabaseOptions FreshDatabase(Engine) {
  static int next = 0;
  DatabaseOptions options;
  options.engine = Engine::kSqlite;
  options.target = (TempRoot() / ("db" + std::to_string(next++) + ".db")).string();
  return options;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, EngineTest, ::testing::Values(Engine::kSqlite));

namespace {

using test_support::Has;

class SqliteTest : public ::testing::Test {
 protected:
  testing_support::CapturingTelemetry telemetry_;
  tel::RequestContext ctx_ = tel::RequestContext::NewRoot();
};

std::string Pragma(Database& db, const tel::RequestContext& ctx, const Statement& pragma) {
  return db.TransactBlocking(
      ctx, [&](Session& s) { return std::string(s.Query(pragma).rows.at(0).Text(0)); });
}

TEST_F(SqliteTest, ConnectionsUseWalForeignKeysNormalSyncAndTheBusyTimeout) {
  DatabaseOptions options = FreshDatabase(Engine::kSqlite);
  options.busy_timeout = std::chrono::milliseconds(1234);
  auto db = Database::Open(options, *telemetry_);
  static const Statement kJournal("PRAGMA journal_mode");
  static const Statement kForeignKeys("PRAGMA foreign_keys");
  static const Statement kSync("PRAGMA synchronous");
  static const Statement kBusy("PRAGMA busy_timeout");
  // Asked several times: each lands on whichever connection is free.
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(Pragma(*db, ctx_, kJournal), "wal");
    EXPECT_EQ(Pragma(*db, ctx_, kForeignKeys), "1");
    EXPECT_EQ(Pragma(*db, ctx_, kSync), "1");  // NORMAL
    EXPECT_EQ(Pragma(*db, ctx_, kBusy), "1234");
  }
}

TEST_F(SqliteTest, ForeignKeysAreEnforcedAndAreNotDuplicates) {
  auto db = Database::Open(FreshDatabase(Engine::kSqlite), *telemetry_);
  const Migration m[] = {{1, "fk",
                          "CREATE TABLE parent (id TEXT PRIMARY KEY);"
                          "CREATE TABLE child (id TEXT PRIMARY KEY, "
                          "parent TEXT NOT NULL REFERENCES parent (id))"}};
  db->Migrate("fk", m);
  static const Statement kChild("INSERT INTO child (id, parent) VALUES ($1, $2)");
  try {
    db->TransactBlocking(ctx_, [](Session& s) { s.Query(kChild, {"c", "missing"}); });
    FAIL() << "no exception";
  } catch (const ConstraintViolation&) {
    FAIL() << "a foreign key failure is not a duplicate";
  } catch (const DatabaseError& e) {
    EXPECT_TRUE(Has(e.what(), "FOREIGN KEY")) << e.what();
  }
}

TEST_F(SqliteTest, InMemoryNeedsExactlyOneConnection) {
  DatabaseOptions options;
  options.target = ":memory:";
  options.connections = 2;
  EXPECT_THROW(Database::Open(options, *telemetry_), DatabaseError);
  options.connections = 1;
  auto db = Database::Open(options, *telemetry_);
  db->Migrate("m", testing_support::kMigrations);
  EXPECT_EQ(db->TransactBlocking(
                ctx_, [](Session& s) { return s.Query(testing_support::kHits).rows.at(0).Int(0); }),
            0);
}

TEST_F(SqliteTest, AFileThatCannotBeOpenedIsUnavailable) {
  DatabaseOptions options;
  options.target = (TempRoot() / "no" / "such" / "dir" / "x.db").string();
  try {
    Database::Open(options, *telemetry_);
    FAIL() << "opened";
  } catch (const Unavailable& e) {
    EXPECT_TRUE(Has(e.what(), options.target)) << e.what();
  }
  options.connections = 0;
  options.target = (TempRoot() / "zero.db").string();
  EXPECT_THROW(Database::Open(options, *telemetry_), DatabaseError);
}

TEST_F(SqliteTest, TwoDatabasesOnOneFileSeeEachOthersCommits) {
  const DatabaseOptions options = FreshDatabase(Engine::kSqlite);
  auto a = Database::Open(options, *telemetry_);
  auto b = Database::Open(options, *telemetry_);
  a->Migrate("catalog", testing_support::kMigrations);
  b->Migrate("catalog", testing_support::kMigrations);  // applied by `a`: nothing to do
  std::thread ta([&] {
    for (int i = 0; i < 50; ++i)
      a->TransactBlocking(ctx_, [](Session& s) { s.Query(testing_support::kHit); });
  });
  std::thread tb([&] {
    for (int i = 0; i < 50; ++i)
      b->TransactBlocking(ctx_, [](Session& s) { s.Query(testing_support::kHit); });
  });
  ta.join();
  tb.join();
  EXPECT_EQ(a->TransactBlocking(
                ctx_, [](Session& s) { return s.Query(testing_support::kHits).rows.at(0).Int(0); }),
            100);
}

// Destroying the database while a call waits for the connection completes that call:
// it either ran (the connection freed up before the pool stopped taking jobs) or failed
// with Unavailable. Either way its coroutine resumes, nothing hangs or leaks.
TEST_F(SqliteTest, ClosingCompletesCallsStillQueued) {
  DatabaseOptions options = FreshDatabase(Engine::kSqlite);
  options.connections = 1;
  auto db = Database::Open(options, *telemetry_);
  std::promise<void> started;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::thread blocker([&, raw = db.get()] {
    raw->TransactBlocking(ctx_, [&](Session&) {
      started.set_value();
      released.wait();
    });
  });
  started.get_future().wait();
  asio::io_context io;
  int ran = 0;
  int unavailable = 0;
  asio::co_spawn(
      io,
      [&, raw = db.get()]() -> asio::awaitable<void> {
        try {
          co_await raw->Transact(ctx_, [](Session&) {});
          ++ran;
        } catch (const Unavailable&) {
          ++unavailable;
        }
      },
      asio::detached);
  io.poll();  // queued behind the blocker
  std::thread closer([&] { db.reset(); });
  release.set_value();
  closer.join();
  blocker.join();
  io.restart();
  io.run();
  EXPECT_EQ(ran + unavailable, 1);
}

// A transaction's completion leaves nothing on the database thread that refers to the
// awaiting coroutine's io_context, which may be destroyed as soon as the coroutine has
// resumed (a service stopping right after its last request: the runtime stops its
// contexts and destroys them). Two spinning threads make the database thread lose its CPU
// right after it posts the completion, which is when anything it still held would outlive
// the context; the unit tests' ASan build reports that as a use after free.
TEST_F(SqliteTest, NothingOfTheAwaitingContextOutlivesTheCompletion) {
  auto db = Database::Open(FreshDatabase(Engine::kSqlite), *telemetry_);
  // Stopped and joined however the test leaves (a failure below throws out of run()).
  struct Spinners {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    ~Spinners() {
      stop = true;
      for (std::thread& t : threads) t.join();
    }
  } spinners;
  for (int i = 0; i < 2; ++i) {
    spinners.threads.emplace_back([&stop = spinners.stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  constexpr int kRounds = 300;
  int resumed = 0;
  for (int i = 0; i < kRounds; ++i) {
    auto io = std::make_unique<asio::io_context>(1);
    asio::co_spawn(
        *io,
        [&, raw = db.get(), context = io.get()]() -> asio::awaitable<void> {
          co_await raw->Transact(ctx_, [](Session&) {});
          ++resumed;
          context->stop();  // as Runtime::Stop(): run() returns whatever work is left
        },
        asio::detached);
    io->run();
    io.reset();
  }
  EXPECT_EQ(resumed, kRounds);
}

using test_support::Eventually;

// Commits that take the write-ahead log past 1,000 pages are copied into the database
// file by the background checkpointer while the database stays open (SQLite's own
// automatic checkpoint is off on the pool's connections).
TEST_F(SqliteTest, TheLogIsCheckpointedInTheBackground) {
  const DatabaseOptions options = FreshDatabase(Engine::kSqlite);
  auto db = Database::Open(options, *telemetry_);
  static const Statement kCreate("CREATE TABLE blobs (id BIGINT PRIMARY KEY, body TEXT NOT NULL)");
  static const Statement kInsert("INSERT INTO blobs (id, body) VALUES ($1, $2)");
  db->TransactBlocking(ctx_, [](Session& s) { s.Query(kCreate); });
  const std::string body(6000, 'x');  // two pages a row
  constexpr int kRows = 4000;         // about 8,000 pages, 32 MiB, in 4,000 commits
  for (int i = 0; i < kRows; ++i) {
    db->TransactBlocking(ctx_, [&](Session& s) { s.Query(kInsert, {std::int64_t{i}, body}); });
  }
  const std::filesystem::path file(options.target);
  EXPECT_TRUE(Eventually([&] { return std::filesystem::file_size(file) > 20u << 20; }))
      << "database file: " << std::filesystem::file_size(file) << " bytes";
  static const Statement kCount("SELECT COUNT(*) FROM blobs");
  EXPECT_EQ(db->TransactBlocking(ctx_, [](Session& s) { return s.Query(kCount).FirstRow()->Int(0); }),
            kRows);
}

TEST(SqliteCheckpointer, RunsWhenACommitReportsALongLogOnly) {
  DatabaseOptions options = FreshDatabase(Engine::kSqlite);
  std::mutex write_lock;
  SqliteCheckpointer checkpointer(options, &write_lock);
  checkpointer.Request(SqliteCheckpointer::kPagesBeforeCheckpoint - 1);
  checkpointer.Request(1);
  EXPECT_EQ(checkpointer.completed(), 0u);
  checkpointer.Request(SqliteCheckpointer::kPagesBeforeCheckpoint);
  EXPECT_TRUE(Eventually([&] { return checkpointer.completed() >= 1; }));
}

}  // namespace
}  // namespace vigil::storage

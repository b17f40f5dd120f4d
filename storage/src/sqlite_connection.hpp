// A connection to an SQLite database file through the sqlite3 C API.
//
// Opened in WAL mode with a busy timeout, foreign keys on and synchronous=NORMAL (safe
// with WAL: a power loss can lose the last transactions, never corrupt the file).
// Transactions start with BEGIN IMMEDIATE, taking the write lock at once: a deferred
// transaction that reads and then writes can fail with SQLITE_BUSY halfway, with no
// busy-wait able to help. Within one process, the pool's connections also take
// `write_lock` for the span of a transaction, because SQLite's busy handler waits by
// sleeping (up to 100 ms a turn) while a mutex hands over at once.
//
// Checkpoints (copying the write-ahead log back into the database file, with an fsync)
// never run inside a transaction of the pool: SQLite would run one in whichever commit
// took the log past 1,000 pages, holding up every writer queued behind that commit's
// write lock. Instead each commit reports the log's length to a SqliteCheckpointer,
// whose own thread and connection checkpoint in the background: first without any lock
// (PASSIVE: it blocks no reader or writer, and copies the bulk, fsync included), then,
// when commits went on meanwhile, once more holding `write_lock` for the few pages they
// added, so that the checkpoint completes and the next writer starts the log afresh (a
// log that never completes a checkpoint grows without bound). The log is as long as
// what is committed while the thread waits for a CPU: a few thousand pages under load,
// more on a starved machine; `journal_size_limit` gives the space back after a burst.
//
//   SqliteCheckpointer checkpointer(options, &write_lock);   // its thread starts here
//   SqliteConnection conn(options, tracer, instruments, &write_lock, &checkpointer);
//
// Thread-safety: one thread at a time (see Connection).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "connection.hpp"

namespace vigil::storage {

// The background checkpointer of one SQLite database file.
//
// Thread-safety: Request() from any thread (it is called inside commits); the rest by
// the owner.
class SqliteCheckpointer {
 public:
  // A checkpoint is asked for once the log holds this many pages (SQLite's own default
  // for its automatic checkpoint).
  static constexpr int kPagesBeforeCheckpoint = 1000;

  // Opens its own connection to options.target; throws like SqliteConnection.
  // `write_lock` is the one the pool's transactions hold.
  SqliteCheckpointer(const DatabaseOptions& options, std::mutex* write_lock);
  // Stops the thread (after the checkpoint in progress, if any).
  ~SqliteCheckpointer();
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;

  // A commit left `pages` pages in the log.
  void Request(int pages) noexcept;
  // Checkpoints run so far (for tests and diagnostics).
  std::uint64_t completed() const noexcept { return completed_.load(std::memory_order_relaxed); }

 private:
  void Run() noexcept;

  sqlite3* db_ = nullptr;
  std::mutex* write_lock_;
  std::atomic<bool> pending_{false};
  std::atomic<std::uint64_t> completed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

class SqliteConnection final : public Connection {
 public:
  // Throws Unavailable when the file cannot be opened, DatabaseError when it cannot be
  // set up.
  // With a `checkpointer`, SQLite's automatic checkpoint is off and commits hand the
  // work to it; without one (":memory:"), SQLite's defaults apply.
  SqliteConnection(const DatabaseOptions& options, const telemetry::Tracer& tracer,
                   DatabaseInstruments instruments, std::mutex* write_lock,
                   SqliteCheckpointer* checkpointer = nullptr);
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  Result Execute(const Statement& statement, std::span<const Param> params) override;
  void Begin() override;
  void Commit() override;
  void Rollback() noexcept override;
  void ExecScript(std::string_view sql) override;
  void LockForMigration(std::int64_t) override {}
  bool Ping() noexcept override;

 private:
  sqlite3_stmt* Prepared(const Statement& statement);
  [[noreturn]] void Fail(std::string_view what, std::string_view where);

  sqlite3* db_ = nullptr;
  std::unordered_map<std::uint64_t, sqlite3_stmt*> statements_;
  std::mutex* write_lock_;
  std::unique_lock<std::mutex> write_held_;
};

}  // namespace vigil::storage

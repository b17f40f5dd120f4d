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
//   SqliteConnection conn(options, tracer, instruments, &write_lock);
//
// Thread-safety: one thread at a time (see Connection).
#pragma once

#include <sqlite3.h>

#include <mutex>
#include <unordered_map>

#include "connection.hpp"

namespace vigil::storage {

class SqliteConnection final : public Connection {
 public:
  // Throws Unavailable when the file cannot be opened, DatabaseError when it cannot be
  // set up.
  SqliteConnection(const DatabaseOptions& options, const telemetry::Tracer& tracer,
                   DatabaseInstruments instruments, std::mutex* write_lock);
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

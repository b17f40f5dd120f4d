// One database connection as the pool drives it: the Session a Transact() callback sees,
// plus what the pool itself needs (transactions, migration scripts, a health probe).
//
// Session::Query is implemented once here: a CLIENT span and a duration observation
// around the engine's Execute(). The pool uses Execute() directly for its own
// bookkeeping statements, which are neither spans nor metric samples.
//
//   conn.set_parent(job.parent);
//   conn.Begin();  work(conn);  conn.Commit();   // Rollback() when work throws
//
// Thread-safety: a connection is used by one thread at a time (its pool thread, or the
// thread that opened it before the pool started).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::storage {

// The metrics every connection of a pool records into.
struct DatabaseInstruments {
  telemetry::Family<telemetry::Histogram>* duration;  // db_client_operation_duration_seconds
};

class Connection : public Session {
 public:
  Connection(Engine engine, const telemetry::Tracer& tracer, DatabaseInstruments instruments)
      : engine_(engine), tracer_(tracer), instruments_(instruments) {}

  using Session::Query;
  // A span named statement.span_name() under the current parent, and one observation of
  // the duration histogram, around Execute().
  Result Query(const Statement& statement, std::span<const Param> params) final;
  Engine engine() const noexcept final { return engine_; }

  // The span context statements' spans are children of, for the job now running.
  void set_parent(const telemetry::SpanContext& parent) { parent_ = parent; }

  // Runs one statement without telemetry. On failure, throws after setting
  // last_error_code() (the SQLSTATE or SQLite's extended result code; "" when the
  // failure has none, e.g. a lost connection).
  virtual Result Execute(const Statement& statement, std::span<const Param> params) = 0;
  // Starts a transaction (reconnecting first when the connection was found broken).
  virtual void Begin() = 0;
  virtual void Commit() = 0;
  // Rolls back the open transaction, if any; failures are ignored (a broken connection
  // has no transaction left to roll back).
  virtual void Rollback() noexcept = 0;
  // Runs several `;`-separated statements (a migration) inside the open transaction.
  virtual void ExecScript(std::string_view sql) = 0;
  // Serialises migrations of `key` across processes until the transaction ends (an
  // advisory lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already excludes writers).
  virtual void LockForMigration(std::int64_t key) = 0;
  // A trivial query outside any transaction; false when it fails.
  virtual bool Ping() noexcept = 0;

  // "sqlite" or "postgresql": db.system.name and the metric's db_system label.
  std::string_view system_name() const noexcept {
    return engine_ == Engine::kSqlite ? "sqlite" : "postgresql";
  }
  const std::string& last_error_code() const noexcept { return last_error_code_; }

 protected:
  std::string last_error_code_;

 private:
  Engine engine_;
  const telemetry::Tracer& tracer_;
  DatabaseInstruments instruments_;
  telemetry::SpanContext parent_;
};

}  // namespace vigil::storage

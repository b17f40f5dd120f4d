// A service's database: SQLite (embedded, the default) or PostgreSQL (libpq), one API.
//
// SQL is written once with `$1, $2, ...` placeholders and runs on both engines. Work
// runs on the database's own threads, each owning one connection, so a coroutine on an
// HTTP worker never blocks on I/O or a lock: it co_awaits Transact() and resumes on its
// own executor with the result. Every statement is a CLIENT span "{operation} {table}"
// under the request's context and an observation of
// db_client_operation_duration_seconds{db_system, db_operation_name}.
//
//   auto db = storage::Database::Open(storage::DatabaseOptions::FromEnv("catalog"), telemetry);
//   db->Migrate("catalog", kMigrations);
//   static const storage::Statement kGetItem{"SELECT id, name FROM items WHERE id = $1"};
//   auto item = co_await db->Transact(ex.context(), [&](storage::Session& s) {
//     return s.Query(kGetItem, {id}).FirstRow();   // std::optional<Row>
//   });
//
// Thread-safety: a Database is safe to use from any number of threads and coroutines at
// once. A Session belongs to the one Transact() call that received it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace vigil::telemetry {
class Telemetry;
struct RequestContext;
}  // namespace vigil::telemetry

namespace vigil::storage {

namespace asio = boost::asio;

// ---- Errors ------------------------------------------------------------------------------

// Any database failure. what() is for logs (it may name tables and constraints); never
// put it in a response body.
class DatabaseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A UNIQUE or PRIMARY KEY constraint refused a write (SQLite SQLITE_CONSTRAINT_UNIQUE /
// _PRIMARYKEY, PostgreSQL 23505). Services usually answer 409.
class ConstraintViolation : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};
// The database cannot take more work now: too many callers waiting for a connection
// (DatabaseOptions::max_waiting), or no connection could be opened. Services answer 503.
class Unavailable : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};
// ---- Values ------------------------------------------------------------------------------

// A parameter: NULL, an integer or text (bind floating point values as text if ever needed).
using Param = std::variant<std::nullptr_t, std::int64_t, std::string_view>;

// One result row. Columns are read by position, in the SELECT's order.
//
// Thread-safety: a value type.
class Row {
 public:
  Row() = default;
  explicit Row(std::vector<std::optional<std::string>> columns) : columns_(std::move(columns)) {}
  std::size_t size() const noexcept { return columns_.size(); }
  bool IsNull(std::size_t column) const { return !columns_.at(column).has_value(); }
  // The column as text ("" for NULL).
  std::string_view Text(std::size_t column) const;
  // The column as an integer; throws DatabaseError when it is NULL or not an integer.
  std::int64_t Int(std::size_t column) const;

 private:
  std::vector<std::optional<std::string>> columns_;
};

struct Result {
  std::vector<Row> rows;
  // Rows inserted, updated or deleted by the statement.
  std::int64_t affected = 0;
  std::optional<Row> FirstRow() && {
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
  }
};

// A statement, parsed once at construction: its operation ("SELECT") and table
// ("items"), which name its span and label its metric. Declare statements as
// `static const` objects; each connection prepares each statement once, on first use.
//
// Thread-safety: immutable after construction.
class Statement {
 public:
  // `sql` uses $1..$N placeholders. The operation is the first keyword; the table is the
  // word after FROM / INTO / UPDATE (or TABLE for DDL).
  explicit Statement(std::string sql);
  const std::string& sql() const noexcept { return sql_; }
  std::string_view operation() const noexcept { return operation_; }
  std::string_view table() const noexcept { return table_; }
  // "SELECT items": the span name.
  const std::string& span_name() const noexcept { return span_name_; }
  // Unique per Statement object in the process (the prepared-statement cache key).
  std::uint64_t id() const noexcept { return id_; }

 private:
  std::string sql_;
  std::string operation_;
  std::string table_;
  std::string span_name_;
  std::uint64_t id_;
};

// ---- Migrations --------------------------------------------------------------------------

// One schema change. `sql` may hold several statements separated by ';' and must run on
// both engines; `postgres_sql`, when not empty, replaces it on PostgreSQL. It runs inside
// the migration's transaction: no BEGIN/COMMIT of its own, and nothing PostgreSQL
// refuses in a transaction (CREATE INDEX CONCURRENTLY).
struct Migration {
  std::int64_t version;  // 1, 2, 3... applied in order, each once
  std::string_view name;
  std::string_view sql;
  std::string_view postgres_sql = {};
};

// ---- Configuration -----------------------------------------------------------------------

enum class Engine { kSqlite, kPostgres };

struct DatabaseOptions {
  Engine engine = Engine::kSqlite;
  // SQLite: the file path (":memory:" works for tests, with connections = 1).
  // PostgreSQL: a libpq connection URI.
  std::string target;
  // Connections, each on its own thread.
  std::size_t connections = 4;
  // Calls queued beyond this many waiting for a connection fail with Unavailable.
  std::size_t max_waiting = 1024;
  std::chrono::milliseconds busy_timeout{5000};  // SQLite: wait for a locked database

  // DATABASE_URL or the file DATABASE_URL_FILE names ("postgres://" or "postgresql://"
  // -> PostgreSQL; unset or empty -> SQLite at $VIGIL_DATA_DIR/<service>.db,
  // VIGIL_DATA_DIR defaulting to "./data", the directory created if missing); VIGIL_DB_CONNECTIONS
  // (1..64, default 4); VIGIL_DB_MAX_WAITING. Throws telemetry::ConfigError naming the variable
  // (never quoting DATABASE_URL, which may hold a password).
  static DatabaseOptions FromEnv(std::string_view service);
};

// ---- Sessions and the database -----------------------------------------------------------

// One connection inside one transaction, given to a Transact() callback. Each Query is a
// span and a metric observation.
class Session {
 public:
  virtual ~Session() = default;
  // Runs `statement` with `params` ($1 is params[0]). Throws ConstraintViolation or
  // DatabaseError; the transaction is then rolled back by Transact().
  virtual Result Query(const Statement& statement, std::span<const Param> params) = 0;
  Result Query(const Statement& statement, std::initializer_list<Param> params = {}) {
    return Query(statement, std::span<const Param>(params.begin(), params.size()));
  }
  virtual Engine engine() const noexcept = 0;
};

class Database {
 public:
  // Opens the pool (connects every connection; for SQLite, sets WAL and busy_timeout).
  // Throws Unavailable when the database cannot be reached, DatabaseError otherwise.
  // Registers the metrics (db_client_operation_duration_seconds, and the pool's
  // vigil_db_pool_connections{state="in_use"|"idle"} gauge and
  // vigil_db_pool_wait_seconds histogram) in `telemetry`'s registry.
  static std::unique_ptr<Database> Open(const DatabaseOptions& options,
                                        telemetry::Telemetry& telemetry);
  virtual ~Database() = default;

  // Applies the migrations of `service` not yet applied, in order, each in a transaction,
  // recording them in table schema_migrations(service, version, name, applied_at). Safe
  // when several processes start at once (PostgreSQL: an advisory lock). Blocking; call
  // at start-up. Throws DatabaseError naming the failed migration.
  virtual void Migrate(std::string_view service, std::span<const Migration> migrations) = 0;

  // Runs `work(Session&)` on a database thread inside one transaction (BEGIN; COMMIT,
  // or ROLLBACK when `work` throws, the exception then propagating to the caller), and
  // resumes the calling coroutine on its own executor with `work`'s result. Statements'
  // spans are children of `context`'s span. `work` may capture the caller's locals by
  // reference: the caller stays suspended until it has run. Throws Unavailable (at the
  // co_await) when max_waiting calls already wait.
  //
  // After a statement fails, PostgreSQL refuses every further statement of the
  // transaction, so let the exception leave `work` rather than catching it inside and
  // carrying on (ON CONFLICT ... DO NOTHING avoids the error where a duplicate is
  // expected). A transaction whose work swallowed such an error fails at COMMIT.
  template <typename Work>
  asio::awaitable<std::invoke_result_t<Work&, Session&>> Transact(
      const telemetry::RequestContext& context, Work work);

  // The same, from ordinary code (tests, start-up, tools): blocks the calling thread.
  // Never call it from inside another transaction's work: with every connection busy
  // it would wait forever.
  template <typename Work>
  std::invoke_result_t<Work&, Session&> TransactBlocking(const telemetry::RequestContext& context,
                                                         Work work);

  // True when a trivial query succeeds within a short time (for /readyz). Non-blocking:
  // it reports the outcome of the latest background probe.
  virtual bool Healthy() const noexcept = 0;
  virtual Engine engine() const noexcept = 0;

 protected:
  // Queues `work` for a database thread, where it runs with a Session inside a
  // transaction; `done` then runs on that thread with the outcome (nullptr: committed),
  // after `work` has been destroyed. Throws Unavailable at once, running neither, when
  // max_waiting callers are already queued or the database is closing.
  virtual void Submit(const telemetry::RequestContext& context, std::function<void(Session&)> work,
                      std::function<void(std::exception_ptr)> done) = 0;

 private:
  // Transact's coroutine: owns copies of the context and the work, so an awaitable
  // created from temporaries and awaited later still refers to nothing gone.
  template <typename R, typename Work>
  asio::awaitable<R> TransactCopied(telemetry::RequestContext context, Work work);
};

}  // namespace vigil::storage

#include <vigil/storage/database_inl.hpp>

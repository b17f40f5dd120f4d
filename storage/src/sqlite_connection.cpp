#include "sqlite_connection.hpp"

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>
#include <variant>

#include "sql_text.hpp"

namespace vigil::storage {
namespace {

// Prepared statements kept per connection. Statements are meant to be `static const`
// objects, so a long-running service holds a few dozen; a caller that builds a Statement
// per call would otherwise grow the cache without bound.
constexpr std::size_t kMaxPrepared = 512;

// Resets a statement after use so that it holds no read transaction open and no
// references to the caller's parameter bytes.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Opens `target` read-write (creating it) with extended result codes and the busy
// timeout; throws Unavailable when it cannot.
sqlite3* OpenFile(const DatabaseOptions& options) {
  sqlite3* db = nullptr;
  // NOMUTEX: a connection is never used by two threads at once, so SQLite's
  // per-connection mutex would only cost.
  const int rc =
      sqlite3_open_v2(options.target.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    throw Unavailable("sqlite: cannot open \"" + options.target + "\": " + message);
  }
  sqlite3_extended_result_codes(db, 1);
  const auto busy_ms = std::clamp<std::chrono::milliseconds::rep>(options.busy_timeout.count(), 0,
                                                                  std::numeric_limits<int>::max());
  sqlite3_busy_timeout(db, static_cast<int>(busy_ms));
  return db;
}

// SQLite's WAL hook: called after each commit (the pool's write lock still held) with
// the log's length in pages.
int ReportLogLength(void* checkpointer, sqlite3*, const char*, int pages) {
  static_cast<SqliteCheckpointer*>(checkpointer)->Request(pages);
  return SQLITE_OK;
}

bool OnlySpaceOrSemicolons(const char* p) {
  for (; *p != '\0'; ++p) {
    if (*p != ';' && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') return false;
  }
  return true;
}

}  // namespace

SqliteConnection::SqliteConnection(const DatabaseOptions& options, const telemetry::Tracer& tracer,
                                   DatabaseInstruments instruments, std::mutex* write_lock,
                                   SqliteCheckpointer* checkpointer)
    : Connection(Engine::kSqlite, tracer, instruments), write_lock_(write_lock) {
  // The busy timeout is set before the journal-mode change, which needs a moment of
  // exclusive access when another connection or process has the file open.
  db_ = OpenFile(options);
  // cache_size: SQLite's default page cache is 2 MiB per connection, resident once a
  // busy spell has filled it; the file's pages stay in the kernel's cache anyway, so a
  // smaller private cache costs a system call per miss and saves megabytes per service.
  // journal_size_limit: after a burst, the log file shrinks back to 64 MiB at most.
  const char* const setup =
      "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; "
      "PRAGMA cache_size=-512; PRAGMA journal_size_limit=67108864;";
  if (sqlite3_exec(db_, setup, nullptr, nullptr, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    db_ = nullptr;
    throw DatabaseError("sqlite: cannot set up \"" + options.target + "\": " + message);
  }
  // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  if (checkpointer != nullptr) sqlite3_wal_hook(db_, ReportLogLength, checkpointer);
}

SqliteConnection::~SqliteConnection() {
  for (auto& [id, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

void SqliteConnection::Fail(std::string_view what, std::string_view where) {
  const int code = sqlite3_extended_errcode(db_);
  last_error_code_ = std::to_string(code);
  std::string message = "sqlite: ";
  message += what;
  message += " (";
  message += where;
  message += ")";
  if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
    throw ConstraintViolation(message);
  }
  throw DatabaseError(message);
}

sqlite3_stmt* SqliteConnection::Prepared(const Statement& statement) {
  if (auto it = statements_.find(statement.id()); it != statements_.end()) return it->second;
  if (statements_.size() >= kMaxPrepared) {
    for (auto& [id, stmt] : statements_) sqlite3_finalize(stmt);
    statements_.clear();
  }
  const std::string sql = ToSqlitePlaceholders(statement.sql());
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  // The length includes the terminator: SQLite then need not copy the text.
  if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1),
                         SQLITE_PREPARE_PERSISTENT, &stmt, &tail) != SQLITE_OK) {
    Fail(sqlite3_errmsg(db_), statement.span_name());
  }
  if (stmt == nullptr) {
    throw DatabaseError("sqlite: the statement is empty (" + statement.span_name() + ")");
  }
  // PostgreSQL refuses several statements in one prepared statement; SQLite would
  // silently run only the first. Refuse here too so both engines behave alike.
  if (tail != nullptr && !OnlySpaceOrSemicolons(tail)) {
    sqlite3_finalize(stmt);
    throw DatabaseError("sqlite: a Statement holds exactly one SQL statement (" +
                        statement.span_name() + ")");
  }
  statements_.emplace(statement.id(), stmt);
  return stmt;
}

Result SqliteConnection::Execute(const Statement& statement, std::span<const Param> params) {
  last_error_code_.clear();
  sqlite3_stmt* stmt = Prepared(statement);
  ResetOnExit reset(stmt);

  const int expected = sqlite3_bind_parameter_count(stmt);
  if (static_cast<std::size_t>(expected) != params.size()) {
    throw DatabaseError("sqlite: " + statement.span_name() + " takes " + std::to_string(expected) +
                        " parameters, got " + std::to_string(params.size()));
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i + 1);
    const int rc = std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>) {
            return sqlite3_bind_null(stmt, index);
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            return sqlite3_bind_int64(stmt, index, value);
          } else {
            // An empty view may have a null data pointer, which SQLite would bind as NULL.
            // SQLITE_STATIC: the bytes outlive the statement's use (reset on exit).
            const char* data = value.data() != nullptr ? value.data() : "";
            return sqlite3_bind_text64(stmt, index, data, value.size(), SQLITE_STATIC, SQLITE_UTF8);
          }
        },
        params[i]);
    if (rc != SQLITE_OK) Fail(sqlite3_errmsg(db_), statement.span_name());
  }

  Result result;
  const sqlite3_int64 changes_before = sqlite3_total_changes64(db_);
  const int columns = sqlite3_column_count(stmt);
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) Fail(sqlite3_errmsg(db_), statement.span_name());
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL:
          row.emplace_back(std::nullopt);
          break;
        case SQLITE_BLOB: {
          const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt, c));
          const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
          row.emplace_back(bytes != nullptr ? std::string(bytes, size) : std::string());
          break;
        }
        default: {
          // Integers and reals come back as SQLite's own decimal text.
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
          row.emplace_back(text != nullptr ? std::string(text, size) : std::string());
          break;
        }
      }
    }
    result.rows.emplace_back(std::move(row));
  }
  // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so a SELECT or
  // DDL statement would report a stale number: only a statement that changed rows counts.
  if (sqlite3_total_changes64(db_) != changes_before) result.affected = sqlite3_changes64(db_);
  return result;
}

void SqliteConnection::Begin() {
  write_held_ = std::unique_lock<std::mutex>(*write_lock_);
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    write_held_.unlock();
    Fail(sqlite3_errmsg(db_), "BEGIN");
  }
}

void SqliteConnection::Commit() {
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    const int code = sqlite3_extended_errcode(db_);
    const std::string message = sqlite3_errmsg(db_);
    Rollback();
    last_error_code_ = std::to_string(code);
    throw DatabaseError("sqlite: " + message + " (COMMIT)");
  }
  if (write_held_.owns_lock()) write_held_.unlock();
}

void SqliteConnection::Rollback() noexcept {
  // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL).
  if (sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  if (write_held_.owns_lock()) write_held_.unlock();
}

void SqliteConnection::ExecScript(std::string_view sql) {
  last_error_code_.clear();
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    Fail(sqlite3_errmsg(db_), "script");
  }
}

SqliteCheckpointer::SqliteCheckpointer(const DatabaseOptions& options, std::mutex* write_lock)
    : db_(OpenFile(options)), write_lock_(write_lock) {
  // A connection finds out that the file is in WAL mode only when it first reads it; a
  // checkpoint does not read, so without this it would find no log and copy nothing.
  // (No WAL hook on this connection: it never writes.)
  if (sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    throw DatabaseError("sqlite: cannot set up \"" + options.target + "\": " + message);
  }
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

SqliteCheckpointer::~SqliteCheckpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  sqlite3_close(db_);
}

void SqliteCheckpointer::Request(int pages) noexcept {
  // One wake-up per checkpoint, however many commits see a long log meanwhile.
  if (pages < kPagesBeforeCheckpoint || pending_.exchange(true, std::memory_order_acq_rel)) return;
  { std::lock_guard lock(mu_); }
  cv_.notify_one();
}

void SqliteCheckpointer::Run() noexcept {
  pthread_setname_np(pthread_self(), "vigil-db-ckpt");
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || pending_.load(std::memory_order_acquire); });
    if (stopping_) return;
    lock.unlock();
    // Cleared first: a commit that lengthens the log during this checkpoint asks again.
    pending_.store(false, std::memory_order_release);
    // PASSIVE copies what no reader still needs and waits for no one. A failure (the
    // disk is full, say) leaves the log longer; the next commit asks again.
    int log_pages = 0;
    int copied_pages = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                             &copied_pages);
    if (rc == SQLITE_OK && copied_pages < log_pages) {
      // Commits went on meanwhile: copy their pages with writers held off, briefly.
      std::lock_guard writers(*write_lock_);
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    completed_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

bool SqliteConnection::Ping() noexcept {
  static const Statement kPing("SELECT 1");
  try {
    return Execute(kPing, {}).rows.size() == 1;
  } catch (...) {
    return false;
  }
}

}  // namespace vigil::storage

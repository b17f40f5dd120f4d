#include "postgres_connection.hpp"

#include <charconv>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace vigil::storage {
namespace {

// As for SQLite: a bound on what a caller that builds Statements per call can pile up.
constexpr std::size_t kMaxPrepared = 512;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

bool Succeeded(const PGresult* r) {
  const ExecStatusType s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

// libpq's messages span lines ("...failed: Connection refused\n\tIs the server...").
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string Without(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + 3)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

struct ConnInfo {
  std::string endpoint;
  std::string password;
};

ConnInfo ParseConnInfo(const std::string& conninfo) {
  ConnInfo info;
  std::string host;
  std::string port;
  std::string dbname;
  std::string user;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options != nullptr) {
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val == nullptr || *o->val == '\0') continue;
      const std::string_view key = o->keyword;
      if (key == "host" || (key == "hostaddr" && host.empty())) host = o->val;
      if (key == "port") port = o->val;
      if (key == "dbname") dbname = o->val;
      if (key == "user") user = o->val;
      if (key == "password") info.password = o->val;
    }
    PQconninfoFree(options);
  }
  info.endpoint = (host.empty() ? std::string("localhost") : host) + ":" +
                  (port.empty() ? std::string("5432") : port) + "/" +
                  (dbname.empty() ? user : dbname);
  return info;
}

}  // namespace

std::string PostgresEndpoint(const std::string& conninfo) {
  return ParseConnInfo(conninfo).endpoint;
}

PostgresConnection::PostgresConnection(const DatabaseOptions& options,
                                       const telemetry::Tracer& tracer,
                                       DatabaseInstruments instruments)
    : Connection(Engine::kPostgres, tracer, instruments) {
  ConnInfo info = ParseConnInfo(options.target);
  endpoint_ = std::move(info.endpoint);
  secret_ = std::move(info.password);
  // Defaults first: libpq lets later keywords override earlier ones, so whatever the
  // URI (the expanded dbname) says wins.
  const char* const keywords[] = {"connect_timeout", "client_encoding", "fallback_application_name",
                                  "dbname", nullptr};
  const char* const values[] = {"10", "UTF8", "vigil", options.target.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    const std::string why = conn_ != nullptr ? OneLine(PQerrorMessage(conn_)) : "out of memory";
    PQfinish(conn_);
    conn_ = nullptr;
    throw Unavailable("postgresql: cannot connect to " + endpoint_ + ": " + Without(why, secret_));
  }
  // NOTICEs ("relation already exists, skipping") would go to stderr by default.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

PostgresConnection::~PostgresConnection() { PQfinish(conn_); }

void PostgresConnection::Fail(PGresult* result, std::string_view where) {
  ResultPtr owned(result);
  const char* sqlstate = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // The primary message only: DETAIL repeats the offending values ("Key (email)=(...)"),
  // which are users' data and do not belong in logs.
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message = "postgresql: ";
  message += Without(OneLine(primary != nullptr ? primary : PQerrorMessage(conn_)), secret_);
  message += " (";
  message += where;
  message += ")";
  last_error_code_ = sqlstate != nullptr ? sqlstate : "";
  if (last_error_code_ == "23505") throw ConstraintViolation(message);
  throw DatabaseError(message);
}

void PostgresConnection::Command(const char* sql, std::string_view where) {
  PGresult* result = PQexec(conn_, sql);
  if (!Succeeded(result)) Fail(result, where);
  PQclear(result);
}

void PostgresConnection::EnsureConnected() {
  if (PQstatus(conn_) == CONNECTION_OK) return;
  PQreset(conn_);
  // A new session: the server forgot every prepared statement.
  prepared_.clear();
  if (PQstatus(conn_) != CONNECTION_OK) {
    last_error_code_.clear();
    throw Unavailable("postgresql: cannot reconnect to " + endpoint_ + ": " +
                      Without(OneLine(PQerrorMessage(conn_)), secret_));
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

Result PostgresConnection::Execute(const Statement& statement, std::span<const Param> params) {
  last_error_code_.clear();
  const std::string name = "s" + std::to_string(statement.id());
  auto found = prepared_.find(statement.id());
  if (found == prepared_.end()) {
    if (prepared_.size() >= kMaxPrepared) {
      PGresult* r = PQexec(conn_, "DEALLOCATE ALL");
      if (Succeeded(r)) prepared_.clear();
      PQclear(r);
    }
    PGresult* prepared = PQprepare(conn_, name.c_str(), statement.sql().c_str(), 0, nullptr);
    if (!Succeeded(prepared)) Fail(prepared, statement.span_name());
    PQclear(prepared);
    // The parameter count, to refuse a wrong number of values here with the same words
    // as on SQLite (the server would say "bind message supplies ...").
    PGresult* described = PQdescribePrepared(conn_, name.c_str());
    if (!Succeeded(described)) Fail(described, statement.span_name());
    const int count = PQnparams(described);
    PQclear(described);
    found = prepared_.emplace(statement.id(), count).first;
  }
  if (static_cast<std::size_t>(found->second) != params.size()) {
    throw DatabaseError("postgresql: " + statement.span_name() + " takes " +
                        std::to_string(found->second) + " parameters, got " +
                        std::to_string(params.size()));
  }

  // Text format needs NUL-terminated values (libpq ignores lengths for text), so the
  // caller's views are copied.
  std::vector<std::string> storage(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  for (std::size_t i = 0; i < params.size(); ++i) {
    std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, std::int64_t>) {
            char digits[24];
            const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
            storage[i].assign(digits, end);
            values[i] = storage[i].c_str();
          } else if constexpr (std::is_same_v<T, std::string_view>) {
            storage[i].assign(value.data() != nullptr ? value.data() : "", value.size());
            values[i] = storage[i].c_str();
          }
        },
        params[i]);
  }
  PGresult* raw = PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()),
                                 values.data(), nullptr, nullptr, 0);
  if (!Succeeded(raw)) Fail(raw, statement.span_name());
  ResultPtr pg(raw);

  Result result;
  const int rows = PQntuples(raw);
  const int columns = PQnfields(raw);
  result.rows.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(raw, r, c) != 0) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(raw, r, c), static_cast<std::size_t>(PQgetlength(raw, r, c))));
      }
    }
    result.rows.emplace_back(std::move(row));
  }
  // PQcmdTuples also counts a SELECT's rows; only writes are "affected".
  const std::string_view tag = PQcmdStatus(raw);
  if (tag.starts_with("INSERT") || tag.starts_with("UPDATE") || tag.starts_with("DELETE") ||
      tag.starts_with("MERGE")) {
    const std::string_view tuples = PQcmdTuples(raw);
    std::int64_t affected = 0;
    std::from_chars(tuples.data(), tuples.data() + tuples.size(), affected);
    result.affected = affected;
  }
  return result;
}

void PostgresConnection::Begin() {
  last_error_code_.clear();
  EnsureConnected();
  PGresult* result = PQexec(conn_, "BEGIN");
  if (Succeeded(result)) {
    PQclear(result);
    return;
  }
  if (PQstatus(conn_) != CONNECTION_BAD) Fail(result, "BEGIN");
  // The connection broke while idle (server restart, idle timeout): nothing has run
  // yet, so a fresh connection can take the transaction.
  PQclear(result);
  EnsureConnected();
  Command("BEGIN", "BEGIN");
}

void PostgresConnection::Commit() {
  last_error_code_.clear();
  PGresult* result = PQexec(conn_, "COMMIT");
  if (!Succeeded(result)) {
    Rollback();
    Fail(result, "COMMIT");
  }
  // COMMIT of a transaction in which a statement failed (and the caller caught the
  // error) succeeds as a ROLLBACK: the work did not persist, so it must not look done.
  const bool rolled_back = std::string_view(PQcmdStatus(result)) == "ROLLBACK";
  PQclear(result);
  if (rolled_back) {
    throw DatabaseError(
        "postgresql: the transaction was rolled back because a statement in it failed "
        "(COMMIT)");
  }
}

void PostgresConnection::Rollback() noexcept {
  const PGTransactionStatusType status = PQtransactionStatus(conn_);
  if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) {
    PQclear(PQexec(conn_, "ROLLBACK"));
  }
}

void PostgresConnection::ExecScript(std::string_view sql) {
  last_error_code_.clear();
  const std::string text(sql);
  // Several statements in one simple query run in the open transaction.
  Command(text.c_str(), "script");
}

void PostgresConnection::LockForMigration(std::int64_t key) {
  static const Statement kLock("SELECT pg_advisory_xact_lock(CAST($1 AS BIGINT))");
  const Param params[] = {key};
  Execute(kLock, params);
}

bool PostgresConnection::Ping() noexcept {
  try {
    EnsureConnected();
    ResultPtr result(PQexec(conn_, "SELECT 1"));
    return PQresultStatus(result.get()) == PGRES_TUPLES_OK;
  } catch (...) {
    return false;
  }
}

}  // namespace vigil::storage

// A connection to PostgreSQL through libpq.
//
// Each Statement is prepared once per connection (PQprepare, named "s<id>") and run with
// PQexecPrepared, parameters in text format so the server infers their types from the
// SQL. A connection found broken (the server restarted, a proxy cut it) is reset before
// the next transaction; a BEGIN that fails because the connection just broke is retried
// once on a fresh one, since nothing of the caller's has run yet.
//
//   PostgresConnection conn(options, tracer, instruments);  // throws Unavailable
//
// Thread-safety: one thread at a time (see Connection).
#pragma once

#include <libpq-fe.h>

#include <string>
#include <unordered_map>

#include "connection.hpp"

namespace vigil::storage {

class PostgresConnection final : public Connection {
 public:
  // Throws Unavailable when the server cannot be reached; the message names host, port
  // and database, never the password.
  PostgresConnection(const DatabaseOptions& options, const telemetry::Tracer& tracer,
                     DatabaseInstruments instruments);
  ~PostgresConnection() override;
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;

  Result Execute(const Statement& statement, std::span<const Param> params) override;
  void Begin() override;
  void Commit() override;
  void Rollback() noexcept override;
  void ExecScript(std::string_view sql) override;
  void LockForMigration(std::int64_t key) override;
  bool Ping() noexcept override;

 private:
  // Reconnects when the connection is known to be broken; throws Unavailable when that
  // fails.
  void EnsureConnected();
  // Throws ConstraintViolation or DatabaseError for a failed `result` (which it frees).
  [[noreturn]] void Fail(PGresult* result, std::string_view where);
  // PQexec of a command without parameters; throws on failure.
  void Command(const char* sql, std::string_view where);

  PGconn* conn_ = nullptr;
  std::string endpoint_;  // "host:port/dbname", for messages
  std::string secret_;    // the password, kept only to scrub it from libpq's messages
  // Statement id -> its parameter count, for the statements this session prepared.
  std::unordered_map<std::uint64_t, int> prepared_;
};

// "host:port/dbname" of a libpq connection URI or string, for messages: never the
// password. Empty parts show libpq's defaults.
std::string PostgresEndpoint(const std::string& conninfo);

}  // namespace vigil::storage

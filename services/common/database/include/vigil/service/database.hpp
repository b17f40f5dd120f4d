// The database of a service that keeps one, and what its pipeline does while it is down.
//
//   storage::Database& db = service::OpenDatabase(host, catalog::Migrations());
//   pipeline.Add<http::ErrorMiddleware>(telemetry);
//   pipeline.Add<service::DatabaseOutageMiddleware>();  // its After runs before the errors'
//
// Thread-safety: OpenDatabase on the main thread during set-up; the middleware's hooks
// are safe from every worker.
#pragma once

#include <span>
#include <vigil/http/middleware.hpp>
#include <vigil/service/service.hpp>
#include <vigil/storage/database.hpp>

namespace vigil::service {

// Opens the service's database (DATABASE_URL, or SQLite under VIGIL_DATA_DIR: see
// storage::DatabaseOptions::FromEnv), migrates it, adds it to /readyz as "database", and
// keeps it until the service stops. With --routes, an empty in-memory database instead, so
// that listing the routes touches nothing. Throws telemetry::ConfigError for a bad
// variable, and what storage::Database::Open and Migrate throw.
storage::Database& OpenDatabase(ServiceHost& host, std::span<const storage::Migration> migrations);

// Turns a storage::Unavailable escaping a handler (the database is down, or its pool and
// waiting line are full) into a 503 problem with error.type "db_unavailable", instead of
// the 500 an unexpected exception gets. Add it right after http::ErrorMiddleware: After
// hooks run in reverse, so it rewrites the error before ErrorMiddleware answers it.
class DatabaseOutageMiddleware final : public http::Middleware {
 public:
  void Before(http::Exchange& exchange) override;
  void After(http::Exchange& exchange) noexcept override;
};

}  // namespace vigil::service

#include <exception>
#include <utility>
#include <vigil/service/database.hpp>

namespace vigil::service {

storage::Database& OpenDatabase(ServiceHost& host, std::span<const storage::Migration> migrations) {
  const std::string_view name = host.definition().name;
  storage::DatabaseOptions options;
  if (host.listing_routes()) {
    options.target = ":memory:";
    options.connections = 1;
  } else {
    options = storage::DatabaseOptions::FromEnv(name);
  }
  storage::Database& db = host.Own(storage::Database::Open(options, host.telemetry()));
  db.Migrate(name, migrations);
  host.health().AddCheck("database", [&db] { return db.Healthy(); });
  return db;
}

void DatabaseOutageMiddleware::Before(http::Exchange&) {}

void DatabaseOutageMiddleware::After(http::Exchange& exchange) noexcept {
  const std::exception_ptr error = exchange.error();
  if (!error) return;
  bool outage = false;
  try {
    std::rethrow_exception(error);
  } catch (const storage::Unavailable&) {
    outage = true;
  } catch (...) {
    // Any other error is the error middleware's to answer as it is.
  }
  if (!outage) return;
  try {
    http::HttpError unavailable(503, "the service's database is unavailable; try again shortly");
    unavailable.WithErrorType("db_unavailable");
    exchange.set_error(std::make_exception_ptr(std::move(unavailable)));
  } catch (...) {
    // Out of memory: the original error stands and answers 500.
  }
}

}  // namespace vigil::service

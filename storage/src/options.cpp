// DatabaseOptions::FromEnv: DATABASE_URL, VIGIL_DATA_DIR, VIGIL_DB_CONNECTIONS,
// VIGIL_DB_MAX_WAITING.
#include <libpq-fe.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::storage {
namespace {

std::size_t SizeFromEnv(const char* name, std::int64_t fallback, std::int64_t min,
                        std::int64_t max) {
  return static_cast<std::size_t>(telemetry::env::Integer(name, fallback, min, max));
}

// libpq's own check, so that a URL it would refuse fails at start-up with the variable's
// name. Its message is not repeated: for a bad percent-escape it quotes the URL's text,
// which may be the password.
void CheckPostgresUrl(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) {
    throw telemetry::ConfigError("DATABASE_URL",
                                 "(not shown) is not valid: expected a libpq connection URI "
                                 "such as postgresql://user:password@host:5432/dbname");
  }
  PQconninfoFree(options);
}

}  // namespace

DatabaseOptions DatabaseOptions::FromEnv(std::string_view service) {
  if (service.empty()) throw std::invalid_argument("the service name for the database is empty");
  DatabaseOptions options;
  const std::string url = telemetry::env::Secret("DATABASE_URL").value_or("");
  if (!url.empty()) {
    if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
      // The value is not quoted back: it may hold a password.
      throw telemetry::ConfigError("DATABASE_URL",
                                   "(not shown) is not valid: expected a postgres:// or "
                                   "postgresql:// URL, or the variable unset for SQLite");
    }
    CheckPostgresUrl(url);
    options.engine = Engine::kPostgres;
    options.target = url;
  } else {
    const std::string dir = telemetry::env::String("VIGIL_DATA_DIR", "./data");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || !std::filesystem::is_directory(dir, ec)) {
      throw telemetry::ConfigError("VIGIL_DATA_DIR",
                                   "\"" + dir + "\" is not valid: cannot create the directory (" +
                                       (ec ? ec.message() : std::string("not a directory")) + ")");
    }
    options.engine = Engine::kSqlite;
    options.target = (std::filesystem::path(dir) / (std::string(service) + ".db")).string();
  }
  options.connections = SizeFromEnv("VIGIL_DB_CONNECTIONS", 4, 1, 64);
  options.max_waiting = SizeFromEnv("VIGIL_DB_MAX_WAITING", 1024, 0, 1'000'000);
  return options;
}

}  // namespace vigil::storage

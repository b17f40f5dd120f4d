// vigil-catalog: items, search, stock reservations; cached reads with ETags.
#include <string_view>
#include <vigil/service/service.hpp>
#include <vigil/storage/database.hpp>

#include "catalog.hpp"

namespace catalog = vigil::catalog;
namespace service = vigil::service;
namespace storage = vigil::storage;

namespace {

constexpr std::string_view kUsage = R"(Usage: vigil-catalog [--help] [--routes] [--check]

The Vigil catalog: items with prefix search and cursor pagination, reads served from an
in-memory cache with ETags (If-None-Match -> 304), and the stock reservations the orders
service makes, each one transaction that never oversells.

Catalog environment:
  VIGIL_CATALOG_CACHE_SIZE       items kept in the read cache (default 10000; 0 turns it off)
  VIGIL_HTTP_COMPRESS_MIN_BYTES  compress responses of at least this many bytes (default 1024)
  VIGIL_PORT (default 8082), VIGIL_ADMIN_PORT (default 9082)
  DATABASE_URL / VIGIL_DATA_DIR  PostgreSQL, or SQLite at $VIGIL_DATA_DIR/catalog.db
)";

const service::ServiceDefinition kDefinition{"catalog", 8082, 9082, kUsage};

}  // namespace

int main(int argc, char** argv) {
  return service::RunService(kDefinition, argc, argv, [](service::ServiceHost& host) {
    const catalog::CatalogOptions options = catalog::CatalogOptions::FromEnv();
    storage::Database& db = host.OpenDatabase(catalog::CatalogMigrations());
    host.Make<catalog::CatalogApi>(db, host.telemetry().metrics(), host.identity(), options)
        .AddRoutes(host);
  });
}

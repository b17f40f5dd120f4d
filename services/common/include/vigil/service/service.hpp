// The shape every platform service's main() shares: flags, configuration from the
// environment, telemetry, the runtime, the public and admin listeners, the middleware
// pipeline, graceful shutdown. A service only says what is its own: its routes and the
// objects they use.
//
//   int main(int argc, char** argv) {
//     return service::RunService({"catalog", 8082, 9082, kUsage}, argc, argv,
//                                [](service::ServiceHost& host) {
//       storage::Database& db = host.OpenDatabase(kMigrations);
//       host.Route("GET", "/items/{id}", [&db](http::Exchange& ex) { return GetItem(db, ex); });
//     });
//   }
//
// Flags: --help (the usage text), --routes (print "METHOD /template" per route and exit:
// the OpenAPI test compares it with docs/openapi.yaml), --check (validate the
// configuration, open the database, exit). Exit codes: 0 clean stop, 2 bad flag or
// configuration (the message names the variable), 1 any other failure to start.
//
// Thread-safety: set up on the main thread before serving; the accessors are then safe
// to use from every worker.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/http/middleware/compression.hpp>
#include <vigil/http/server.hpp>
#include <vigil/service/blocking.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::service {

struct ServiceDefinition {
  std::string_view name;  // "catalog": the service name in logs, metrics and traces
  std::uint16_t public_port;
  std::uint16_t admin_port;
  // The --help text: a description, the service's own flags and variables. The common
  // flags and variables are appended.
  std::string_view usage;
};

// The version every service reports (service.version): the project version CMake builds.
std::string_view PlatformVersion() noexcept;

// Tunes the allocator so that memory freed after a burst (password hashes, large bodies)
// goes back to the system instead of staying resident. RunService calls it first thing.
void LimitRetainedMemory() noexcept;

// The middleware of every public listener, in order: request id, tracing, RED metrics,
// the access log (when `access_log`, i.e. VIGIL_ACCESS_LOG), compression (when given; the
// gateway streams bodies and compresses nothing), errors. After hooks run in reverse, so
// errors become responses first, then they are compressed, logged and counted.
http::Pipeline StandardPipeline(telemetry::Telemetry& telemetry, bool access_log,
                                const http::CompressionOptions* compression);

// When periodic upkeep runs (ServiceHost::Every): once `first_delay` after the call,
// then every `period` after the previous run ended.
struct Schedule {
  std::chrono::milliseconds first_delay;
  std::chrono::milliseconds period;
};

class ServiceHost {
 public:
  // `listing_routes`: the program only prints its routes (--routes), so nothing it sets
  // up may touch the real database or the network.
  ServiceHost(const ServiceDefinition& definition, telemetry::Telemetry& telemetry,
              http::Runtime& runtime, IdentitySigner identity, bool listing_routes = false);

  telemetry::Telemetry& telemetry() noexcept { return telemetry_; }
  http::Runtime& runtime() noexcept { return runtime_; }
  http::Health& health() noexcept { return health_; }
  const IdentitySigner& identity() const noexcept { return identity_; }
  http::ClientInstruments& client_instruments() noexcept { return *client_instruments_; }
  // Two threads for CPU-heavy work (password hashing); see blocking.hpp.
  BlockingPool& blocking();
  const ServiceDefinition& definition() const noexcept { return definition_; }

  // The service's database (DATABASE_URL or SQLite under VIGIL_DATA_DIR, see
  // storage::DatabaseOptions::FromEnv), opened, migrated, and checked by /readyz; owned by
  // the host. With --routes, an empty in-memory database instead. Throws what
  // storage::Database::Open and Migrate throw.
  storage::Database& OpenDatabase(std::span<const storage::Migration> migrations);

  // Adds a route to the public listener. A storage::Unavailable escaping the handler
  // answers 503 (the database is down or saturated), not 500.
  void Route(std::string_view method, std::string_view pattern, http::Handler handler,
             http::RouteOptions options = {});

  // Runs `task` on the runtime's first worker on `schedule` (one run at a time) until
  // shutdown begins or the runtime stops; a run in progress then is abandoned with the
  // runtime's other work. `task` must not throw; whatever it uses must outlive the
  // runtime's last run (objects the host owns do).
  void Every(Schedule schedule, std::function<boost::asio::awaitable<void>()> task);

  // Keeps `object` alive until the service has stopped; returns it.
  template <typename T>
  T& Own(std::unique_ptr<T> object) {
    T& ref = *object;
    owned_.push_back(std::shared_ptr<void>(std::move(object)));
    return ref;
  }
  template <typename T, typename... Args>
  T& Make(Args&&... args) {
    return Own(std::make_unique<T>(std::forward<Args>(args)...));
  }

  // Used by RunService.
  http::Routes TakeRoutes() { return std::move(routes_); }
  const std::vector<std::string>& route_list() const noexcept { return route_list_; }
  ~ServiceHost();

 private:
  const ServiceDefinition& definition_;
  telemetry::Telemetry& telemetry_;
  http::Runtime& runtime_;
  http::Health health_;
  IdentitySigner identity_;
  std::unique_ptr<http::ClientInstruments> client_instruments_;
  std::unique_ptr<BlockingPool> blocking_;
  http::Routes routes_;
  std::vector<std::string> route_list_;
  bool listing_routes_;
  // Destroyed in reverse order of creation: what was made last may use what came before.
  std::vector<std::shared_ptr<void>> owned_;
};

// Parses the flags, reads the environment, builds telemetry and the runtime, calls
// `setup` to add the service's routes, then serves until SIGTERM/SIGINT and shuts down
// gracefully. Returns the process exit code.
int RunService(const ServiceDefinition& definition, int argc, char** argv,
               const std::function<void(ServiceHost&)>& setup);

// An upstream service's base URL from `variable` (default `fallback`), e.g.
// VIGIL_CATALOG_URL=http://127.0.0.1:8082. Throws telemetry::ConfigError naming the
// variable when it is not an http:// URL.
http::UpstreamAddress UpstreamFromEnv(const char* variable, std::string_view fallback);

}  // namespace vigil::service

// The one way a Vigil program starts: flags, configuration from the environment,
// telemetry, the runtime, the public and admin listeners, graceful shutdown. A program
// says only what is its own: its middleware pipeline, its routes and the objects they use.
//
//   int main(int argc, char** argv) {
//     constexpr auto kPorts = service::topology::kCatalog;  // <vigil/service/topology.hpp>
//     return service::RunService({"catalog", kPorts.port, kPorts.admin_port, kUsage}, argc, argv,
//                                [](service::ServiceHost& host) {
//       http::Pipeline& pipeline = host.pipeline();    // what every request meets, in order
//       pipeline.Add<http::RequestIdMiddleware>();
//       pipeline.Add<http::ErrorMiddleware>(host.telemetry(), ErrorUser(host.identity()));
//       storage::Database& db = service::OpenDatabase(host, kMigrations);  // database.hpp
//       host.Route("GET", "/items/{id}", [&db](http::Exchange& ex) { return GetItem(db, ex); });
//     });
//   }
//
// Flags: --help (the usage text), --routes (print "METHOD /template" per route and exit:
// the OpenAPI test compares it with docs/openapi.yaml), --check (validate the
// configuration, open the database, exit), and the program's own value flags
// (ServiceDefinition::value_flags, read with ServiceHost::flag). Exit codes: 0 clean stop,
// 2 bad flag or configuration (the message names the variable), 1 any other failure to
// start.
//
// Thread-safety: set up on the main thread before serving; the accessors are then safe
// to use from every worker.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/http/middleware.hpp>
#include <vigil/http/server.hpp>
#include <vigil/service/blocking.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::service {

struct ServiceDefinition {
  std::string_view name;  // "catalog": the service name in logs, metrics and traces
  std::uint16_t public_port;
  std::uint16_t admin_port;
  // The --help text: a description, the service's own flags and variables. The common
  // flags and variables are appended.
  std::string_view usage;
  // The program's own flags that take a value ("--config" for "--config FILE" or
  // "--config=FILE"); ServiceHost::flag returns what was given.
  std::span<const std::string_view> value_flags = {};
  // Bytes of each thread's log ring (VIGIL_LOG_QUEUE_BYTES overrides). A service writes a
  // line or two per request: a quarter of the SDK's default still absorbs thousands of
  // lines between two passes of the log backend and keeps what a burst leaves resident
  // small. 0: the SDK's default.
  std::size_t log_ring_bytes = 256 * 1024;
};

// Tunes the allocator so that memory freed after a burst (password hashes, large bodies)
// goes back to the system instead of staying resident. RunService calls it first thing.
void LimitRetainedMemory() noexcept;

// When periodic upkeep runs (ServiceHost::Every): once `first_delay` after the call,
// then every `period` after the previous run ended.
struct Schedule {
  std::chrono::milliseconds first_delay;
  std::chrono::milliseconds period;
};

class ServiceHost {
 public:
  // `listing_routes`: the program only prints its routes (--routes), so nothing it sets
  // up may touch the real database or the network. `flags`: the value flags given, as
  // (name, value).
  ServiceHost(const ServiceDefinition& definition, telemetry::Telemetry& telemetry,
              http::Runtime& runtime, IdentitySigner identity, bool listing_routes = false,
              std::vector<std::pair<std::string_view, std::string>> flags = {});

  telemetry::Telemetry& telemetry() noexcept { return telemetry_; }
  http::Runtime& runtime() noexcept { return runtime_; }
  http::Health& health() noexcept { return health_; }
  const IdentitySigner& identity() const noexcept { return identity_; }
  http::ClientInstruments& client_instruments() noexcept { return *client_instruments_; }
  // Two threads for CPU-heavy work (password hashing); see blocking.hpp.
  BlockingPool& blocking();
  const ServiceDefinition& definition() const noexcept { return definition_; }
  // True with --routes: set-up must not touch the real database or the network.
  bool listing_routes() const noexcept { return listing_routes_; }
  // The value of one of ServiceDefinition::value_flags, when it was given.
  std::optional<std::string_view> flag(std::string_view name) const noexcept;

  // The public listener's middleware, which set-up adds in the order a request meets them
  // (see http/middleware.hpp); empty until then.
  http::Pipeline& pipeline() noexcept { return pipeline_; }
  // The public listener's routes. Route(...) is routes().Add(...).
  http::Routes& routes() noexcept { return routes_; }
  void Route(std::string_view method, std::string_view pattern, http::Handler handler,
             http::RouteOptions options = {});

  // Runs `task` on the runtime's first worker on `schedule` (one run at a time) until
  // shutdown begins or the runtime stops; a run in progress then is abandoned with the
  // runtime's other work. `task` must not throw; whatever it uses must outlive the
  // runtime's last run (objects the host owns do).
  void Every(Schedule schedule, std::function<boost::asio::awaitable<void>()> task);

  // Runs `reload` on SIGHUP (on worker 0, in the order added): re-read a configuration
  // file, keeping the running configuration when the new one is bad. It must not throw.
  void OnReload(std::function<void()> reload) { reloads_.push_back(std::move(reload)); }
  // Runs every reload hook (what SIGHUP does).
  void Reload() const;
  // Replaces the public listener's routes while serving (from a reload hook): requests
  // routed from now on use `routes`, those in flight finish with theirs. Throws
  // std::logic_error before the program serves.
  void ReplaceRoutes(http::Routes routes);

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

  ~ServiceHost();

 private:
  const ServiceDefinition& definition_;
  telemetry::Telemetry& telemetry_;
  http::Runtime& runtime_;
  http::Health health_;
  IdentitySigner identity_;
  std::unique_ptr<http::ClientInstruments> client_instruments_;
  std::unique_ptr<BlockingPool> blocking_;
  http::Pipeline pipeline_;
  http::Routes routes_;
  bool listing_routes_;
  std::vector<std::pair<std::string_view, std::string>> flags_;
  std::vector<std::function<void()>> reloads_;
  http::Server* server_ = nullptr;  // once serving
  friend int RunService(const ServiceDefinition&, int, char**,
                        const std::function<void(ServiceHost&)>&);
  // Destroyed in reverse order of creation: what was made last may use what came before.
  std::vector<std::shared_ptr<void>> owned_;
};

// Parses the flags, reads the environment, builds telemetry and the runtime, calls
// `setup` to build the pipeline and add the routes, then serves until SIGTERM/SIGINT and
// shuts down gracefully (draining requests, flushing telemetry). Returns the process exit
// code.
int RunService(const ServiceDefinition& definition, int argc, char** argv,
               const std::function<void(ServiceHost&)>& setup);

// An upstream service's base URL from `variable` (default `fallback`), e.g.
// VIGIL_CATALOG_URL=http://127.0.0.1:8082. Throws telemetry::ConfigError naming the
// variable when it is not an http:// URL.
http::UpstreamAddress UpstreamFromEnv(const char* variable, std::string_view fallback);

}  // namespace vigil::service

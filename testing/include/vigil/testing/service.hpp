// Test support: a platform service with a database in the test's process, served as
// RunService serves auth, catalog and orders: a ServiceHost on the server's Runtime, the
// platform's middleware (PlatformPipeline, with compression) and then
// service::DatabaseOutageMiddleware, as their mains add them, on an ephemeral loopback port.
// The test's `setup` adds the routes and the objects they use.
//
//   vigil::test_support::TestTelemetry telemetry("catalog");
//   vigil::test_support::RunningService catalog(
//       {"catalog", 0, 0, ""}, *telemetry, service::IdentitySigner(kSecret),
//       [&](service::ServiceHost& host) { host.Make<CatalogApi>(db, ...).AddRoutes(host); });
//   auto res = catalog.RoundTrip("GET /items HTTP/1.1\r\nHost: catalog\r\n\r\n");
//
// Thread-safety: driven by the test's thread; the service works on its own threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vigil/service/service.hpp>

#include "vigil/testing/server.hpp"

namespace vigil::test_support {

class RunningService {
 public:
  // Builds the ServiceHost on the server's Runtime with the pipeline above, calls `setup`
  // on it (on this thread, before serving) and serves the routes it added with `workers`
  // threads. The host, and what it owns, lives until the service has stopped. `telemetry`
  // must outlive the object. Throws what `setup` and Server::Start throw.
  RunningService(service::ServiceDefinition definition, telemetry::Telemetry& telemetry,
                 service::IdentitySigner identity,
                 const std::function<void(service::ServiceHost&)>& setup, std::size_t workers = 2);

  std::uint16_t port() const { return server_.port(); }
  // Sends `request` (exact bytes) on a new connection and reads one response.
  ClientResponse RoundTrip(std::string_view request) const { return server_.RoundTrip(request); }

 private:
  service::ServiceDefinition definition_;  // the host refers to it
  RunningServer server_;
};

}  // namespace vigil::test_support

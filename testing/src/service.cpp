#include "vigil/testing/service.hpp"

#include <memory>
#include <utility>
#include <vigil/service/database.hpp>

#include "vigil/testing/pipeline.hpp"

namespace vigil::test_support {

RunningService::RunningService(service::ServiceDefinition definition,
                               telemetry::Telemetry& telemetry, service::IdentitySigner identity,
                               const std::function<void(service::ServiceHost&)>& setup,
                               std::size_t workers)
    : definition_(definition),
      server_(
          [&](http::Runtime& runtime, http::Routes& routes, http::Pipeline& pipeline) {
            auto host = std::make_shared<service::ServiceHost>(definition_, telemetry, runtime,
                                                               std::move(identity));
            host->pipeline() = PlatformPipeline(telemetry);
            host->pipeline().Add<service::DatabaseOutageMiddleware>();
            setup(*host);
            routes = std::move(host->routes());
            pipeline = std::move(host->pipeline());
            return host;
          },
          http::Pipeline{}, http::ServerOptions{}, workers) {}

}  // namespace vigil::test_support

#include "vigil/testing/pipeline.hpp"

#include <vigil/http/middleware/access_log.hpp>
#include <vigil/http/middleware/compression.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/metrics.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/tracing.hpp>

namespace vigil::test_support {

http::Pipeline PlatformPipeline(telemetry::Telemetry& telemetry, bool compress) {
  http::Pipeline pipeline;
  pipeline.Add<http::RequestIdMiddleware>();
  pipeline.Add<http::TracingMiddleware>(telemetry.tracer());
  pipeline.Add<http::MetricsMiddleware>(telemetry.metrics());
  pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
  if (compress) pipeline.Add<http::CompressionMiddleware>(telemetry.metrics());
  pipeline.Add<http::ErrorMiddleware>(telemetry);
  return pipeline;
}

}  // namespace vigil::test_support

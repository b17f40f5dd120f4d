// RED metrics for the server side of HTTP, named as docs/conventions.md fixes them:
//   http_server_request_duration_seconds{http_request_method, http_route,
//                                        http_response_status_code}   histogram
//   http_server_active_requests{http_request_method}                    gauge
// The route label is the template (or "unmatched"), the method is bounded by
// `_OTHER`, so no label grows with traffic. A sampled server span becomes the
// observation's exemplar.
//
//   pipeline.Add<http::MetricsMiddleware>(telemetry.metrics());
//
// Thread-safety: metric updates are lock-free; safe from every worker.
#pragma once

#include <vigil/http/middleware.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::http {

class MetricsMiddleware final : public Middleware {
 public:
  explicit MetricsMiddleware(telemetry::Registry& registry);
  void Before(Exchange& exchange) override;
  void After(Exchange& exchange) noexcept override;

 private:
  telemetry::Family<telemetry::Histogram>& duration_;
  telemetry::Family<telemetry::Gauge>& active_;
};

}  // namespace vigil::http

#include <vigil/http/middleware/metrics.hpp>

namespace vigil::http {

namespace tel = vigil::telemetry;

MetricsMiddleware::MetricsMiddleware(tel::Registry& registry)
    : duration_(registry.HistogramFamily(
          "http_server_request_duration_seconds", "Duration of HTTP server requests.",
          {"http_request_method", "http_route", "http_response_status_code"})),
      active_(registry.GaugeFamily("http_server_active_requests",
                                   "Number of HTTP server requests in flight.",
                                   {"http_request_method"})) {}

void MetricsMiddleware::Before(Exchange& ex) { active_.WithLabels({ex.method_label()}).Inc(); }

void MetricsMiddleware::After(Exchange& ex) noexcept {
  try {
    active_.WithLabels({ex.method_label()}).Dec();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ex.start()).count();
    char status[3];
    const std::string_view route = ex.route().empty() ? std::string_view("unmatched") : ex.route();
    duration_.WithLabels({ex.method_label(), route, StatusLabel(ex.status(), status)})
        .Observe(seconds, ex.context().span);
  } catch (...) {
    // Out of memory for a new series: the request is still served.
  }
}

}  // namespace vigil::http

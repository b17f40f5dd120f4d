// The access log: exactly one JSON line per request, at info (2xx/3xx), warn (4xx) or
// error (5xx), with the request's trace_id, span_id and request_id and the fields
// http.request.method, http.route, url.path, http.response.status_code, duration_ms,
// client.address (and error.type when something failed).
//
//   if (http::AccessLogMiddleware::EnabledFromEnv()) {
//     pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
//   }
//
// Thread-safety: the logger is safe for concurrent use; safe from every worker.
#pragma once

#include <vigil/http/middleware.hpp>
#include <vigil/telemetry/log.hpp>

namespace vigil::http {

class AccessLogMiddleware final : public Middleware {
 public:
  explicit AccessLogMiddleware(telemetry::Logger& log) noexcept : log_(log) {}
  // VIGIL_ACCESS_LOG (default true): whether a program adds the access log. Throws
  // telemetry::ConfigError naming the variable when it is not a boolean.
  static bool EnabledFromEnv();
  void Before(Exchange&) override {}
  void After(Exchange& exchange) noexcept override;

 private:
  telemetry::Logger& log_;
};

}  // namespace vigil::http

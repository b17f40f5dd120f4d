// Errors become RFC 9457 problem+json, never a stack trace or an internal detail.
//
// After the handler: an HttpError becomes its status with its detail; any other
// exception becomes a 500 whose body says only that the error was logged (its message
// goes to an error-level log line and to the span, with the request's ids, where an
// operator can find it); an error status answered without a body gets a problem body.
// Every problem carries the request's request_id and trace_id.
//
//   pipeline.Add<http::ErrorMiddleware>(telemetry.log());
//
// Thread-safety: stateless apart from the logger; safe from every worker.
#pragma once

#include <vigil/http/middleware.hpp>
#include <vigil/telemetry/log.hpp>

namespace vigil::http {

class ErrorMiddleware final : public Middleware {
 public:
  explicit ErrorMiddleware(telemetry::Logger& log) noexcept : log_(log) {}
  void Before(Exchange&) override {}
  void After(Exchange& exchange) noexcept override;

 private:
  telemetry::Logger& log_;
};

}  // namespace vigil::http

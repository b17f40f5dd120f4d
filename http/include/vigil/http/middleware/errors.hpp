// Errors become RFC 9457 problem+json, never a stack trace or an internal detail; and
// error reports, when the program reports errors (SENTRY_DSN).
//
// After the handler: an HttpError becomes its status with its detail; any other
// exception becomes a 500 whose body says only that the error was logged (its message
// goes to an error-level log line and to the span, with the request's ids, where an
// operator can find it); an error status answered without a body gets a problem body.
// Every problem carries the request's request_id and trace_id.
//
// With an error reporter, an exception no handler caught is also reported (its type and
// message, the stack where it was thrown, the request with its secrets filtered, the
// user when `user` names one, what the handler added to Exchange::error_scope()), and its
// log line carries the report's sentry.event_id. HttpErrors are answers a handler chose,
// not reported (a 5xx among them counts as an errored request). Every request counts
// toward release health: crashed (an exception no handler caught), errored (any other
// 5xx) or fine.
//
//   pipeline.Add<http::ErrorMiddleware>(telemetry, service::ErrorUser(host.identity()));
//
// Thread-safety: stateless apart from the logger and the reporter; safe from every worker.
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <vigil/http/middleware.hpp>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::http {

// The authenticated user's id for an error report, or empty when there is none. Runs only
// when a report is made.
using ErrorUserLookup = std::function<std::string(const Exchange&)>;

class ErrorMiddleware final : public Middleware {
 public:
  // Answers and logs errors; reports nothing.
  explicit ErrorMiddleware(telemetry::Logger& log) noexcept : log_(log) {}
  // Also reports them to `telemetry.errors()` (which does nothing without a DSN).
  explicit ErrorMiddleware(telemetry::Telemetry& telemetry, ErrorUserLookup user = {})
      : log_(telemetry.log()), reporter_(&telemetry.errors()), user_(std::move(user)) {}
  // Names the request in the report of a crash on this thread, if the program reports
  // crashes (telemetry::SetCrashRequest).
  void Before(Exchange& exchange) override;
  void After(Exchange& exchange) noexcept override;

 private:
  // Reports the exception being handled; returns the event id (empty: none sent).
  std::string Report(Exchange& exchange, const std::exception* error) noexcept;
  void LogUnhandled(Exchange& exchange, std::string_view type, std::string_view message,
                    std::string_view event_id) noexcept;

  telemetry::Logger& log_;
  telemetry::ErrorReporter* reporter_ = nullptr;
  ErrorUserLookup user_;
};

// The error report of `exchange`: its trace ids (the caller's span as the parent), its
// tags (http.route, http.response.status_code), its request (method, URL, headers, the
// sensitive ones filtered), what its handlers added to error_scope().
telemetry::ErrorEvent ErrorEventOf(const Exchange& exchange,
                                   const telemetry::ErrorReporter& reporter);

// POST /debug/sentry-test on the admin listener: raises and reports a test error, as
// Sentry's SDKs offer a verification step. 202 with {"event_id": ...}; 503 when the
// program does not report errors (SENTRY_DSN unset).
Handler SentryTestHandler(telemetry::Telemetry& telemetry);

}  // namespace vigil::http

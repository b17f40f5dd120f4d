// Server spans: W3C trace context in, one span per request.
//
// Extracts `traceparent`/`tracestate` (an invalid header starts a new trace and never
// fails the request; so does a traceparent sent as more than one field line) and
// `baggage` (of these two lists, all field lines together), starts a SERVER span named
// "{METHOD} {route}" (just "{METHOD}" when no route matched) with the OpenTelemetry HTTP
// attributes, and puts its context in the exchange so that logs, exemplars and outgoing
// calls carry it. After the handler it records the status code (only 5xx marks the span
// as an error) and ends it.
//
//   pipeline.Add<http::TracingMiddleware>(telemetry.tracer());
//
// Thread-safety: holds a copy of the tracer; safe from every worker.
#pragma once

#include <vigil/http/middleware.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::http {

class TracingMiddleware final : public Middleware {
 public:
  explicit TracingMiddleware(telemetry::Tracer tracer) noexcept : tracer_(std::move(tracer)) {}
  void Before(Exchange& exchange) override;
  void After(Exchange& exchange) noexcept override;

 private:
  telemetry::Tracer tracer_;
};

}  // namespace vigil::http

// The SDK in one object: a service's logger, metrics registry, tracer and error reporter,
// configured from the environment, wired together (the SDK reports on itself in the
// registry and logs export failures; error-level log lines become error reports) and
// shut down in order.
//
// A service creates one Telemetry at start-up and hands references to its parts down:
//
//   vigil::telemetry::Telemetry tel(vigil::telemetry::OptionsFromEnv({"auth", "0.3.0"}));
//   tel.log().Info("listening", {{"port", 8081}});
//   auto& requests = tel.metrics().HistogramFamily("http_server_request_duration_seconds", ...);
//   Span span = tel.tracer().StartSpan("GET /items/{id}", remote_parent, SpanKind::kServer);
//
// Thread-safety: log() and metrics() return objects that are themselves safe for
// concurrent use; Shutdown() may be called from any one thread, once or more.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/telemetry/trace.hpp>
#include <vigil/telemetry/trace_processor.hpp>
#include <vigil/telemetry/trace_resource.hpp>

namespace vigil::telemetry {

// Who is emitting: becomes the log lines' service/version/env and, for traces, the
// resource's service.name, service.version, deployment.environment.name and
// service.instance.id.
struct ServiceInfo {
  std::string name;
  std::string version = "0.0.0";
  std::string env = "dev";
  std::string instance_id;  // empty: generated at start-up
};

// Where finished spans go. With neither destination, spans are still created and
// propagated (so traces continue through this service) but nothing is recorded.
struct TraceOptions {
  Sampler sampler;
  BatchOptions batch;
  std::optional<OtlpHttpExporterOptions> otlp;  // OTLP/HTTP receiver, e.g. a Collector
  std::optional<OtlpFileExporterOptions> file;  // OTLP/JSON lines for `./vigil trace`
  SpanLimits limits;
};

struct TelemetryOptions {
  ServiceInfo service;
  LoggerOptions log;
  TraceOptions traces;
  ErrorReportingOptions errors;  // no dsn: no error reports
};

// Options for `service` with the environment applied:
//   OTEL_SERVICE_NAME    overrides service.name
//   VIGIL_ENV            the deployment environment (default "dev")
//   VIGIL_LOG_LEVEL      trace|debug|info|warn|error|fatal (default info)
//   VIGIL_LOG_FILE       write logs to this file instead of stdout (reopened on SIGHUP)
//   VIGIL_LOG_OVERFLOW   drop|block: what a full log queue does (default drop, counted)
//   VIGIL_LOG_QUEUE_BYTES  per-thread log queue size (default 1 MiB; 4 KiB to 1 GiB)
//   OTEL_SDK_DISABLED    true: spans are neither recorded nor exported (context still
//                        propagates); logs and metrics are unaffected
//   OTEL_TRACES_EXPORTER otlp|none; default otlp when an OTEL_EXPORTER_OTLP_*ENDPOINT
//                        is set, else none
//   OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_*_LIMIT,
//   OTEL_RESOURCE_ATTRIBUTES, VIGIL_TRACES_FILE(_MAX_BYTES, _KEEP)  as docs/operations.md
//                        lists them
//   SENTRY_DSN (or SENTRY_DSN_FILE)  where error reports go; unset: none are made
//   SENTRY_ENVIRONMENT   default VIGIL_ENV
//   SENTRY_RELEASE       default "<service>@<version>"
//   SENTRY_SAMPLE_RATE   0 to 1, of error events (default 1)
//   SENTRY_DEBUG         true: log each envelope sent and each report dropped
//   VIGIL_SENTRY_LOG_EVENTS  warn|error|fatal|off: log lines reported as events (error)
//   VIGIL_SENTRY_SESSIONS    true|false: release-health session aggregates (true)
//   VIGIL_SENTRY_QUEUE_SIZE  events waiting to be sent (100; 1 to 100000)
//   VIGIL_SENTRY_COMPRESSION gzip|none (gzip)
//   VIGIL_SENTRY_OUTBOX      directory where a crash leaves its report for the next start
//                            (/tmp/vigil-crashes/<service>); off: no crash handler
// Throws ConfigError naming the variable when a value is malformed (for a DSN, without
// quoting it: it holds a key).
TelemetryOptions OptionsFromEnv(ServiceInfo service);

// The version of this build of Vigil (the CMake project version), which the platform's
// own programs report as their service.version.
std::string_view BuildVersion() noexcept;

class Telemetry {
 public:
  explicit Telemetry(TelemetryOptions options);
  ~Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  const ServiceInfo& service() const noexcept { return service_; }
  Logger& log() noexcept { return *logger_; }
  Registry& metrics() noexcept { return *registry_; }
  const Tracer& tracer() const noexcept { return tracer_; }
  // Disabled (every call returns at once) without a DSN.
  ErrorReporter& errors() noexcept { return *errors_; }

  // Flushes and stops every part: error reports and spans are sent (both within
  // `deadline` from now), then log lines are written. Later calls do nothing. Starting
  // spans, logging or capturing errors after Shutdown() is still safe: spans are dropped
  // (counted), error reports too, lines are written by the logger's destructor at the
  // latest.
  void Shutdown(std::chrono::milliseconds deadline = std::chrono::milliseconds(5000)) noexcept;

 private:
  ServiceInfo service_;
  std::unique_ptr<Registry> registry_;
  // Where log lines go ("stdout", "file" or "fd"): the exporter label of their counters.
  // Taken from the options before the logger consumes them.
  const char* log_sink_;
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<BatchSpanProcessor> processor_;
  Tracer tracer_;
  std::unique_ptr<ErrorReporter> errors_;
  bool shut_down_ = false;
};

}  // namespace vigil::telemetry

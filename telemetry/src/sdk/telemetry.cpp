#include <algorithm>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "vigil_build_info.hpp"

namespace vigil::telemetry {
namespace {

std::optional<OverflowPolicy> ParseOverflow(std::string_view v) {
  if (v == "drop") return OverflowPolicy::kDrop;
  if (v == "block") return OverflowPolicy::kBlock;
  return std::nullopt;
}

std::string NewInstanceId() {
  // 128 random bits as hex: unique per process start, like a UUIDv4 without dashes.
  return TraceId::Random().ToHex();
}

// The trace and OTLP modules report bad environment values as std::invalid_argument
// (they sit below this module); start-up speaks ConfigError everywhere.
template <typename F>
auto ReadTraceSetting(F&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const EnvVarError& e) {
    throw ConfigError(e.variable(), e.message());
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    const auto eq = what.find('=');
    throw ConfigError(eq == std::string::npos ? "OTEL_EXPORTER_OTLP" : what.substr(0, eq),
                      eq == std::string::npos ? what : what.substr(eq + 1));
  }
}

bool OtlpEndpointConfigured() {
  return env::Get("OTEL_EXPORTER_OTLP_ENDPOINT") || env::Get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
}

std::optional<bool> ParseTracesExporter(std::string_view v) {
  if (v == "otlp") return true;
  if (v == "none") return false;
  return std::nullopt;
}

// VIGIL_SENTRY_LOG_EVENTS: the lowest level of log lines reported as events, or none.
std::optional<LogLevel> LogEventsFromEnv() {
  constexpr const char* kName = "VIGIL_SENTRY_LOG_EVENTS";
  const auto raw = env::Get(kName);
  if (!raw) return LogLevel::kError;
  if (*raw == "off") return std::nullopt;
  if (auto level = ParseLogLevel(*raw); level && *level >= LogLevel::kWarn) return level;
  throw ConfigError(kName, "\"" + *raw + "\" is not valid: expected one of warn|error|fatal|off");
}

std::optional<bool> ParseCompression(std::string_view v) {
  if (v == "gzip") return true;
  if (v == "none") return false;
  return std::nullopt;
}

// SENTRY_* and VIGIL_SENTRY_*: where error reports go and what they carry.
ErrorReportingOptions ErrorOptionsFromEnv(const ServiceInfo& service) {
  ErrorReportingOptions o;
  o.service = service.name;
  o.version = service.version;
  o.environment = env::String("SENTRY_ENVIRONMENT", service.env);
  o.release = env::String("SENTRY_RELEASE", "");
  o.sample_rate = env::Number("SENTRY_SAMPLE_RATE", 1.0, 0.0, 1.0);
  o.debug = env::Boolean("SENTRY_DEBUG", false);
  o.log_events = LogEventsFromEnv();
  o.sessions = env::Boolean("VIGIL_SENTRY_SESSIONS", true);
  o.queue_size = static_cast<std::size_t>(env::Integer("VIGIL_SENTRY_QUEUE_SIZE", 100, 1, 100000));
  o.compress = env::Enum<bool>("VIGIL_SENTRY_COMPRESSION", true, ParseCompression, "gzip|none");
  o.crash_outbox = env::String("VIGIL_SENTRY_OUTBOX", "/tmp/vigil-crashes/" + service.name);
  if (o.crash_outbox == "off") o.crash_outbox.clear();
  if (auto dsn = env::Secret("SENTRY_DSN")) {
    std::string why;
    o.dsn = ParseSentryDsn(*dsn, &why);
    if (!o.dsn) {
      // The value holds a key: the message says what is wrong, never what it is.
      throw ConfigError(env::Get("SENTRY_DSN_FILE") ? "SENTRY_DSN_FILE" : "SENTRY_DSN",
                        "(value not shown) is not a valid Sentry DSN: " + why +
                            "; expected https://<public key>@<host>/<project id>");
    }
  }
  return o;
}

// The exporter label of the log lines' one destination.
const char* LogSinkName(const LoggerOptions& o) {
  if (o.fd >= 0) return "fd";
  return o.file_path.empty() ? "stdout" : "file";
}

}  // namespace

TelemetryOptions OptionsFromEnv(ServiceInfo service) {
  TelemetryOptions o;
  o.service = std::move(service);
  o.service.name = env::String("OTEL_SERVICE_NAME", o.service.name);
  o.service.env = env::String("VIGIL_ENV", o.service.env);
  if (o.service.instance_id.empty()) o.service.instance_id = NewInstanceId();

  o.log.service = o.service.name;
  o.log.version = o.service.version;
  o.log.env = o.service.env;
  o.log.level = env::Enum<LogLevel>("VIGIL_LOG_LEVEL", LogLevel::kInfo, ParseLogLevel,
                                    "trace|debug|info|warn|error|fatal");
  o.log.file_path = env::String("VIGIL_LOG_FILE", "");
  o.log.overflow = env::Enum<OverflowPolicy>("VIGIL_LOG_OVERFLOW", OverflowPolicy::kDrop,
                                             ParseOverflow, "drop|block");
  o.log.ring_bytes =
      static_cast<std::size_t>(env::Integer("VIGIL_LOG_QUEUE_BYTES", 1 << 20, 4096, 1LL << 30));

  o.errors = ErrorOptionsFromEnv(o.service);

  o.traces.sampler = ReadTraceSetting([] { return Sampler::FromEnv(); });
  o.traces.batch = ReadTraceSetting([] { return BatchOptions::FromEnv(); });
  o.traces.limits = ReadTraceSetting([] { return SpanLimits::FromEnv(); });
  // OTEL_SDK_DISABLED switches span recording off: no exporter, while trace context still
  // propagates through the service (its logs and metrics are unaffected).
  if (env::Boolean("OTEL_SDK_DISABLED", false)) return o;
  const bool otlp = env::Enum<bool>("OTEL_TRACES_EXPORTER", OtlpEndpointConfigured(),
                                    ParseTracesExporter, "otlp|none");
  if (otlp) o.traces.otlp = ReadTraceSetting([] { return OtlpHttpExporterOptionsFromEnv(); });
  o.traces.file = ReadTraceSetting([] { return OtlpFileExporterOptionsFromEnv(); });
  return o;
}

std::string_view BuildVersion() noexcept { return build::kVersion; }

Telemetry::Telemetry(TelemetryOptions options)
    : service_(std::move(options.service)),
      registry_(std::make_unique<Registry>()),
      log_sink_(LogSinkName(options.log)),
      logger_(std::make_unique<Logger>(std::move(options.log))) {
  RegisterProcessMetrics(*registry_);
  RegisterBuildInfo(*registry_, build::kVersion, build::kRevision);

  Logger* logger = logger_.get();
  const char* log_sink = log_sink_;
  auto report = [logger](std::string_view what) {
    logger->Warn("trace export failed", {{"error.type", what}});
  };
  Resource resource = ReadTraceSetting([&] {
    return BuildResource(service_.name, service_.version, service_.env, service_.instance_id);
  });
  InstrumentationScope scope{"vigil", build::kVersion};
  // The names are the exporter label of the SDK's counters: one fixed word per kind of
  // destination, so the label's values stay few whatever the configuration.
  std::vector<NamedSpanExporter> exporters;
  if (options.traces.otlp) {
    options.traces.otlp->on_error = report;
    exporters.push_back({"otlp", std::make_unique<OtlpHttpExporter>(std::move(*options.traces.otlp),
                                                                    resource, scope)});
  }
  if (options.traces.file) {
    options.traces.file->on_error = report;
    exporters.push_back({"file", std::make_unique<OtlpFileExporter>(std::move(*options.traces.file),
                                                                    resource, scope)});
  }
  if (!exporters.empty()) {
    processor_ = std::make_unique<BatchSpanProcessor>(std::move(exporters), options.traces.batch);
    tracer_ = Tracer(options.traces.sampler, processor_.get(), options.traces.limits);
  } else {
    // No destination: spans still get ids and decisions so traces continue downstream.
    tracer_ = Tracer(options.traces.sampler, nullptr, options.traces.limits);
  }

  errors_ = std::make_unique<ErrorReporter>(std::move(options.errors), logger);
  if (errors_->enabled()) logger->SetObserver(errors_->log_observer());

  BatchSpanProcessor* processor = processor_.get();
  ErrorReporter* errors = errors_.get();
  registry_->AddCollector([logger, processor, errors, log_sink](MetricWriter& w) {
    // Every sample carries signal and exporter (and drops a reason), so each family has
    // one label set. A span lost before any exporter saw it (queue full, shutdown) is
    // counted under every exporter: each one's exported + dropped then adds up to the
    // spans ended, and a destination's loss ratio reads off its own series.
    const Logger::Stats logs = logger->stats();
    BatchSpanProcessor::Stats spans;
    if (processor != nullptr) spans = processor->stats();
    // A family's samples must be written one after the other: all exports, then all drops.
    constexpr const char* kExportedHelp =
        "Telemetry items that left the process, by signal and exporter.";
    w.Counter("vigil_telemetry_exported_total", kExportedHelp,
              {{"signal", "logs"}, {"exporter", log_sink}}, static_cast<double>(logs.written));
    for (const auto& e : spans.exporters()) {
      w.Counter("vigil_telemetry_exported_total", kExportedHelp,
                {{"signal", "spans"}, {"exporter", e.name}}, static_cast<double>(e.exported));
    }
    const ErrorReporterStats reports = errors->stats();
    if (errors->enabled()) {
      w.Counter("vigil_telemetry_exported_total", kExportedHelp,
                {{"signal", "errors"}, {"exporter", "sentry"}},
                static_cast<double>(reports.events_sent));
    }
    constexpr const char* kDroppedHelp =
        "Telemetry items lost before export, by signal, reason and exporter.";
    w.Counter("vigil_telemetry_dropped_total", kDroppedHelp,
              {{"signal", "logs"}, {"reason", "queue_full"}, {"exporter", log_sink}},
              static_cast<double>(logs.dropped));
    w.Counter("vigil_telemetry_dropped_total", kDroppedHelp,
              {{"signal", "logs"}, {"reason", "write_error"}, {"exporter", log_sink}},
              static_cast<double>(logs.sink_errors));
    for (const auto& e : spans.exporters()) {
      const std::pair<const char*, std::uint64_t> drops[] = {
          {"queue_full", e.dropped_queue_full},
          {"rejected", e.dropped_rejected},
          {"export_failed", e.dropped_export_failed},
          {"shutdown", e.dropped_shutdown}};
      for (const auto& [reason, n] : drops) {
        w.Counter("vigil_telemetry_dropped_total", kDroppedHelp,
                  {{"signal", "spans"}, {"reason", reason}, {"exporter", e.name}},
                  static_cast<double>(n));
      }
    }
    if (errors->enabled()) {
      for (std::size_t r = 0; r < reports.events_dropped.size(); ++r) {
        w.Counter("vigil_telemetry_dropped_total", kDroppedHelp,
                  {{"signal", "errors"},
                   {"reason", ToString(static_cast<DiscardReason>(r))},
                   {"exporter", "sentry"}},
                  static_cast<double>(reports.events_dropped[r]));
      }
    }
    // What telemetry itself costs beyond the calls on request threads: the log backend
    // formats and writes, the span worker encodes and exports. Named as top -H shows them.
    constexpr const char* kCpuHelp =
        "CPU time of the telemetry SDK's own threads, as of each one's last pass of work.";
    w.Counter("vigil_telemetry_thread_cpu_seconds_total", kCpuHelp, {{"thread", "vigil-log"}},
              static_cast<double>(logs.backend_cpu_ns) / 1e9);
    if (processor != nullptr) {
      w.Counter("vigil_telemetry_thread_cpu_seconds_total", kCpuHelp, {{"thread", "vigil-spans"}},
                static_cast<double>(spans.worker_cpu_ns) / 1e9);
    }
  });
}

Telemetry::~Telemetry() {
  Shutdown();
  // The logger outlives the reporter: it must stop handing lines to it first.
  logger_->SetObserver(nullptr);
}

void Telemetry::Shutdown(std::chrono::milliseconds deadline) noexcept {
  if (shut_down_) return;
  shut_down_ = true;
  const auto until = std::chrono::steady_clock::now() + deadline;
  // The error lines logged so far reach the reporter before it sends its last reports.
  logger_->Flush();
  errors_->Shutdown(until);
  if (processor_) processor_->Shutdown(until);
  logger_->Flush();
}

}  // namespace vigil::telemetry

#include "vigil/testing/telemetry.hpp"

#include <utility>

namespace vigil::test_support {

telemetry::LoggerOptions QuietLog(std::string file) {
  telemetry::LoggerOptions o;
  o.file_path = std::move(file);
  o.handle_signals = false;
  return o;
}

telemetry::TelemetryOptions QuietTelemetry(std::string service, std::string log_file) {
  telemetry::TelemetryOptions o;
  o.service.name = service;
  o.log = QuietLog(std::move(log_file));
  o.log.service = std::move(service);
  return o;
}

TestTelemetry::TestTelemetry(std::string service)
    : dir_("telemetry"), telemetry_(QuietTelemetry(std::move(service), dir_.File("log.jsonl"))) {}

namespace {
telemetry::TelemetryOptions Adjusted(telemetry::TelemetryOptions o,
                                     const std::function<void(telemetry::TelemetryOptions&)>& f) {
  f(o);
  return o;
}
}  // namespace

TestTelemetry::TestTelemetry(std::string service,
                             const std::function<void(telemetry::TelemetryOptions&)>& adjust)
    : dir_("telemetry"),
      telemetry_(Adjusted(QuietTelemetry(std::move(service), dir_.File("log.jsonl")), adjust)) {}

std::string TestTelemetry::Logs() {
  telemetry_.log().Flush();
  return ReadFile(dir_.File("log.jsonl"));
}

std::string TestTelemetry::Metrics() {
  return telemetry_.metrics().Expose(telemetry::ExpositionFormat::kPrometheusText);
}

}  // namespace vigil::test_support

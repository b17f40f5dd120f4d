#include <array>
#include <vigil/http/middleware/access_log.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::http {

namespace tel = vigil::telemetry;

bool AccessLogMiddleware::EnabledFromEnv() { return tel::env::Boolean("VIGIL_ACCESS_LOG", true); }

void AccessLogMiddleware::After(Exchange& ex) noexcept {
  const unsigned status = ex.status();
  const tel::LogLevel level = status >= 500   ? tel::LogLevel::kError
                              : status >= 400 ? tel::LogLevel::kWarn
                                              : tel::LogLevel::kInfo;
  if (!log_.Enabled(level)) return;
  const auto elapsed = std::chrono::steady_clock::now() - ex.start();
  std::array<tel::Field, 9> fields{
      tel::Field("http.request.method", ex.method_label()),
      tel::Field("url.path", ex.path()),
      tel::Field("http.response.status_code", status),
      tel::Field("duration_ms", std::chrono::duration<double, std::milli>(elapsed)),
      tel::Field("client.address", ex.peer_address()),
      tel::Field("", 0),
      tel::Field("", 0),
      tel::Field("", 0),
      tel::Field("", 0),
  };
  std::size_t n = 5;
  // The same value the metrics carry, so log lines and series join on it.
  fields[n++] = tel::Field("http.route", ex.route().empty() ? std::string_view("unmatched") : ex.route());
  if (!ex.error_type().empty()) fields[n++] = tel::Field("error.type", ex.error_type());
  if (!ex.limited_by().empty()) fields[n++] = tel::Field("vigil.ratelimit.policy", ex.limited_by());
  if (ex.head_sent()) fields[n++] = tel::Field("http.response.body.size", ex.bytes_sent());
  log_.LogFields(level, ex.context(), "request completed", std::span(fields.data(), n));
}

}  // namespace vigil::http

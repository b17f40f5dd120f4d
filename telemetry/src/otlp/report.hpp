// Delivery of exporter error lines to the user's OtlpErrorCallback, shared by the HTTP
// and file exporters.
//
//   if (write_failed) {
//     otlp::Report(options.on_error, "OTLP file export failed: " + reason);
//   }
//
// Thread-safety: stateless; the callback itself must tolerate the exporter's threads.
#pragma once

#include <string_view>
#include <vigil/telemetry/otlp.hpp>

namespace vigil::telemetry::otlp {

// Exporters call this from their worker threads and destructors, so a throwing logger
// is contained here rather than ending the process or losing the exporter.
inline void Report(const OtlpErrorCallback& on_error, std::string_view message) noexcept {
  if (!on_error) {
    return;
  }
  try {
    on_error(message);
  } catch (...) {
    // A failing logger must not take the exporter down with it.
  }
}

}  // namespace vigil::telemetry::otlp

// The interface between the span pipeline and a destination for finished spans.
//
// The batch processor calls Export() from its own thread with a batch of records it
// keeps ownership of; an exporter encodes and sends them before returning. Vigil ships
// the OTLP/HTTP exporter (protobuf or JSON) and a file exporter (OTLP/JSON lines).
//
//   class Discard : public SpanExporter {
//     ExportOutcome Export(std::span<const SpanData* const> b) noexcept override { return
//     {b.size()}; }
//   };
//
// Thread-safety: Export() is called from one thread at a time; Shutdown() may be called
// from another thread while an Export() runs and must make it return promptly.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>
#include <vigil/telemetry/span_data.hpp>

namespace vigil::telemetry {

// What became of one batch. exported + dropped == batch size.
struct ExportOutcome {
  std::size_t exported = 0;
  std::size_t dropped = 0;
  // Why the dropped spans were dropped, for vigil_telemetry_dropped_total{reason}:
  // "rejected" (the receiver refused them, e.g. a 4xx or a partial success),
  // "export_failed" (retries exhausted or deadline passed), "shutdown".
  std::string_view drop_reason;
};

class SpanExporter {
 public:
  virtual ~SpanExporter() = default;

  // Sends `batch`; returns when it is delivered or given up on. Never throws.
  virtual ExportOutcome Export(std::span<const SpanData* const> batch) noexcept = 0;

  // Stops: any running Export() gives up its retries by `deadline`; later calls to
  // Export() drop everything with reason "shutdown".
  virtual void Shutdown(std::chrono::steady_clock::time_point deadline) noexcept = 0;
};

}  // namespace vigil::telemetry

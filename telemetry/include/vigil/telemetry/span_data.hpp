// The finished-span record that the tracer hands to processors and exporters.
//
// Instrumented code never builds these by hand: the tracer fills one per sampled span
// and recycles it after export. Exporters (OTLP protobuf, OTLP/JSON, file) read them.
//
//   // An exporter is given the Resource at construction, then batches of records:
//   ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override {
//     for (const SpanData* s : batch) Encode(resource_, *s);
//     return {batch.size()};
//   }
//
// Thread-safety: plain data. A record belongs to one thread at a time: the span's
// thread until End(), then the processor, then the exporter, then the pool.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry {

// Values follow the OTLP enum numbering so encoders can write them as they are.
enum class SpanKind : std::uint8_t {
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5,
};

enum class StatusCode : std::uint8_t { kUnset = 0, kOk = 1, kError = 2 };

// An attribute value: the OTLP AnyValue scalar types, plus homogeneous-or-mixed arrays
// of them (OTLP ArrayValue).
struct AttributeValue;
using AttributeArray = std::vector<AttributeValue>;
struct AttributeValue {
  std::variant<bool, std::int64_t, double, std::string, AttributeArray> v;

  AttributeValue() : v(false) {}
  AttributeValue(bool b) : v(b) {}  // NOLINT: implicit by design, like a literal
  AttributeValue(std::int64_t i) : v(i) {}
  AttributeValue(int i) : v(static_cast<std::int64_t>(i)) {}
  AttributeValue(double d) : v(d) {}
  AttributeValue(std::string s) : v(std::move(s)) {}
  AttributeValue(std::string_view s) : v(std::string(s)) {}
  AttributeValue(const char* s) : v(std::string(s)) {}
  AttributeValue(AttributeArray a) : v(std::move(a)) {}
  friend bool operator==(const AttributeValue&, const AttributeValue&) = default;
};

struct Attribute {
  std::string key;
  AttributeValue value;
  friend bool operator==(const Attribute&, const Attribute&) = default;
};

struct SpanEvent {
  std::string name;
  std::uint64_t time_unix_nano = 0;
  std::vector<Attribute> attributes;
};

struct SpanLink {
  SpanContext context;
  std::vector<Attribute> attributes;
};

struct SpanStatus {
  StatusCode code = StatusCode::kUnset;
  std::string message;  // only meaningful with kError
};

struct SpanData {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // invalid (all zero) for a root span
  TraceFlags flags;
  std::string trace_state;  // the W3C tracestate header value, may be empty
  bool parent_is_remote = false;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::uint64_t start_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::vector<SpanLink> links;
  SpanStatus status;
  std::uint32_t dropped_attributes_count = 0;
  std::uint32_t dropped_events_count = 0;
  std::uint32_t dropped_links_count = 0;
};

// Who produced the spans (OTLP Resource): service.name, service.version,
// deployment.environment.name, service.instance.id and any OTEL_RESOURCE_ATTRIBUTES.
struct Resource {
  std::vector<Attribute> attributes;
};

// The instrumentation library (OTLP InstrumentationScope).
struct InstrumentationScope {
  std::string name = "vigil";
  std::string version;
};

}  // namespace vigil::telemetry

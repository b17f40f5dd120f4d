// OTLP trace encoders (protobuf and JSON) and the two span exporters built on them:
// OTLP/HTTP to a collector, and OTLP/JSON lines to a file.
//
// Use OtlpHttpExporter to send finished spans to an OpenTelemetry Collector (or any OTLP
// receiver); use OtlpFileExporter to keep traces on disk without any collector. Both are
// SpanExporters that the batch span processor drives. The encoders are public so tools and
// tests can produce exactly the bytes the exporters send.
//
//   auto options = vigil::telemetry::OtlpHttpExporterOptionsFromEnv();  // OTEL_EXPORTER_OTLP_*
//   options.on_error = [&log](std::string_view m) { log.Warn(m); };
//   vigil::telemetry::OtlpHttpExporter exporter(std::move(options), resource, scope);
//
// Protobuf is written by Vigil's own encoder from the opentelemetry-proto field numbers;
// there is no libprotobuf dependency. Strings that are not valid UTF-8 are written with
// each offending byte replaced by U+FFFD, because receivers written in Go reject a whole
// request over one invalid string.
//
// Thread-safety: the encoders may run on any number of threads at once (each call uses
// only its arguments and per-thread scratch space); the options structs are plain values;
// each exporter class states its own rules below.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <vigil/telemetry/span_data.hpp>
#include <vigil/telemetry/span_exporter.hpp>

namespace vigil::telemetry {

// ---------------------------------------------------------------------------- encoders

// Appends an ExportTraceServiceRequest holding `spans` (one ResourceSpans, one ScopeSpans)
// in protobuf wire format to `out`. Fields are written in field-number order and default
// values are omitted, as a protobuf library would. Span.flags carries the W3C trace flags
// plus SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE, and CONTEXT_IS_REMOTE for a remote parent.
// Reuses `out`'s capacity: encoding into a cleared string does not allocate once it has
// grown to the largest batch. Throws std::length_error for a message over 4 GiB.
void EncodeTracesProtobuf(const Resource& resource, const InstrumentationScope& scope,
                          std::span<const SpanData* const> spans, std::string& out);

// Appends the same request in the OTLP/JSON mapping to `out`, as one line without a
// trailing newline: lowerCamelCase names, ids as lowercase hex, enums as integers, 64-bit
// integers as decimal strings, NaN and infinities as "NaN"/"Infinity"/"-Infinity", and
// default values omitted.
void EncodeTracesJson(const Resource& resource, const InstrumentationScope& scope,
                      std::span<const SpanData* const> spans, std::string& out);

// ---------------------------------------------------------------------------- HTTP exporter

enum class OtlpProtocol : std::uint8_t { kHttpProtobuf, kHttpJson };
enum class OtlpCompression : std::uint8_t { kNone, kGzip };

// Called with one line of text when a batch is lost or only partly accepted: at most once
// per batch. Must not block for long; it runs on the exporting thread.
using OtlpErrorCallback = std::function<void(std::string_view message)>;

struct OtlpHttpExporterOptions {
  // The full URL spans are POSTed to.
  std::string endpoint = "http://localhost:4318/v1/traces";
  OtlpProtocol protocol = OtlpProtocol::kHttpProtobuf;
  // Extra request headers (e.g. an API key). Never logged.
  std::vector<std::pair<std::string, std::string>> headers;
  // Bounds one Export() call: every attempt and every wait between attempts.
  std::chrono::milliseconds timeout{10000};
  OtlpCompression compression = OtlpCompression::kNone;
  // Waits between attempts when the receiver gives no Retry-After: retry n waits a random
  // time in [b/2, b] where b = min(max_backoff, initial_backoff * 2^n).
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{5000};
  OtlpErrorCallback on_error;
};

// Options from the standard variables, each TRACES_-specific one taking precedence over
// the general one (OTEL_EXPORTER_OTLP_TRACES_X over OTEL_EXPORTER_OTLP_X):
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   the full URL, used as is
//   OTEL_EXPORTER_OTLP_ENDPOINT          a base URL; "/v1/traces" is appended
//   OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL     http/protobuf (default) or http/json
//   OTEL_EXPORTER_OTLP_[TRACES_]HEADERS      key=value,key2=value2 (values percent-decoded);
//                                            the TRACES_ list adds to the general one
//   OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT      milliseconds, default 10000
//   OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION  gzip or none (default)
// Unset or empty variables keep the defaults. Throws std::invalid_argument, whose message
// starts with the variable's name, for a malformed value.
OtlpHttpExporterOptions OtlpHttpExporterOptionsFromEnv();

// Parses an OTEL_EXPORTER_OTLP_HEADERS value: comma-separated key=value members with
// optional whitespace, values percent-decoded. Throws std::invalid_argument naming
// `variable` when a member is malformed.
std::vector<std::pair<std::string, std::string>> ParseOtlpHeaders(std::string_view value,
                                                                  std::string_view variable);

// Counters since construction, for tests and self-monitoring.
struct OtlpExporterStats {
  std::uint64_t requests = 0;         // HTTP attempts started
  std::uint64_t retries = 0;          // attempts after the first, over all batches
  std::uint64_t spans_exported = 0;   // accepted by the receiver
  std::uint64_t spans_rejected = 0;   // refused: 4xx or partial success
  std::uint64_t spans_failed = 0;     // lost to errors, timeouts or shutdown
  std::uint64_t bytes_sent = 0;       // request bodies, after compression
  std::uint64_t batches_skipped = 0;  // dropped without a request: the receiver was down
};

// Sends batches to an OTLP/HTTP receiver over one kept-alive libcurl connection.
//
// Each Export() encodes into a buffer the exporter keeps (no allocation growth in steady
// state) and POSTs it. 429, 502, 503, 504 and transport errors are retried after the
// receiver's Retry-After (seconds or HTTP date) or an exponential backoff with jitter,
// all within `timeout`; a wait that would end past it gives up at once. Other answers
// drop the batch ("rejected" for 4xx, "export_failed" otherwise) with one on_error line.
// A 2xx body carrying partial_success counts rejected_spans as dropped ("rejected").
//
// A batch whose retries ran out marks the receiver down: later batches are dropped at once
// ("export_failed"; the next attempt's on_error line says how many) except for one attempt
// per backoff period (initial_backoff doubling up to max_backoff, or the receiver's
// Retry-After), without retries, until an attempt gets an answer. So an outage never holds the exporting thread
// longer than one timeout, and spans do not pile up behind it.
//
// Thread-safety: Export() from one thread at a time; Shutdown() and stats() from any
// thread, also while an Export() runs.
class OtlpHttpExporter final : public SpanExporter {
 public:
  // Throws std::invalid_argument for an endpoint that is not http:// or https://, and
  // std::runtime_error when libcurl cannot be initialised.
  OtlpHttpExporter(OtlpHttpExporterOptions options, Resource resource, InstrumentationScope scope);
  ~OtlpHttpExporter() override;
  OtlpHttpExporter(const OtlpHttpExporter&) = delete;
  OtlpHttpExporter& operator=(const OtlpHttpExporter&) = delete;

  ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override;

  // Ends waits between retries at once; an attempt in flight may finish until `deadline`
  // and is aborted then. Later Export() calls drop with reason "shutdown".
  void Shutdown(std::chrono::steady_clock::time_point deadline) noexcept override;

  OtlpExporterStats stats() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---------------------------------------------------------------------------- file exporter

struct OtlpFileExporterOptions {
  static constexpr unsigned kMaxKeep = 100;

  std::string path;
  OtlpErrorCallback on_error;
  // Size rotation: a line that would take the file past max_bytes first moves it to
  // path.1 (path.1 to path.2, and so on), so at most `keep` files exist: path and
  // path.1 .. path.<keep-1>, the oldest deleted. 0 never rotates. A single line larger
  // than max_bytes is still written whole, alone in its file.
  std::uint64_t max_bytes = std::uint64_t{64} << 20;
  unsigned keep = 3;  // 1 to kMaxKeep files, the current one included
};

// The options when VIGIL_TRACES_FILE is set and non-empty; nullopt otherwise.
//   VIGIL_TRACES_FILE_MAX_BYTES  rotate past this size (default 67108864; 0: never)
//   VIGIL_TRACES_FILE_KEEP       files kept, the current one included (default 3, 1-100)
// Throws std::invalid_argument, whose message starts with the variable's name, for a
// value that is not a whole number in range.
std::optional<OtlpFileExporterOptions> OtlpFileExporterOptionsFromEnv();

// Appends each batch to a file as one line of OTLP/JSON (one ExportTraceServiceRequest),
// the format of the OpenTelemetry Collector's file exporter and otlpjsonfile receiver.
// Each line is written with a single write(2) to a file opened with O_APPEND, so lines
// from several processes sharing the file do not interleave.
//
// The file is rotated by size (options.max_bytes, options.keep). Processes sharing one
// path rotate it together: the size checked is the file's own (every writer's lines), the
// renames happen under an flock(2) on the file, and a writer that finds the path moved
// to another file by someone else's rotation reopens it before its next line. A line is
// never split across files, so a trace's spans may straddle a rotation (several lines),
// never one span.
//
// Thread-safety: Export() from one thread at a time; Reopen() and Shutdown() from any
// thread.
class OtlpFileExporter final : public SpanExporter {
 public:
  // Opens (creating) the file; throws std::runtime_error naming the path on failure.
  OtlpFileExporter(OtlpFileExporterOptions options, Resource resource, InstrumentationScope scope);
  ~OtlpFileExporter() override;
  OtlpFileExporter(const OtlpFileExporter&) = delete;
  OtlpFileExporter& operator=(const OtlpFileExporter&) = delete;

  ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override;
  void Shutdown(std::chrono::steady_clock::time_point deadline) noexcept override;

  // Closes and reopens the path (after log rotation moved the file). Returns false, and
  // keeps writing to the old file, when the path cannot be opened.
  bool Reopen() noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vigil::telemetry

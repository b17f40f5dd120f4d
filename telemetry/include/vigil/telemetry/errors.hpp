// Error reports to Sentry, or to any receiver of its envelope protocol (self-hosted
// Sentry, GlitchTip, Spotlight), linked to the trace of the request that failed.
//
// An ErrorReporter turns a caught exception (or an error-level log line, or a count of
// failures) into a Sentry event: the exception's type and message, the stack where it was
// thrown, the build id of every loaded module (so that Sentry can symbolicate too), the
// service's tags, the request (its secrets scrubbed), its trace context, its last log
// lines as breadcrumbs. Events are sent as envelopes over HTTP on a thread of the
// reporter's own, honouring Sentry's rate limits, and what is dropped is reported back as
// client reports. For release health it also sends per-minute session aggregates of the
// requests a server handled.
//
//   ErrorReporter& errors = telemetry.errors();   // disabled without SENTRY_DSN
//   try {
//     ...
//   } catch (const std::exception& e) {
//     ErrorEvent event = ErrorEvent::ForRequest(ctx);
//     event.tags.emplace_back("http.route", "/items/{id}");
//     errors.CaptureException(e, std::move(event));
//   }
//
// What the caller pays: CaptureException copies the exception's message, the request's
// details and the stack recorded when the exception was thrown (a few microseconds) and
// queues the event; symbolising, serialising and sending happen on the reporter's
// thread. Without a DSN every call returns at once. While the reporter is enabled, every
// throw in the process also records its raw stack (a __cxa_throw hook, one unwind of the
// throwing thread's stack), so that the event shows where the exception was thrown
// rather than where it was caught.
//
// Thread-safety: ErrorReporter's methods may be called from any number of threads at
// once. ErrorEvent and ErrorScope are plain values: one thread at a time.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/log.hpp>

namespace vigil::telemetry {

// ---------------------------------------------------------------------------- DSN

// A Sentry DSN: {scheme}://{public_key}[:{secret_key}]@{host}[:{port}][/{path}]/{project_id}.
struct SentryDsn {
  std::string scheme;      // "http" or "https"
  std::string public_key;  // sent in X-Sentry-Auth
  std::string secret_key;  // legacy DSNs only; usually empty
  std::string host;        // with ":port" when the DSN has one
  std::string path;        // what precedes the project id: "" or "/sentry"
  std::string project_id;

  // Where envelopes go: {scheme}://{host}{path}/api/{project_id}/envelope/.
  std::string EnvelopeUrl() const;
  // The DSN without its secret key: what the envelope header names.
  std::string ToPublicString() const;
};

// Parses a DSN. nullopt for anything else, with the reason in *error (when given); the
// reason never quotes the keys, so it may be logged.
std::optional<SentryDsn> ParseSentryDsn(std::string_view text, std::string* error = nullptr);

// ---------------------------------------------------------------------------- events

// Sentry's levels.
enum class ErrorLevel : std::uint8_t { kDebug, kInfo, kWarning, kError, kFatal };
// "debug", "info", "warning", "error", "fatal".
std::string_view ToString(ErrorLevel level) noexcept;
// The Sentry level of a log level (trace and debug are "debug", fatal "fatal").
ErrorLevel ErrorLevelOf(LogLevel level) noexcept;

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct Breadcrumb {
  std::int64_t time_unix_nano = 0;  // 0: when it is added to an event
  ErrorLevel level = ErrorLevel::kInfo;
  std::string category;  // "log" for a log line
  std::string message;
  StringPairs data;
};

// One frame of a stack trace, as Sentry shows it. The reporter fills everything but the
// address from the binaries' own symbols and debug information.
struct StackFrame {
  std::uintptr_t address = 0;  // the return address (or the faulting one, innermost)
  std::string function;        // demangled; empty when unknown
  std::string file;            // empty without debug information
  int line = 0;
  std::string module;  // the loaded object's path
  bool in_app = false;
};

// A loaded module, for Sentry's server-side symbolication (debug_meta.images).
struct DebugImage {
  std::string code_file;  // path
  std::string code_id;    // the GNU build id, hex
  std::string debug_id;   // the build id as Sentry's debug identifier (a UUID)
  std::uintptr_t image_addr = 0;
  std::uint64_t image_size = 0;
};

struct ExceptionInfo {
  std::string type;   // demangled: "std::out_of_range"
  std::string value;  // what()
  // How it was caught: "vigil.http" (a handler's exception the error middleware
  // answered), "vigil.test" (the admin test endpoint), "generic".
  std::string mechanism = "generic";
  bool handled = true;  // false: nothing in the program handled it (a crash for sessions)
  // Innermost first as captured; the event lists them outermost first, as Sentry wants.
  std::vector<StackFrame> frames;
  // True when the frames are the stack at the throw; false when it was not recorded (the
  // exception crossed threads) and the frames show where it was caught.
  bool frames_at_throw = false;
};

struct RequestInfo {
  std::string method;
  std::string url;           // scheme, host and path: no query
  std::string query_string;  // values of sensitive keys replaced by "[Filtered]"
  StringPairs headers;       // sensitive ones' values replaced by "[Filtered]"

  // Adds a header, its value filtered when the name is sensitive: the log redaction list
  // or one of `also_sensitive` (ErrorReportingOptions::sensitive_headers; the reporter
  // filters with both again before sending).
  void AddHeader(std::string_view name, std::string_view value,
                 std::span<const std::string> also_sensitive = {});
  // Sets url and query_string from a target ("/path?query") and a host.
  void SetUrl(std::string_view scheme, std::string_view host, std::string_view target);
};

namespace internal {
// The raw stack of an exception, taken on the request thread and symbolised by the
// reporter's thread.
struct RawStack {
  static constexpr std::size_t kMaxFrames = 64;
  std::array<std::uintptr_t, kMaxFrames> frames{};
  std::uint32_t size = 0;
  bool at_throw = false;
};
}  // namespace internal

// One error report. What a capture fills and the reporter completes (ids, time, the
// service's tags, symbols, debug images, breadcrumbs from the log) before the
// before_send hook sees it.
struct ErrorEvent {
  std::string event_id;  // 32 lowercase hex digits; set by the capture
  std::int64_t time_unix_nano = 0;
  ErrorLevel level = ErrorLevel::kError;
  std::string logger;   // where it came from: "vigil.http", "vigil.log", ...
  std::string message;  // a message event (a log line, a count of failures)
  std::optional<ExceptionInfo> exception;
  // Indexed by Sentry; the reporter adds service, version and env.
  StringPairs tags;
  // Sentry's contexts.trace: links the event to the trace.
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;
  std::string request_id;  // also tagged, to find the log lines
  std::optional<RequestInfo> request;
  std::string user_id;
  std::vector<Breadcrumb> breadcrumbs;
  // Named objects of string values (Sentry's contexts), and free key/values (extra).
  std::vector<std::pair<std::string, StringPairs>> contexts;
  StringPairs extra;
  // What groups events into one issue; empty: the reporter's default (the exception's
  // type, where it was thrown and the route; a log line's message).
  std::vector<std::string> fingerprint;
  std::vector<DebugImage> images;  // filled by the reporter

  // What a capture recorded for the reporter's thread (not part of what is sent).
  const std::type_info* exception_type = nullptr;
  internal::RawStack raw_stack;

  // An event for the request `ctx`: its trace id, span id and request id.
  static ErrorEvent ForRequest(const RequestContext& ctx);
  // Sets a tag, replacing one of the same key.
  void SetTag(std::string_view key, std::string_view value);
};

// What a request handler adds to the event of its request, if one is reported: tags,
// contexts, breadcrumbs, the user. The HTTP runtime keeps one per request
// (http::Exchange::error_scope()); it costs nothing until used.
//
// Thread-safety: a value type.
class ErrorScope {
 public:
  static constexpr std::size_t kMaxBreadcrumbs = 100;

  void SetTag(std::string_view key, std::string_view value);
  void SetContext(std::string_view name, StringPairs values);
  // The oldest breadcrumb goes when there are kMaxBreadcrumbs.
  void AddBreadcrumb(Breadcrumb crumb);
  void SetUser(std::string_view id);
  const std::string& user_id() const noexcept { return user_id_; }

  // Adds everything to `event` (its tags and contexts replace the event's of the same
  // name; breadcrumbs come after the event's own).
  void ApplyTo(ErrorEvent& event) const;

 private:
  StringPairs tags_;
  std::vector<std::pair<std::string, StringPairs>> contexts_;
  std::vector<Breadcrumb> breadcrumbs_;
  std::string user_id_;
};

// The request the calling thread is now serving, named in the report of a crash on this
// thread (ErrorReportingOptions::crash_outbox): its trace, span and request ids are
// copied. Also gives the thread an alternate signal stack, so that a stack overflow is
// reported. Does nothing while no crash handler is installed. The HTTP runtime's error
// middleware calls it as a request enters the pipeline and ClearCrashRequest() as it
// leaves; requests that interleave on a thread are told apart only by which began last.
void SetCrashRequest(const RequestContext& ctx) noexcept;
void ClearCrashRequest() noexcept;

// ---------------------------------------------------------------------------- reporter

// Inspects, changes or drops (false) an event just before it is sent, on the reporter's
// thread. A dropped event is counted ("before_send").
using BeforeSend = std::function<bool(ErrorEvent& event)>;

struct ErrorReportingOptions {
  std::optional<SentryDsn> dsn;  // none: the reporter is disabled
  std::string service;           // tags: service, version, env
  std::string version;
  std::string environment = "dev";
  std::string release;       // empty: "<service>@<version>"
  double sample_rate = 1.0;  // of error events; session aggregates are never sampled
  bool debug = false;        // log each envelope and each drop (info/warn)
  // Log lines at or above this level become events (nullopt: none), except the lines
  // whose message is one of log_events_ignored and those with a sentry.* field (the
  // reporter's own, or a line naming the event it was reported as: sentry.event_id).
  std::optional<LogLevel> log_events = LogLevel::kError;
  // The HTTP pipeline's own lines: the access log's (a 5xx is logged at error level) and
  // the error middleware's, whose failures are reported as exceptions, session
  // aggregates and counted failures rather than once per request.
  std::vector<std::string> log_events_ignored = {"request completed", "request failed",
                                                 "unhandled exception"};
  bool sessions = true;                     // per-minute request aggregates for release health
  std::size_t queue_size = 100;             // events waiting for the sender; beyond: dropped
  std::chrono::milliseconds timeout{5000};  // one envelope's request
  bool compress = true;                     // gzip the envelopes
  // How often session aggregates and counted failures are sent (and at shutdown).
  std::chrono::milliseconds flush_interval{60000};
  // Client reports wait this long for an envelope to ride on, then go alone.
  std::chrono::milliseconds client_report_delay{30000};
  // Request headers whose values are filtered, besides the log redaction list: the
  // platform's signed identity headers.
  std::vector<std::string> sensitive_headers = {"x-vigil-identity", "x-vigil-client"};
  // Where a crash (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) leaves its report, for the
  // next start to send; created when missing. Empty: no crash handler.
  std::string crash_outbox;
  BeforeSend before_send;
};

// The reasons an event (or a session aggregate) is discarded, as Sentry's client reports
// name them; also the `reason` of vigil_telemetry_dropped_total{signal="errors"}.
enum class DiscardReason : std::uint8_t {
  kQueueOverflow,
  kRateLimitBackoff,
  kNetworkError,
  kSendError,
  kSampleRate,
  kBeforeSend,
  kCount
};
std::string_view ToString(DiscardReason reason) noexcept;

// What a server's request came to, for release health: "errored" is a 5xx answer (or an
// error reported while handling it), "crashed" an exception no handler caught.
enum class RequestOutcome : std::uint8_t { kOk, kErrored, kCrashed };

// Counters since construction, for tests and metrics.
struct ErrorReporterStats {
  std::uint64_t events_sent = 0;  // accepted by the receiver (2xx)
  std::array<std::uint64_t, static_cast<std::size_t>(DiscardReason::kCount)> events_dropped{};
  std::uint64_t envelopes = 0;      // requests made
  std::uint64_t sessions_sent = 0;  // aggregates accepted
  std::uint64_t crashes_sent = 0;   // reports of earlier crashes accepted (from the outbox)
  std::uint64_t dropped(DiscardReason r) const noexcept {
    return events_dropped[static_cast<std::size_t>(r)];
  }
};

class ErrorReporter {
 public:
  // Disabled when options.dsn is empty: nothing is started and every call returns at
  // once. Otherwise starts the sender thread and switches the throw-stack hook on.
  // `log` (may be null) receives the reporter's own warnings and debug lines, and is
  // flushed before an event's breadcrumbs are read; it must outlive the reporter.
  // Throws std::runtime_error when libcurl cannot be initialised.
  ErrorReporter(ErrorReportingOptions options, Logger* log);
  // Shutdown() with a deadline of now.
  ~ErrorReporter();
  ErrorReporter(const ErrorReporter&) = delete;
  ErrorReporter& operator=(const ErrorReporter&) = delete;

  bool enabled() const noexcept { return enabled_; }

  // Captures `e`, caught just now on this thread, as an event: its dynamic type and
  // message, the stack where it was thrown (or, when that was not recorded, where it was
  // caught), and `event`'s request details. Returns the event id, or an empty string
  // when nothing will be sent (disabled, sampled out, rate limited, queue full: counted).
  std::string CaptureException(const std::exception& e, ErrorEvent event);
  // Queues a message event (event.message set) as it is. Same result as above.
  std::string CaptureEvent(ErrorEvent event);

  // Counts one failure of `source` (an upstream's name) of `kind` ("timeout", "5xx").
  // Counts are sent as one event per source and kind per flush interval, with the
  // number and the trace of the last failing request, never one event per failure.
  void CountFailure(std::string_view source, std::string_view kind, const RequestContext& ctx);

  // One request of a server ended (release health). Cheap: one atomic increment.
  void RecordRequest(RequestOutcome outcome) noexcept;

  // Sees the logger's lines: keeps each request's recent lines for breadcrumbs and
  // turns error lines into events (ErrorReportingOptions::log_events). Hand it to
  // Logger::SetObserver; null when the reporter is disabled.
  LogObserver* log_observer() noexcept;

  // Sends every queued event, the session aggregates and the client report, waiting
  // until `deadline` at the latest. Returns whether everything was handled in time.
  bool Flush(std::chrono::steady_clock::time_point deadline) noexcept;
  // Flush(), then stops the sender. Later captures drop their events. Idempotent.
  void Shutdown(std::chrono::steady_clock::time_point deadline) noexcept;

  ErrorReporterStats stats() const noexcept;
  // The options in use, defaults filled in (the release).
  const ErrorReportingOptions& options() const noexcept { return options_; }

 private:
  class Impl;
  ErrorReportingOptions options_;
  bool enabled_ = false;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::telemetry

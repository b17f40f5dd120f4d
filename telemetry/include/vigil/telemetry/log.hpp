// Structured JSON logs, written asynchronously: one JSON object per line.
//
// A `Logger` turns each call into one line in the shape docs/conventions.md ("Log lines")
// fixes: `time`, `level`, `msg`, `service`, `version`, `env`, then `trace_id`, `span_id`,
// `request_id` when a request is in scope, then the call's fields in call order. Use
// it for every line a service prints; pass the request's `RequestContext` whenever one
// exists so the line can be joined with its trace.
//
//   Logger log({.service = "auth", .version = "0.3.0"});
//   log.Info(ctx, "request completed", {{"http.route", route}, {"duration_ms", elapsed}});
//   log.Warn("config reloaded", {{"entries", n}});
//
// How it works, and what it costs the caller: a call below the level is one relaxed
// load and a branch (the check is inline; building the fields is three stores each).
// An enabled call copies its arguments (timestamp counter, level, message bytes, ids,
// typed fields) into a ring owned by the calling thread, with no lock and no
// allocation, and returns. One backend thread per logger formats the JSON and writes it
// with write(2) in large batches; it sleeps when there is nothing to write.
//
// Delivery: lines reach the sink when the backend gets to them (within ~5 ms), on
// Flush(), before a kFatal call returns, when the logger is destroyed, at exit() for a
// logger that is never destroyed, and on SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGABRT once any
// logger has installed the handlers (LoggerOptions::handle_signals; they then drain
// every live logger). After fork() the child has no backend thread: its lines are
// written by Flush(), by the destructor or at exit, on the calling thread.
//
// Redaction (done when the line is formatted, whatever the call site passes): a field
// whose key, lowercased, contains any of
//   authorization cookie password passwd secret token api_key apikey api-key
//   private_key credential session
// is written as the string "[REDACTED]" whatever its type. This matches keys such as
// `http.request.header.authorization`, `Set-Cookie`, `refresh_token`, `DB_PASSWORD`.
//
// A field whose key is one of the fixed keys (`time`, `level`, `msg`, `service`,
// `version`, `env`, `trace_id`, `span_id`, `request_id`) is written as `attr.<key>` so a
// line never carries a fixed key twice; pass the request's ids through the
// `RequestContext` overloads instead.
//
// Values: strings are JSON-escaped (`\"`, `\\`, `\n`, `\r`, `\t`, other control
// characters as `\u00XX`; each invalid UTF-8 sequence becomes U+FFFD); integers are JSON
// numbers; doubles use the shortest representation that reads back exactly, NaN and
// infinities become `null`; durations are milliseconds with a fraction (12.4).
//
// Limits: a line whose encoded size exceeds half the ring is dropped and counted in
// `Stats::dropped`, like a line that finds the ring full under `OverflowPolicy::kDrop`.
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry {

enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kFatal };

// "trace", "debug", "info", "warn" (or "warning"), "error", "fatal", in any case;
// nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view text) noexcept;
// The lowercase name written in the `level` key; "unknown" for a value out of range.
std::string_view ToString(LogLevel level) noexcept;

namespace internal {
class LoggerCore;

// Integer types other than bool (which has its own constructor), split by signedness.
template <typename T>
concept SignedInteger = std::integral<T> && !std::same_as<T, bool> && std::is_signed_v<T>;
template <typename T>
concept UnsignedInteger = std::integral<T> && !std::same_as<T, bool> && std::is_unsigned_v<T>;
template <typename T>
concept Enumeration = std::is_enum_v<T>;
}  // namespace internal

// A field key: a string literal, std::string_view or std::string. A type of its own
// rather than std::string_view so that a braced pair never converts to it (string_view
// has two-argument constructors); that keeps `log.Info(msg, {{"a", x}, {"b", y}})`
// unambiguous next to the single-field form `log.Info(msg, {"a", x})` on every compiler.
//
// Thread-safety: a value type.
class FieldKey {
 public:
  constexpr FieldKey(const char* key) noexcept  // NOLINT(google-explicit-constructor)
      : view_(key != nullptr ? std::string_view(key) : std::string_view()) {}
  constexpr FieldKey(std::string_view key) noexcept : view_(key) {}    // NOLINT
  constexpr FieldKey(const std::string& key) noexcept : view_(key) {}  // NOLINT
  constexpr std::string_view view() const noexcept { return view_; }

 private:
  std::string_view view_;
};

// One typed attribute of a log line. A Field only refers to the caller's bytes (key and
// string values); the log call copies them before it returns, so temporaries are fine:
//   {"user.id", std::to_string(id)}
// Constructors are constexpr and trivial, and a Field is three words, so building the
// fields of a call below the level costs a few stores. Keys are cut at 65535 bytes and
// strings at 4 GiB (either is far beyond what a ring accepts anyway).
//
// Thread-safety: a value type.
class Field {
 public:
  enum class Type : std::uint8_t {
    kString,
    kInt,         // int64
    kUint,        // uint64
    kDouble,      // double
    kBool,        // bool
    kDurationNs,  // int64 nanoseconds (integer-based std::chrono::duration)
    kDurationMs,  // double milliseconds (floating-point std::chrono::duration)
  };

  // An integer 0 under an empty key: a placeholder for an array filled later.
  constexpr Field() noexcept : Field(std::string_view(), Type::kInt, kWordSize, Value{.i = 0}) {}
  constexpr Field(FieldKey key, std::string_view v) noexcept
      : Field(key, Type::kString, StringSize(v.size()), Value{.s = v.data()}) {}
  constexpr Field(FieldKey key, const char* v) noexcept
      : Field(key, v != nullptr ? std::string_view(v) : std::string_view()) {}
  constexpr Field(FieldKey key, char* v) noexcept : Field(key, static_cast<const char*>(v)) {}
  constexpr Field(FieldKey key, const std::string& v) noexcept : Field(key, std::string_view(v)) {}
  constexpr Field(FieldKey key, bool v) noexcept
      : Field(key, Type::kBool, kWordSize, Value{.u = v ? 1u : 0u}) {}

  template <internal::SignedInteger T>
  constexpr Field(FieldKey key, T v) noexcept
      : Field(key, Type::kInt, kWordSize, Value{.i = static_cast<std::int64_t>(v)}) {}

  template <internal::UnsignedInteger T>
  constexpr Field(FieldKey key, T v) noexcept
      : Field(key, Type::kUint, kWordSize, Value{.u = static_cast<std::uint64_t>(v)}) {}

  template <std::floating_point T>
  constexpr Field(FieldKey key, T v) noexcept
      : Field(key, Type::kDouble, kWordSize, Value{.d = static_cast<double>(v)}) {}

  // Enumerations are written as their underlying integer.
  template <internal::Enumeration E>
  constexpr Field(FieldKey key, E v) noexcept
      : Field(key, static_cast<std::underlying_type_t<E>>(v)) {}

  template <typename Rep, typename Period>
  constexpr Field(FieldKey key, std::chrono::duration<Rep, Period> v) noexcept
      : Field(key, DurationType<Rep>(), kWordSize, DurationValue(v)) {}

  // Any other pointer would silently become a bool; say what is meant instead.
  template <typename T>
  Field(FieldKey, const T*) = delete;
  Field(FieldKey, std::nullptr_t) = delete;

  constexpr std::string_view key() const noexcept { return {key_, meta_ & 0xFFFF}; }
  constexpr Type type() const noexcept { return static_cast<Type>((meta_ >> 16) & 0xFF); }
  // The accessor matching type(); the others are meaningless.
  constexpr std::string_view string_value() const noexcept { return {value_.s, meta_ >> 32}; }
  constexpr std::int64_t int_value() const noexcept { return value_.i; }
  constexpr double double_value() const noexcept { return value_.d; }
  constexpr bool bool_value() const noexcept { return value_.u != 0; }
  // The 8 value bytes of a non-string field, whatever its type.
  std::uint64_t value_bits() const noexcept { return std::bit_cast<std::uint64_t>(value_); }
  // The non-string field of `type` whose value_bits() are `bits` (what a reader of the
  // encoded form has). For kString use the string_view constructor.
  static Field FromBits(FieldKey key, Type type, std::uint64_t bits) noexcept {
    return Field(key, type, kWordSize, std::bit_cast<Value>(bits));
  }
  // Key size (bits 0-15), type (bits 16-23) and value size (bits 32-63: the string's
  // length, or 8 for every other type) in one word: a log record stores it as is.
  constexpr std::uint64_t packed_sizes() const noexcept { return meta_; }

 private:
  // Every member fills all 8 bytes (bools are stored as 0/1 in `u`), so value_bits()
  // reads no indeterminate byte.
  union Value {
    const char* s;
    std::int64_t i;
    std::uint64_t u;
    double d;
  };

  static constexpr std::uint32_t kWordSize = 8;

  constexpr Field(FieldKey key, Type type, std::uint32_t value_size, Value value) noexcept
      : key_(key.view().data()),
        meta_((key.view().size() < 0xFFFF ? key.view().size() : 0xFFFF) |
              (std::uint64_t{static_cast<std::uint8_t>(type)} << 16) |
              (std::uint64_t{value_size} << 32)),
        value_(value) {}

  static constexpr std::uint32_t StringSize(std::size_t n) noexcept {
    return static_cast<std::uint32_t>(n < 0xFFFFFFFFu ? n : 0xFFFFFFFFu);
  }
  template <typename Rep, typename Period>
  static constexpr Value DurationValue(std::chrono::duration<Rep, Period> v) noexcept {
    if constexpr (std::chrono::treat_as_floating_point_v<Rep>) {
      return Value{.d = std::chrono::duration<double, std::milli>(v).count()};
    } else {
      return Value{.i = static_cast<std::int64_t>(
                       std::chrono::duration_cast<std::chrono::nanoseconds>(v).count())};
    }
  }
  template <typename Rep>
  static constexpr Type DurationType() noexcept {
    return std::chrono::treat_as_floating_point_v<Rep> ? Type::kDurationMs : Type::kDurationNs;
  }

  // Three words, so that building a Field is three stores (one 8-byte store for the
  // packed metadata, a constant for literal keys and numeric values).
  const char* key_;
  std::uint64_t meta_;  // bits 0-15 key size, 16-23 type, 32-63 value size (see packed_sizes)
  Value value_;
};

// What happens when the calling thread's ring is full because the backend cannot keep up.
enum class OverflowPolicy {
  kDrop,   // the line is dropped and counted (Stats::dropped); the caller never waits
  kBlock,  // the caller waits (spin, then yield) until the backend frees space
};

struct LoggerOptions {
  std::string service = "unknown";
  std::string version = "0.0.0";
  std::string env = "dev";
  LogLevel level = LogLevel::kInfo;
  OverflowPolicy overflow = OverflowPolicy::kDrop;
  // Ring size per producing thread, rounded up to a power of two (at least 256 bytes,
  // at most 1 GiB). Pages are only touched as the ring is used.
  std::size_t ring_bytes = std::size_t{1} << 20;
  // Append to this file (O_APPEND|O_CREAT|O_CLOEXEC, mode 0644). Empty: stdout. If the
  // file cannot be opened, lines go to stderr until a Reopen() succeeds.
  std::string file_path;
  // When >= 0, write to this descriptor instead of file_path/stdout; it is not closed.
  int fd = -1;
  // Install process-wide handlers (once): on SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT
  // every live logger is drained synchronously before the signal is re-raised with its
  // previous disposition; SIGHUP makes loggers with a file sink reopen it (logrotate).
  bool handle_signals = true;
};

// One line as the logger's backend read it back, for a LogObserver. Every view points
// into the logger's queues and is valid only during the OnLine() call.
struct LogLineView {
  // Lines carry at most this many fields for an observer; later ones are not shown.
  static constexpr std::size_t kMaxFields = 32;

  LogLevel level = LogLevel::kInfo;
  std::int64_t time_unix_nano = 0;
  std::string_view msg;
  // Logged with a RequestContext: the ids below are the context's (either may be invalid).
  bool has_context = false;
  TraceId trace_id;
  SpanId span_id;
  std::string_view request_id;
  // In call order, unredacted: an observer that passes values on applies its own rules.
  std::span<const Field> fields;
};

// Sees every line a logger writes, after it was formatted, on the logger's backend
// thread: what turns error lines into error reports and keeps a request's recent lines.
//
// Thread-safety: OnLine() is called from one thread at a time (the backend's, or the
// logger's destructor); it must not block for long and must not log to the same logger.
class LogObserver {
 public:
  virtual ~LogObserver() = default;
  virtual void OnLine(const LogLineView& line) noexcept = 0;
};

// The asynchronous logger. Lines are written in the order each thread logged them;
// lines from different threads are interleaved at line granularity.
//
// Thread-safety: all methods may be called concurrently from any number of threads.
// The destructor must not run concurrently with other calls on the same logger; threads
// that logged to it may still be alive (and may later log to other loggers).
class Logger {
 public:
  explicit Logger(const LoggerOptions& options);
  // Writes every line logged before, then stops the backend thread.
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  bool Enabled(LogLevel level) const noexcept {
    return static_cast<std::uint8_t>(level) >= min_level_.load(std::memory_order_relaxed);
  }
  void SetLevel(LogLevel level) noexcept {
    min_level_.store(static_cast<std::uint8_t>(level), std::memory_order_relaxed);
  }
  LogLevel level() const noexcept {
    return static_cast<LogLevel>(min_level_.load(std::memory_order_relaxed));
  }

  // A process-scope line (no request in scope). A kFatal line is written before the
  // call returns.
  void Log(LogLevel level, std::string_view msg,
           std::initializer_list<Field> fields = {}) noexcept {
    if (Enabled(level)) {
      Write(level, nullptr, msg, fields.begin(), fields.size());
    }
  }
  void Log(LogLevel level, std::string_view msg, const Field& field) noexcept {
    if (Enabled(level)) {
      Write(level, nullptr, msg, &field, 1);
    }
  }
  // A request-scope line: `trace_id` and `span_id` (when valid) and `request_id` (when
  // not empty) follow the fixed keys.
  void Log(LogLevel level, const RequestContext& ctx, std::string_view msg,
           std::initializer_list<Field> fields = {}) noexcept {
    if (Enabled(level)) {
      Write(level, &ctx, msg, fields.begin(), fields.size());
    }
  }
  void Log(LogLevel level, const RequestContext& ctx, std::string_view msg,
           const Field& field) noexcept {
    if (Enabled(level)) {
      Write(level, &ctx, msg, &field, 1);
    }
  }

  // A request-scope line whose fields are decided at run time (some present only
  // sometimes, such as error.type on a failed request).
  void LogFields(LogLevel level, const RequestContext& ctx, std::string_view msg,
                 std::span<const Field> fields) noexcept {
    if (Enabled(level)) {
      Write(level, &ctx, msg, fields.data(), fields.size());
    }
  }

#define VIGIL_LOG_SHORTHAND(Name, Level)                                                    \
  void Name(std::string_view msg, std::initializer_list<Field> fields = {}) noexcept {      \
    Log(Level, msg, fields);                                                                \
  }                                                                                         \
  void Name(std::string_view msg, const Field& field) noexcept { Log(Level, msg, field); }  \
  void Name(const RequestContext& ctx, std::string_view msg,                                \
            std::initializer_list<Field> fields = {}) noexcept {                            \
    Log(Level, ctx, msg, fields);                                                           \
  }                                                                                         \
  void Name(const RequestContext& ctx, std::string_view msg, const Field& field) noexcept { \
    Log(Level, ctx, msg, field);                                                            \
  }
  VIGIL_LOG_SHORTHAND(Trace, LogLevel::kTrace)
  VIGIL_LOG_SHORTHAND(Debug, LogLevel::kDebug)
  VIGIL_LOG_SHORTHAND(Info, LogLevel::kInfo)
  VIGIL_LOG_SHORTHAND(Warn, LogLevel::kWarn)
  VIGIL_LOG_SHORTHAND(Error, LogLevel::kError)
  VIGIL_LOG_SHORTHAND(Fatal, LogLevel::kFatal)
#undef VIGIL_LOG_SHORTHAND

  // Returns once every line logged (by any thread) before the call has been handed to
  // the sink, or found unwritable (see Stats::sink_errors).
  void Flush() noexcept;
  // Writes pending lines to the current file, then reopens `file_path` (logrotate's
  // create mode: rename the file, then signal). Lines logged after Reopen() returns go
  // to the new file. No effect on fd or stdout sinks.
  void Reopen() noexcept;

  // `dropped` is what the SDK reports as
  // vigil_telemetry_dropped_total{signal="logs",reason="queue_full"}.
  struct Stats {
    std::uint64_t written;      // lines handed to the sink
    std::uint64_t dropped;      // lines lost: ring full (kDrop) or line larger than half the ring
    std::uint64_t sink_errors;  // lines lost because write(2) failed (EPIPE, ENOSPC, ...)
    std::uint64_t backend_cpu_ns;  // CPU time of the backend thread, as of its last pass
  };
  // Counters since construction; `written` lags the calls until the backend catches up.
  Stats stats() const noexcept;

  // Hands every line from the next backend pass on to `observer` (nullptr: none), which
  // must stay alive until it is replaced or the logger is destroyed. Returns once no pass
  // uses the previous observer any more. Lines written by a fatal-signal handler or in a
  // forked child are not observed. The caller's log calls cost the same either way.
  void SetObserver(LogObserver* observer) noexcept;

 private:
  void Write(LogLevel level, const RequestContext* ctx, std::string_view msg, const Field* fields,
             std::size_t count) noexcept;
  // Out of line so that Write stays small: ring attachment, full ring, oversized line.
  void WriteSlow(LogLevel level, std::uint64_t stamp, std::size_t size, const RequestContext* ctx,
                 std::string_view msg, const Field* fields, std::size_t count) noexcept;
  void AfterWrite(LogLevel level, bool over_half) noexcept;

  std::atomic<std::uint8_t> min_level_;
  // Set by the backend while it sleeps deeply after a quiet spell; the next log call
  // wakes it. Next to the level so that checking it touches no other cache line.
  std::atomic<bool> backend_asleep_{false};
  std::uint64_t id_;  // never reused; keys each thread's cached ring pointer
  std::unique_ptr<internal::LoggerCore> core_;
};

}  // namespace vigil::telemetry

// Spans: start one from an explicit parent context (or as a root), annotate it, end it.
//
// A `Tracer` decides with its `Sampler` whether a new span is sampled and, when it is,
// fills a pooled record that `Span::End()` hands to a `BatchSpanProcessor`
// (trace_processor.hpp). A span that is not sampled still has a valid context (the
// parent's trace id, a new span id, the sampled flag clear) so propagation continues,
// but it records nothing and costs a few nanoseconds. There is no "current span": the
// parent is always passed in, usually as `RequestContext::span`, and `WithSpan` puts a
// span into the request context that log lines and metric exemplars read.
//
//   Span span = tracer.StartSpan("GET /items/{id}", ctx.span, SpanKind::kServer);
//   span.SetAttribute("http.route", "/items/{id}");
//   handler(WithSpan(ctx, span));  // logs written inside carry the span's ids
//
// `Span` is move-only and ends itself when destroyed, so every started span ends once.
// Nothing on the span path allocates in steady state: records and their strings are
// recycled after export.
//
// Configuration from the environment (the OpenTelemetry names): OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG (Sampler::FromEnv) and the span limits
// OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_SPAN_EVENT_COUNT_LIMIT, OTEL_SPAN_LINK_COUNT_LIMIT,
// OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, OTEL_LINK_ATTRIBUTE_COUNT_LIMIT,
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT and the general OTEL_ATTRIBUTE_COUNT_LIMIT /
// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (SpanLimits::FromEnv). A malformed value throws
// EnvVarError naming the variable.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/span_data.hpp>

namespace vigil::telemetry {

class BatchSpanProcessor;
namespace internal {
struct PooledRecord;
}

// An OTEL_* variable whose value cannot be used. what() reads like the SDK's
// ConfigError: `OTEL_TRACES_SAMPLER="sometimes" is not valid: expected one of ...`;
// variable() and message() give the two halves so a caller can rethrow as ConfigError.
//
// Thread-safety: an immutable value.
class EnvVarError : public std::invalid_argument {
 public:
  EnvVarError(std::string variable, std::string message);
  const std::string& variable() const noexcept { return variable_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string variable_;
  std::string message_;
};

// One attribute given by reference: the key and string values are the caller's bytes,
// copied into the span before the call returns. Built implicitly from
// {"key", value} with value a bool, any integer, a floating-point number or a string.
//
// Thread-safety: a value type.
class KeyValue {
 public:
  enum class Type : std::uint8_t { kBool, kInt, kDouble, kString };

  constexpr KeyValue(std::string_view key, bool v) noexcept
      : key_(key), type_(Type::kBool), b_(v) {}
  constexpr KeyValue(std::string_view key, std::int64_t v) noexcept
      : key_(key), type_(Type::kInt), i_(v) {}
  // Every other integer type. Unsigned values above INT64_MAX wrap: OTLP has no
  // unsigned integer.
  template <std::integral T>
  requires(!std::same_as<T, bool> &&
           !std::same_as<T, std::int64_t>) constexpr KeyValue(std::string_view key, T v) noexcept
      : KeyValue(key, static_cast<std::int64_t>(v)) {}
  constexpr KeyValue(std::string_view key, double v) noexcept
      : key_(key), type_(Type::kDouble), d_(v) {}
  constexpr KeyValue(std::string_view key, float v) noexcept
      : KeyValue(key, static_cast<double>(v)) {}
  constexpr KeyValue(std::string_view key, std::string_view v) noexcept
      : key_(key), type_(Type::kString), s_(v) {}
  // Without this a string literal would pick the bool constructor.
  constexpr KeyValue(std::string_view key, const char* v) noexcept
      : KeyValue(key, std::string_view(v)) {}

  constexpr std::string_view key() const noexcept { return key_; }
  constexpr Type type() const noexcept { return type_; }
  constexpr bool bool_value() const noexcept { return b_; }
  constexpr std::int64_t int_value() const noexcept { return i_; }
  constexpr double double_value() const noexcept { return d_; }
  constexpr std::string_view string_value() const noexcept { return s_; }

 private:
  std::string_view key_;
  Type type_;
  union {
    bool b_;
    std::int64_t i_;
    double d_;
    std::string_view s_;
  };
};

enum class SamplingDecision : std::uint8_t { kDrop, kRecordAndSample };

// What ShouldSample decided. Thread-safety: a value type.
struct SamplingResult {
  SamplingDecision decision = SamplingDecision::kDrop;
  // Set when a TraceIdRatioBased rule sampled the span: the 56-bit rejection threshold,
  // which the tracer records in the span's tracestate as `ot=th:...`.
  std::optional<std::uint64_t> threshold;

  bool sampled() const noexcept { return decision == SamplingDecision::kRecordAndSample; }
};

// The OpenTelemetry built-in samplers as one value type (no virtual call per span):
// AlwaysOn, AlwaysOff, TraceIdRatioBased and ParentBased over those.
//
// TraceIdRatioBased implements the OpenTelemetry specification's current definition,
// the one introduced by opentelemetry-specification PR #4166 (2024) in terms of W3C
// Trace Context Level 2 randomness: trace/sdk.md "TraceIdRatioBased sampler algorithm"
// and trace/tracestate-probability-sampling.md "Algorithms" (text as of 2025, with the
// CompositeSampler section):
//   - the ratio becomes a 56-bit rejection threshold T by the specification's reference
//     conversion at its recommended default precision of 4 hex digits (more for small
//     ratios): 0.1 -> th "e666", 0.01 -> "fd70a"; ratio 1 -> T = 0, ratio 0 -> T = 2^56;
//   - the randomness R is the explicit `rv` sub-key of the parent's `ot` tracestate
//     entry when present, else the rightmost 7 bytes of the trace id;
//   - the span is sampled when R >= T, and its tracestate then carries `ot=th:<T>`.
// Any SDK implementing that text therefore makes the same decision for the same trace.
// (Not implemented: the SHOULD-level log warning when a non-root decision presumes
// trace-id randomness although the parent lacks the W3C `random` flag.)
//
// Thread-safety: an immutable value; ShouldSample may be called from any thread.
class Sampler {
 public:
  // The specification's default: ParentBased(root = AlwaysOn).
  Sampler() noexcept = default;

  static Sampler AlwaysOn() noexcept;
  static Sampler AlwaysOff() noexcept;
  // Throws std::invalid_argument unless 0 <= ratio <= 1.
  static Sampler TraceIdRatio(double ratio);
  // Decides root spans with `root` and follows the parent's sampled flag otherwise (the
  // four delegates are the specification's optional parameters, with its defaults).
  // Throws std::invalid_argument when any argument is itself parent-based.
  static Sampler ParentBased(Sampler root, Sampler remote_parent_sampled = AlwaysOn(),
                             Sampler remote_parent_not_sampled = AlwaysOff(),
                             Sampler local_parent_sampled = AlwaysOn(),
                             Sampler local_parent_not_sampled = AlwaysOff());
  // OTEL_TRACES_SAMPLER: always_on, always_off, traceidratio, parentbased_always_on
  // (the default), parentbased_always_off, parentbased_traceidratio (any case);
  // OTEL_TRACES_SAMPLER_ARG: the ratio for the ratio samplers, in [0, 1], default 1.
  // Throws EnvVarError naming the variable for anything else.
  static Sampler FromEnv();

  // `parent` invalid means the span is a root. `trace_id` is the new span's trace id
  // (the parent's when it has one).
  SamplingResult ShouldSample(const SpanContext& parent, const TraceId& trace_id) const noexcept {
    const Rule& rule = parent_based_ && parent.IsValid()
                           ? delegates_[(parent.is_remote ? 0u : 2u) + (parent.sampled() ? 0u : 1u)]
                           : root_;
    if (rule.mode == Mode::kOn) {
      return {SamplingDecision::kRecordAndSample, std::nullopt};
    }
    if (rule.mode == Mode::kOff) {
      return {SamplingDecision::kDrop, std::nullopt};
    }
    return ApplyRatio(rule, parent, trace_id);
  }

  // "AlwaysOnSampler", "AlwaysOffSampler", "TraceIdRatioBased{0.25}",
  // "ParentBased{root=...,remoteParentSampled=...,...}".
  std::string Description() const;

 private:
  enum class Mode : std::uint8_t { kOn, kOff, kRatio };
  struct Rule {
    Mode mode = Mode::kOn;
    double ratio = 1.0;
    std::uint64_t threshold = 0;  // kRatio: sampled when randomness >= threshold
  };

  static SamplingResult ApplyRatio(const Rule& rule, const SpanContext& parent,
                                   const TraceId& trace_id) noexcept;
  static std::string Describe(const Rule& rule);

  Rule root_;
  bool parent_based_ = true;
  // Remote parent sampled, remote not sampled, local sampled, local not sampled.
  Rule delegates_[4] = {{Mode::kOn}, {Mode::kOff}, {Mode::kOn}, {Mode::kOff}};
};

// Limits that keep one span's record bounded. What exceeds a count limit is dropped and
// counted in the record's dropped_*_count; string values longer than
// attribute_value_length are cut (at a UTF-8 character boundary).
//
// Thread-safety: a value type.
struct SpanLimits {
  std::uint32_t attribute_count = 128;
  std::uint32_t event_count = 128;
  std::uint32_t link_count = 128;
  std::uint32_t attributes_per_event = 128;
  std::uint32_t attributes_per_link = 128;
  std::uint32_t attribute_value_length = std::numeric_limits<std::uint32_t>::max();

  // The spec's variables, each falling back to the general OTEL_ATTRIBUTE_* one, then to
  // the defaults above. Throws EnvVarError naming the variable for a malformed value.
  static SpanLimits FromEnv();
};

// A span in progress, or a non-recording span that only carries a context.
//
// Move-only. The destructor ends a span that was not ended; End() is idempotent. Every
// mutator is a no-op (and nearly free) on a non-recording or ended span, so call sites
// need no IsRecording() checks unless computing an attribute is itself costly.
//
// Thread-safety: one span is used by one thread at a time (it may be moved to and ended
// on another thread); distinct spans are independent.
class Span {
 public:
  // A non-recording span with an invalid context.
  Span() noexcept = default;
  Span(Span&& other) noexcept
      : context_(std::move(other.context_)), record_(std::exchange(other.record_, nullptr)) {}
  // Ends this span first if it is still recording.
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() {
    if (record_ != nullptr) {
      Finish(0);
    }
  }

  // True between a sampled start and End(): attributes and events are kept.
  bool IsRecording() const noexcept { return record_ != nullptr; }
  // The context to propagate and to parent children on. Valid for every span a tracer
  // started, recording or not, ended or not.
  const SpanContext& context() const noexcept { return context_; }

  // Sets (or replaces: the last value for a key wins) one attribute.
  //   span.SetAttribute("http.response.status_code", 200);
  //   span.SetAttribute("url.path", path);
  template <typename V>
  requires std::constructible_from<KeyValue, std::string_view, V>
  void SetAttribute(std::string_view key, V&& value) noexcept {
    if (record_ != nullptr) {
      SetAttributeSlow(KeyValue(key, std::forward<V>(value)));
    }
  }
  void SetAttribute(const KeyValue& attribute) noexcept {
    if (record_ != nullptr) {
      SetAttributeSlow(attribute);
    }
  }
  // An array value (OTLP ArrayValue).
  void SetAttribute(std::string_view key, AttributeArray value) noexcept;

  // A timestamped event, e.g. AddEvent("exception", {{"exception.type", "Timeout"}}).
  // time_unix_nano 0 means now.
  void AddEvent(std::string_view name, std::initializer_list<KeyValue> attributes = {},
                std::uint64_t time_unix_nano = 0) noexcept {
    if (record_ != nullptr) {
      AddEventSlow(name, {attributes.begin(), attributes.size()}, time_unix_nano);
    }
  }
  void AddEvent(std::string_view name, std::span<const KeyValue> attributes,
                std::uint64_t time_unix_nano = 0) noexcept {
    if (record_ != nullptr) {
      AddEventSlow(name, attributes, time_unix_nano);
    }
  }

  // A link to another span (a batch's inputs, a message's producer). A link to an
  // invalid context is kept only if it has attributes or a tracestate (the spec's rule).
  void AddLink(const SpanContext& linked,
               std::initializer_list<KeyValue> attributes = {}) noexcept {
    if (record_ != nullptr) {
      AddLinkSlow(linked, {attributes.begin(), attributes.size()});
    }
  }
  void AddLink(const SpanContext& linked, std::span<const KeyValue> attributes) noexcept {
    if (record_ != nullptr) {
      AddLinkSlow(linked, attributes);
    }
  }

  // kUnset is ignored; kOk is final (later calls are ignored); the description is kept
  // only with kError.
  void SetStatus(StatusCode code, std::string_view description = {}) noexcept {
    if (record_ != nullptr) {
      SetStatusSlow(code, description);
    }
  }
  void UpdateName(std::string_view name) noexcept {
    if (record_ != nullptr) {
      UpdateNameSlow(name);
    }
  }

  // Ends the span: the record goes to the processor. end_unix_nano 0 means now; an end
  // before the start is taken as the start. Later calls do nothing.
  void End(std::uint64_t end_unix_nano = 0) noexcept {
    if (record_ != nullptr) {
      Finish(end_unix_nano);
    }
  }

 private:
  friend class Tracer;

  void SetAttributeSlow(const KeyValue& attribute) noexcept;
  void AddEventSlow(std::string_view name, std::span<const KeyValue> attributes,
                    std::uint64_t time_unix_nano) noexcept;
  void AddLinkSlow(const SpanContext& linked, std::span<const KeyValue> attributes) noexcept;
  void SetStatusSlow(StatusCode code, std::string_view description) noexcept;
  void UpdateNameSlow(std::string_view name) noexcept;
  void Finish(std::uint64_t end_unix_nano) noexcept;

  SpanContext context_;
  internal::PooledRecord* record_ = nullptr;
};

// Starts spans. Cheap to copy; holds the sampler, the limits and a pointer to the
// processor, which must outlive the tracer and every span it started. A tracer without
// a processor starts only non-recording spans (contexts still propagate), which is what
// a service with tracing switched off uses.
//
//   BatchSpanProcessor processor(std::move(exporter), BatchOptions::FromEnv());
//   Tracer tracer(Sampler::FromEnv(), &processor, SpanLimits::FromEnv());
//
// Thread-safety: StartSpan may be called from any number of threads at once.
class Tracer {
 public:
  // Non-recording: ParentBased(AlwaysOn) decisions, no processor.
  Tracer() noexcept;
  Tracer(Sampler sampler, BatchSpanProcessor* processor, SpanLimits limits = {}) noexcept;

  // A child of `parent`, or a root span when `parent` is invalid (IsValid() false). A
  // parent extracted from a traceparent header has is_remote set, which the sampler
  // and the record take into account. start_unix_nano 0 means now. Never throws: out of
  // memory gives a span that records less.
  Span StartSpan(std::string_view name, const SpanContext& parent,
                 SpanKind kind = SpanKind::kInternal,
                 std::uint64_t start_unix_nano = 0) const noexcept;
  // A new trace: a random trace id with the W3C Level 2 `random` flag set. Use it when
  // a request arrives without a valid traceparent.
  Span StartRootSpan(std::string_view name, SpanKind kind = SpanKind::kInternal,
                     std::uint64_t start_unix_nano = 0) const noexcept;

  const Sampler& sampler() const noexcept { return sampler_; }
  const SpanLimits& limits() const noexcept { return limits_; }

 private:
  Sampler sampler_;
  BatchSpanProcessor* processor_ = nullptr;
  SpanLimits limits_;
};

// `base` with its span context replaced by `span`'s: the request id and baggage stay.
// Pass the result to log calls (their lines carry the span's trace_id/span_id) and to
// histogram observations (a sampled span becomes the bucket's exemplar).
RequestContext WithSpan(RequestContext base, const Span& span);

}  // namespace vigil::telemetry

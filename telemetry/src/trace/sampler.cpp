// The built-in samplers, the span limits, and their environment variables.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <vigil/telemetry/trace.hpp>
#include <vigil/telemetry/text.hpp>

#include "trace/env_vars.hpp"
#include "trace/probability.hpp"

namespace vigil::telemetry {
namespace {

using internal::ReadEnv;

std::string FormatRatio(double ratio) {
  // Fixed notation, shortest digits that read back exactly: 0.0001, not 1e-04.
  char buf[400];
  const auto end = std::to_chars(buf, buf + sizeof buf, ratio, std::chars_format::fixed).ptr;
  return std::string(buf, end);
}

}  // namespace

Sampler Sampler::AlwaysOn() noexcept {
  Sampler s;
  s.parent_based_ = false;
  s.root_ = Rule{Mode::kOn, 1.0, 0};
  return s;
}

Sampler Sampler::AlwaysOff() noexcept {
  Sampler s;
  s.parent_based_ = false;
  s.root_ = Rule{Mode::kOff, 0.0, internal::kMaxThreshold};
  return s;
}

Sampler Sampler::TraceIdRatio(double ratio) {
  if (!(ratio >= 0.0 && ratio <= 1.0)) {
    throw std::invalid_argument("TraceIdRatio sampler: the ratio must be in [0, 1], not " +
                                FormatRatio(ratio));
  }
  Sampler s;
  s.parent_based_ = false;
  s.root_ = Rule{Mode::kRatio, ratio, internal::RatioToThreshold(ratio)};
  return s;
}

Sampler Sampler::ParentBased(Sampler root, Sampler remote_parent_sampled,
                             Sampler remote_parent_not_sampled, Sampler local_parent_sampled,
                             Sampler local_parent_not_sampled) {
  for (const Sampler* s : {&root, &remote_parent_sampled, &remote_parent_not_sampled,
                           &local_parent_sampled, &local_parent_not_sampled}) {
    if (s->parent_based_) {
      throw std::invalid_argument("ParentBased sampler: a delegate cannot itself be ParentBased");
    }
  }
  Sampler s;
  s.root_ = root.root_;
  s.parent_based_ = true;
  s.delegates_[0] = remote_parent_sampled.root_;
  s.delegates_[1] = remote_parent_not_sampled.root_;
  s.delegates_[2] = local_parent_sampled.root_;
  s.delegates_[3] = local_parent_not_sampled.root_;
  return s;
}

Sampler Sampler::FromEnv() {
  static constexpr const char* kSamplerVar = "OTEL_TRACES_SAMPLER";
  static constexpr const char* kArgVar = "OTEL_TRACES_SAMPLER_ARG";
  const auto raw = ReadEnv(kSamplerVar);
  const std::string name = raw ? text::AsciiLowercase(*raw) : "parentbased_always_on";
  const auto ratio = [&] { return internal::ReadNumber(kArgVar, 1.0, 0.0, 1.0); };
  if (name == "always_on") {
    return AlwaysOn();
  }
  if (name == "always_off") {
    return AlwaysOff();
  }
  if (name == "traceidratio") {
    return TraceIdRatio(ratio());
  }
  if (name == "parentbased_always_on") {
    return ParentBased(AlwaysOn());
  }
  if (name == "parentbased_always_off") {
    return ParentBased(AlwaysOff());
  }
  if (name == "parentbased_traceidratio") {
    return ParentBased(TraceIdRatio(ratio()));
  }
  internal::ThrowInvalid(kSamplerVar, *raw,
                         "one of always_on|always_off|traceidratio|parentbased_always_on|"
                         "parentbased_always_off|parentbased_traceidratio");
}

SamplingResult Sampler::ApplyRatio(const Rule& rule, const SpanContext& parent,
                                   const TraceId& trace_id) noexcept {
  // Explicit randomness travels in the parent's tracestate; a root has none.
  std::optional<std::uint64_t> randomness;
  if (parent.IsValid() && !parent.trace_state.empty()) {
    randomness = internal::ExplicitRandomness(parent.trace_state);
  }
  const std::uint64_t r = randomness ? *randomness : internal::TraceIdRandomness(trace_id);
  if (r >= rule.threshold) {
    return {SamplingDecision::kRecordAndSample, rule.threshold};
  }
  return {SamplingDecision::kDrop, std::nullopt};
}

std::string Sampler::Describe(const Rule& rule) {
  switch (rule.mode) {
    case Mode::kOn:
      return "AlwaysOnSampler";
    case Mode::kOff:
      return "AlwaysOffSampler";
    case Mode::kRatio:
      break;
  }
  return "TraceIdRatioBased{" + FormatRatio(rule.ratio) + "}";
}

std::string Sampler::Description() const {
  if (!parent_based_) {
    return Describe(root_);
  }
  return "ParentBased{root=" + Describe(root_) + ",remoteParentSampled=" + Describe(delegates_[0]) +
         ",remoteParentNotSampled=" + Describe(delegates_[1]) +
         ",localParentSampled=" + Describe(delegates_[2]) +
         ",localParentNotSampled=" + Describe(delegates_[3]) + "}";
}

SpanLimits SpanLimits::FromEnv() {
  constexpr std::int64_t kMax = std::numeric_limits<std::uint32_t>::max();
  const auto read = [](const char* name, std::uint32_t fallback) {
    return static_cast<std::uint32_t>(internal::ReadInteger(name, fallback, 0, kMax));
  };
  const SpanLimits defaults;
  const std::uint32_t count = read("OTEL_ATTRIBUTE_COUNT_LIMIT", defaults.attribute_count);
  const std::uint32_t length =
      read("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", defaults.attribute_value_length);
  SpanLimits limits;
  limits.attribute_count = read("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", count);
  limits.attribute_value_length = read("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", length);
  limits.event_count = read("OTEL_SPAN_EVENT_COUNT_LIMIT", defaults.event_count);
  limits.link_count = read("OTEL_SPAN_LINK_COUNT_LIMIT", defaults.link_count);
  limits.attributes_per_event = read("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", count);
  limits.attributes_per_link = read("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", count);
  return limits;
}

}  // namespace vigil::telemetry

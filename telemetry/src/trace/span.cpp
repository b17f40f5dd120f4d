// Span start, annotation and end: the code every traced request runs.
#include <algorithm>
#include <cstring>
#include <vigil/telemetry/text.hpp>
#include <vigil/telemetry/trace.hpp>
#include <vigil/telemetry/trace_processor.hpp>

#include "context/w3c_text.hpp"
#include "trace/probability.hpp"
#include "trace/record_pool.hpp"
#include "trace/span_clock.hpp"

namespace vigil::telemetry {
namespace {

using internal::PooledRecord;
using internal::SpanClockNow;

// Strings longer than this make the record worth checking for oversized buffers when it
// is recycled.
constexpr std::size_t kLongString = 4096;

// Ids straight from the per-thread generator: one draw per 8 bytes, no byte loop.
SpanId NewSpanId() noexcept {
  std::uint64_t r;
  do {
    r = RandomU64();
  } while (r == 0);
  std::array<std::uint8_t, SpanId::kSize> bytes;
  std::memcpy(bytes.data(), &r, sizeof r);
  return SpanId(bytes);
}

TraceId NewTraceId() noexcept {
  std::uint64_t r[2];
  do {
    r[0] = RandomU64();
    r[1] = RandomU64();
  } while ((r[0] | r[1]) == 0);
  std::array<std::uint8_t, TraceId::kSize> bytes;
  std::memcpy(bytes.data(), r, sizeof r);
  return TraceId(bytes);
}

// Cuts at `limit` bytes, backing off to the start of a UTF-8 sequence so a character
// is never split.
std::string_view Truncate(std::string_view s, std::uint32_t limit) noexcept {
  return text::Utf8Prefix(s, limit);
}

// A recycled record usually meets the same keys (and often the same values) as its
// previous span: comparing is cheaper than std::string::assign's general path.
std::uint64_t Load8(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Whether `a` and `b` hold the same bytes. Attribute keys and values are mostly short and
// a record is reused for spans of the same shape, so these comparisons are frequent and
// usually between short strings: up to 32 bytes they are a few overlapping 8-byte loads,
// inline, instead of a call to memcmp.
bool SameBytes(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n >= 8 && n <= 32) {
    const char* x = a.data();
    const char* y = b.data();
    std::uint64_t diff = (Load8(x) ^ Load8(y)) | (Load8(x + n - 8) ^ Load8(y + n - 8));
    if (n > 16) diff |= (Load8(x + 8) ^ Load8(y + 8)) | (Load8(x + n - 16) ^ Load8(y + n - 16));
    return diff == 0;
  }
  return n == 0 || std::memcmp(a.data(), b.data(), n) == 0;
}

// Keeps the buffer and skips the copy when the recycled string already holds `value`
// (a record reused for a span of the same shape gets the same keys again).
void AssignString(std::string& target, std::string_view value) {
  if (SameBytes(target, value)) return;
  target.assign(value.data(), value.size());
}

// Writes `value` into `target`, in place when it already holds that type (a string
// keeps its buffer; no variant reset).
template <typename T, typename V>
void Store(AttributeValue& target, const V& value) {
  if (auto* existing = std::get_if<T>(&target.v)) {
    if constexpr (std::is_same_v<T, std::string>) {
      AssignString(*existing, value);
    } else {
      *existing = value;
    }
  } else {
    target.v.template emplace<T>(value);
  }
}

// Overwrites `target` with `kv`'s value; returns whether a long string was stored.
bool AssignValue(AttributeValue& target, const KeyValue& kv, std::uint32_t max_length) {
  switch (kv.type()) {
    case KeyValue::Type::kBool:
      Store<bool>(target, kv.bool_value());
      return false;
    case KeyValue::Type::kInt:
      Store<std::int64_t>(target, kv.int_value());
      return false;
    case KeyValue::Type::kDouble:
      Store<double>(target, kv.double_value());
      return false;
    case KeyValue::Type::kString: {
      const std::string_view s = Truncate(kv.string_value(), max_length);
      Store<std::string>(target, s);
      return s.size() > kLongString;
    }
  }
  return false;
}

// The slot for `key` among the span's live attributes: the existing one (the last
// value for a key wins), else a fresh slot with the key written, not yet counted as
// live. Null when the count limit is reached (counted as dropped).
struct Slot {
  Attribute* attribute;
  bool is_new;
};
// A fingerprint of an attribute key: its length and its first and last eight bytes (all
// of a shorter key). Equal keys have equal prints; unequal keys with equal prints only
// cost a byte comparison.
std::uint64_t KeyPrint(std::string_view key) noexcept {
  const std::size_t n = key.size();
  std::uint64_t head = 0;
  std::uint64_t tail = 0;
  if (n >= 8) {
    head = Load8(key.data());
    tail = Load8(key.data() + n - 8);
  } else if (n > 0) {
    std::memcpy(&head, key.data(), n);
  }
  return (head ^ (tail * 0x9E3779B97F4A7C15ULL)) + n;
}

Slot AttributeSlot(PooledRecord& r, std::string_view key) {
  // Scanning the prints touches one or two cache lines; scanning the keys touched every
  // attribute element and the heap buffer of each long key of the same length, lines
  // that are often cold in a recycled record.
  const std::uint64_t print = KeyPrint(key);
  const std::uint32_t printed = std::min(r.attributes_used, PooledRecord::kPrintedKeys);
  for (std::uint32_t i = 0; i < printed; ++i) {
    if (r.key_prints[i] == print && SameBytes(r.attributes[i].key, key)) {
      return {&r.attributes[i], false};
    }
  }
  for (std::uint32_t i = printed; i < r.attributes_used; ++i) {
    if (SameBytes(r.attributes[i].key, key)) {
      return {&r.attributes[i], false};
    }
  }
  if (r.attributes_used >= r.limits.attribute_count) {
    ++r.dropped_attributes_count;
    return {nullptr, false};
  }
  Attribute* slot;
  if (r.attributes_used < r.attributes.size()) {
    slot = &r.attributes[r.attributes_used];
  } else if (!r.spare_attributes.empty()) {
    r.attributes.push_back(std::move(r.spare_attributes.back()));
    r.spare_attributes.pop_back();
    slot = &r.attributes.back();
  } else {
    slot = &r.attributes.emplace_back();
  }
  AssignString(slot->key, key);
  if (key.size() > kLongString) {
    r.oversized = true;
  }
  if (r.attributes_used < PooledRecord::kPrintedKeys) {
    r.key_prints[r.attributes_used] = print;
  }
  return {slot, true};
}

// Writes an event's or link's attributes over the elements `out` already has (their
// buffers are reused), then drops the surplus. Returns whether a long string was stored.
bool FillAttributes(std::vector<Attribute>& out, std::span<const KeyValue> in,
                    std::uint32_t max_count, std::uint32_t max_length) {
  bool long_string = false;
  std::size_t n = 0;
  for (const KeyValue& kv : in) {
    Attribute* slot = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      if (SameBytes(out[i].key, kv.key())) {
        slot = &out[i];
        break;
      }
    }
    if (slot == nullptr) {
      if (n >= max_count) {
        continue;
      }
      slot = n < out.size() ? &out[n] : &out.emplace_back();
      AssignString(slot->key, kv.key());
      long_string = long_string || kv.key().size() > kLongString;
      ++n;
    }
    long_string = AssignValue(slot->value, kv, max_length) || long_string;
  }
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(n), out.end());
  return long_string;
}

}  // namespace

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    if (record_ != nullptr) {
      Finish(0);
    }
    context_ = std::move(other.context_);
    record_ = std::exchange(other.record_, nullptr);
  }
  return *this;
}

void Span::SetAttributeSlow(const KeyValue& attribute) noexcept {
  PooledRecord& r = *record_;
  try {
    const Slot slot = AttributeSlot(r, attribute.key());
    if (slot.attribute == nullptr) {
      return;
    }
    if (AssignValue(slot.attribute->value, attribute, r.limits.attribute_value_length)) {
      r.oversized = true;
    }
    if (slot.is_new) {
      ++r.attributes_used;
    }
  } catch (...) {
    ++r.dropped_attributes_count;  // out of memory
  }
}

void Span::SetAttribute(std::string_view key, AttributeArray value) noexcept {
  if (record_ == nullptr) {
    return;
  }
  PooledRecord& r = *record_;
  try {
    const Slot slot = AttributeSlot(r, key);
    if (slot.attribute == nullptr) {
      return;
    }
    slot.attribute->value.v = std::move(value);
    r.oversized = true;  // arrays are not kept in recycled records
    if (slot.is_new) {
      ++r.attributes_used;
    }
  } catch (...) {
    ++r.dropped_attributes_count;
  }
}

void Span::AddEventSlow(std::string_view name, std::span<const KeyValue> attributes,
                        std::uint64_t time_unix_nano) noexcept {
  PooledRecord& r = *record_;
  if (r.events_used >= r.limits.event_count) {
    ++r.dropped_events_count;
    return;
  }
  try {
    SpanEvent& e =
        r.events_used < r.events.size() ? r.events[r.events_used] : r.events.emplace_back();
    AssignString(e.name, name);
    e.time_unix_nano = time_unix_nano != 0 ? time_unix_nano : SpanClockNow();
    const bool long_string = FillAttributes(e.attributes, attributes, r.limits.attributes_per_event,
                                            r.limits.attribute_value_length);
    r.oversized = r.oversized || long_string || name.size() > kLongString ||
                  attributes.size() > internal::kMaxKeptNestedAttributes;
    ++r.events_used;
  } catch (...) {
    ++r.dropped_events_count;
  }
}

void Span::AddLinkSlow(const SpanContext& linked, std::span<const KeyValue> attributes) noexcept {
  if (!linked.IsValid() && attributes.empty() && linked.trace_state.empty()) {
    return;
  }
  PooledRecord& r = *record_;
  if (r.links_used >= r.limits.link_count) {
    ++r.dropped_links_count;
    return;
  }
  try {
    SpanLink& l = r.links_used < r.links.size() ? r.links[r.links_used] : r.links.emplace_back();
    l.context = linked;
    const bool long_string = FillAttributes(l.attributes, attributes, r.limits.attributes_per_link,
                                            r.limits.attribute_value_length);
    r.oversized =
        r.oversized || long_string || attributes.size() > internal::kMaxKeptNestedAttributes;
    ++r.links_used;
  } catch (...) {
    ++r.dropped_links_count;
  }
}

void Span::SetStatusSlow(StatusCode code, std::string_view description) noexcept {
  SpanStatus& status = record_->status;
  if (code == StatusCode::kUnset || status.code == StatusCode::kOk) {
    return;
  }
  status.code = code;
  if (code != StatusCode::kError) {
    status.message.clear();
    return;
  }
  try {
    status.message.assign(description);
    if (description.size() > kLongString) {
      record_->oversized = true;
    }
  } catch (...) {
    status.message.clear();
  }
}

void Span::UpdateNameSlow(std::string_view name) noexcept {
  try {
    record_->name.assign(name);
    if (name.size() > kLongString) {
      record_->oversized = true;
    }
  } catch (...) {
    // Keeps the old name.
  }
}

void Span::Finish(std::uint64_t end_unix_nano) noexcept {
  PooledRecord* r = std::exchange(record_, nullptr);
  r->end_unix_nano = end_unix_nano != 0 ? end_unix_nano : SpanClockNow();
  if (r->end_unix_nano < r->start_unix_nano) {
    r->end_unix_nano = r->start_unix_nano;
  }
  r->TrimToUsed();
  r->processor->OnEnd(r);
}

Tracer::Tracer() noexcept = default;

Tracer::Tracer(Sampler sampler, BatchSpanProcessor* processor, SpanLimits limits) noexcept
    : sampler_(sampler), processor_(processor), limits_(limits) {}

Span Tracer::StartSpan(std::string_view name, const SpanContext& parent, SpanKind kind,
                       std::uint64_t start_unix_nano) const noexcept {
  Span span;
  SpanContext& ctx = span.context_;
  const bool has_parent = parent.IsValid();
  if (has_parent) {
    ctx.trace_id = parent.trace_id;
    ctx.flags = parent.flags;
  } else {
    ctx.trace_id = NewTraceId();
    ctx.flags.bits = TraceFlags::kRandom;  // our trace ids are random: W3C Level 2
  }
  ctx.span_id = NewSpanId();

  const SamplingResult decision = sampler_.ShouldSample(parent, ctx.trace_id);
  if (decision.sampled()) {
    ctx.flags.bits |= TraceFlags::kSampled;
  } else {
    ctx.flags.bits = static_cast<std::uint8_t>(ctx.flags.bits & ~TraceFlags::kSampled);
  }
  // Out of memory below leaves a span that propagates less, or records less, but never
  // an exception on the request path.
  try {
    if (has_parent && !parent.trace_state.empty()) {
      ctx.trace_state = parent.trace_state;
    }
    if (decision.threshold) {
      internal::SetThreshold(ctx.trace_state, *decision.threshold);
    }
    if (!decision.sampled() || processor_ == nullptr) {
      return span;
    }

    PooledRecord* r = internal::AcquireRecord();
    r->processor = processor_;
    r->limits = limits_;
    r->trace_id = ctx.trace_id;
    r->span_id = ctx.span_id;
    r->flags = ctx.flags;
    if (has_parent) {
      r->parent_span_id = parent.span_id;
      r->parent_is_remote = parent.is_remote;
    }
    r->kind = kind;
    r->start_unix_nano = start_unix_nano != 0 ? start_unix_nano : SpanClockNow();
    // From here on the span owns the record and ends (and recycles) it normally.
    span.record_ = r;
    AssignString(r->name, name);
    if (!ctx.trace_state.empty()) {
      w3c::AppendTraceStateHeader(ctx.trace_state, r->trace_state);
    }
    r->oversized = name.size() > kLongString || r->trace_state.size() > kLongString;
  } catch (...) {
    // Keep whatever was set before the allocation failed.
  }
  return span;
}

Span Tracer::StartRootSpan(std::string_view name, SpanKind kind,
                           std::uint64_t start_unix_nano) const noexcept {
  return StartSpan(name, SpanContext{}, kind, start_unix_nano);
}

RequestContext WithSpan(RequestContext base, const Span& span) {
  base.span = span.context();
  return base;
}

}  // namespace vigil::telemetry

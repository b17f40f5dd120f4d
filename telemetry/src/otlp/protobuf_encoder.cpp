// ExportTraceServiceRequest in protobuf wire format, written without libprotobuf.
//
// Two passes over the batch. The first computes the size of every length-delimited
// message and stores it, in the order the messages will be written, in a per-thread
// vector that keeps its capacity; the second writes into the output grown once to the
// exact total. Nothing is encoded twice and nothing is moved after writing, which is what
// keeps this well above 2 M spans/s. Both passes must take the same decisions about which
// fields to omit; the final size check catches any mismatch.
//
// Field numbers (opentelemetry-proto): see the Tag constants below.

#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <variant>
#include <vector>
#include <vigil/telemetry/otlp.hpp>

#include "otlp/span_prefetch.hpp"
#include "utf8.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::uint8_t kWireVarint = 0;
constexpr std::uint8_t kWireFixed64 = 1;
constexpr std::uint8_t kWireLen = 2;
constexpr std::uint8_t kWireFixed32 = 5;

// A one-byte field key (field numbers 1 to 15).
constexpr std::uint8_t Tag(std::uint8_t field, std::uint8_t wire) {
  return static_cast<std::uint8_t>((field << 3) | wire);
}

// ExportTraceServiceRequest
constexpr std::uint8_t kRequestResourceSpans = Tag(1, kWireLen);
// ResourceSpans
constexpr std::uint8_t kResourceSpansResource = Tag(1, kWireLen);
constexpr std::uint8_t kResourceSpansScopeSpans = Tag(2, kWireLen);
// Resource
constexpr std::uint8_t kResourceAttributes = Tag(1, kWireLen);
// ScopeSpans
constexpr std::uint8_t kScopeSpansScope = Tag(1, kWireLen);
constexpr std::uint8_t kScopeSpansSpans = Tag(2, kWireLen);
// InstrumentationScope
constexpr std::uint8_t kScopeName = Tag(1, kWireLen);
constexpr std::uint8_t kScopeVersion = Tag(2, kWireLen);
// Span
constexpr std::uint8_t kSpanTraceId = Tag(1, kWireLen);
constexpr std::uint8_t kSpanSpanId = Tag(2, kWireLen);
constexpr std::uint8_t kSpanTraceState = Tag(3, kWireLen);
constexpr std::uint8_t kSpanParentSpanId = Tag(4, kWireLen);
constexpr std::uint8_t kSpanName = Tag(5, kWireLen);
constexpr std::uint8_t kSpanKind = Tag(6, kWireVarint);
constexpr std::uint8_t kSpanStartTime = Tag(7, kWireFixed64);
constexpr std::uint8_t kSpanEndTime = Tag(8, kWireFixed64);
constexpr std::uint8_t kSpanAttributes = Tag(9, kWireLen);
constexpr std::uint8_t kSpanDroppedAttributes = Tag(10, kWireVarint);
constexpr std::uint8_t kSpanEvents = Tag(11, kWireLen);
constexpr std::uint8_t kSpanDroppedEvents = Tag(12, kWireVarint);
constexpr std::uint8_t kSpanLinks = Tag(13, kWireLen);
constexpr std::uint8_t kSpanDroppedLinks = Tag(14, kWireVarint);
constexpr std::uint8_t kSpanStatus = Tag(15, kWireLen);
// Span.flags is field 16: its key (16 << 3 | 5 = 133) takes two varint bytes.
constexpr std::uint8_t kSpanFlagsKey[2] = {0x85, 0x01};
// Span.Event
constexpr std::uint8_t kEventTime = Tag(1, kWireFixed64);
constexpr std::uint8_t kEventName = Tag(2, kWireLen);
constexpr std::uint8_t kEventAttributes = Tag(3, kWireLen);
// Span.Link
constexpr std::uint8_t kLinkTraceId = Tag(1, kWireLen);
constexpr std::uint8_t kLinkSpanId = Tag(2, kWireLen);
constexpr std::uint8_t kLinkTraceState = Tag(3, kWireLen);
constexpr std::uint8_t kLinkAttributes = Tag(4, kWireLen);
constexpr std::uint8_t kLinkFlags = Tag(6, kWireFixed32);
// Status
constexpr std::uint8_t kStatusMessage = Tag(2, kWireLen);
constexpr std::uint8_t kStatusCode = Tag(3, kWireVarint);
// KeyValue
constexpr std::uint8_t kKeyValueKey = Tag(1, kWireLen);
constexpr std::uint8_t kKeyValueValue = Tag(2, kWireLen);
// AnyValue
constexpr std::uint8_t kAnyString = Tag(1, kWireLen);
constexpr std::uint8_t kAnyBool = Tag(2, kWireVarint);
constexpr std::uint8_t kAnyInt = Tag(3, kWireVarint);
constexpr std::uint8_t kAnyDouble = Tag(4, kWireFixed64);
constexpr std::uint8_t kAnyArray = Tag(5, kWireLen);
// ArrayValue
constexpr std::uint8_t kArrayValues = Tag(1, kWireLen);

// SpanFlags: bit 8 says whether the parent's (or link's) remoteness is known, bit 9 is it.
constexpr std::uint32_t kFlagHasIsRemote = 0x100;
constexpr std::uint32_t kFlagIsRemote = 0x200;

constexpr std::size_t kTraceIdField = 2 + TraceId::kSize;
constexpr std::size_t kSpanIdField = 2 + SpanId::kSize;

constexpr std::size_t VarintSize(std::uint64_t v) {
  return (static_cast<std::size_t>(std::bit_width(v | 1)) * 9 + 64) / 64;
}

// Key, length and payload of a length-delimited field with a one-byte key.
constexpr std::size_t LenField(std::size_t payload) { return 1 + VarintSize(payload) + payload; }

std::uint32_t SpanFlags(const SpanData& s) {
  std::uint32_t flags = s.flags.bits | kFlagHasIsRemote;
  if (s.parent_is_remote && s.parent_span_id.IsValid()) {
    flags |= kFlagIsRemote;
  }
  return flags;
}

std::uint32_t LinkFlags(const SpanLink& l) {
  std::uint32_t flags = l.context.flags.bits | kFlagHasIsRemote;
  if (l.context.is_remote) {
    flags |= kFlagIsRemote;
  }
  return flags;
}

bool HasStatus(const SpanStatus& s) { return s.code != StatusCode::kUnset || !s.message.empty(); }

// The tracestate header text of a link, without building it.
std::size_t TraceStateSize(const TraceState& ts) {
  const auto& members = ts.members();
  if (members.empty()) {
    return 0;
  }
  std::size_t n = members.size() - 1;  // commas
  for (const auto& m : members) {
    n += m.key.size() + 1 + m.value.size();
  }
  return n;
}

class ProtobufWriter {
 public:
  explicit ProtobufWriter(std::vector<std::uint32_t>& sizes) : sizes_(sizes) { sizes_.clear(); }

  // ------------------------------------------------------------------ pass 1: sizes
  // Each Size* function returns the payload size of its message and records it (and those
  // of nested messages) in write order.

  std::size_t SizeRequest(const Resource& resource, const InstrumentationScope& scope,
                          std::span<const SpanData* const> spans) {
    const std::size_t slot = Reserve();
    std::size_t n = 0;
    n += LenField(SizeAttributesMessage(resource.attributes));
    n += LenField(SizeScopeSpans(scope, spans));
    return LenField(Fill(slot, n));
  }

  // ------------------------------------------------------------------ pass 2: bytes

  void WriteRequest(const Resource& resource, const InstrumentationScope& scope,
                    std::span<const SpanData* const> spans, char* out) {
    p_ = out;
    cursor_ = 0;
    Header(kRequestResourceSpans);
    Header(kResourceSpansResource);
    for (const auto& a : resource.attributes) {
      WriteKeyValue(kResourceAttributes, a);
    }
    Header(kResourceSpansScopeSpans);
    Header(kScopeSpansScope);
    if (!scope.name.empty()) {
      String(kScopeName, scope.name);
    }
    if (!scope.version.empty()) {
      String(kScopeVersion, scope.version);
    }
    for (const SpanData* s : spans) {
      WriteSpan(*s);
    }
  }

  char* end() const noexcept { return p_; }
  std::size_t consumed() const noexcept { return cursor_; }

 private:
  std::size_t Reserve() {
    sizes_.push_back(0);
    return sizes_.size() - 1;
  }
  std::size_t Fill(std::size_t slot, std::size_t n) {
    if (n > std::numeric_limits<std::uint32_t>::max()) {
      throw std::length_error("OTLP protobuf message over 4 GiB");
    }
    sizes_[slot] = static_cast<std::uint32_t>(n);
    return n;
  }

  // Payload size of a string after UTF-8 repair.
  std::size_t Text(std::string_view s) {
    const utf8::Measured m = utf8::Measure(s);
    if (!m.valid) {
      sanitize_ = true;
    }
    return m.repaired_size;
  }
  std::size_t TextField(std::string_view s) { return LenField(Text(s)); }

  std::size_t SizeAttributesMessage(const std::vector<Attribute>& attrs) {
    const std::size_t slot = Reserve();
    return Fill(slot, SizeAttributes(attrs));
  }

  std::size_t SizeAttributes(const std::vector<Attribute>& attrs) {
    std::size_t n = 0;
    for (const auto& a : attrs) {
      n += LenField(SizeKeyValue(a));
    }
    return n;
  }

  std::size_t SizeKeyValue(const Attribute& a) {
    const std::size_t slot = Reserve();
    std::size_t n = a.key.empty() ? 0 : TextField(a.key);
    n += LenField(SizeAnyValue(a.value));
    return Fill(slot, n);
  }

  std::size_t SizeAnyValue(const AttributeValue& value) {
    const std::size_t slot = Reserve();
    std::size_t n = 0;
    // Inside a oneof a default value is still written: it says which member is set.
    if (std::holds_alternative<bool>(value.v)) {
      n = 2;
    } else if (const auto* i = std::get_if<std::int64_t>(&value.v)) {
      n = 1 + VarintSize(static_cast<std::uint64_t>(*i));
    } else if (std::holds_alternative<double>(value.v)) {
      n = 9;
    } else if (const auto* s = std::get_if<std::string>(&value.v)) {
      n = TextField(*s);
    } else {
      const auto& array = std::get<AttributeArray>(value.v);
      const std::size_t array_slot = Reserve();
      std::size_t m = 0;
      for (const auto& e : array) {
        m += LenField(SizeAnyValue(e));
      }
      n = LenField(Fill(array_slot, m));
    }
    return Fill(slot, n);
  }

  std::size_t SizeScopeSpans(const InstrumentationScope& scope,
                             std::span<const SpanData* const> spans) {
    const std::size_t slot = Reserve();
    const std::size_t scope_slot = Reserve();
    std::size_t s = 0;
    if (!scope.name.empty()) {
      s += TextField(scope.name);
    }
    if (!scope.version.empty()) {
      s += TextField(scope.version);
    }
    std::size_t n = LenField(Fill(scope_slot, s));
    for (std::size_t i = 0; i < spans.size(); ++i) {
      otlp::PrefetchAhead(spans, i);
      n += LenField(SizeSpan(*spans[i]));
    }
    return Fill(slot, n);
  }

  std::size_t SizeSpan(const SpanData& s) {
    const std::size_t slot = Reserve();
    std::size_t n = kTraceIdField + kSpanIdField;
    if (!s.trace_state.empty()) {
      n += TextField(s.trace_state);
    }
    if (s.parent_span_id.IsValid()) {
      n += kSpanIdField;
    }
    if (!s.name.empty()) {
      n += TextField(s.name);
    }
    if (s.kind != SpanKind{}) {
      n += 1 + VarintSize(static_cast<std::uint64_t>(s.kind));
    }
    if (s.start_unix_nano != 0) {
      n += 9;
    }
    if (s.end_unix_nano != 0) {
      n += 9;
    }
    n += SizeAttributes(s.attributes);
    if (s.dropped_attributes_count != 0) {
      n += 1 + VarintSize(s.dropped_attributes_count);
    }
    for (const auto& e : s.events) {
      n += LenField(SizeEvent(e));
    }
    if (s.dropped_events_count != 0) {
      n += 1 + VarintSize(s.dropped_events_count);
    }
    for (const auto& l : s.links) {
      n += LenField(SizeLink(l));
    }
    if (s.dropped_links_count != 0) {
      n += 1 + VarintSize(s.dropped_links_count);
    }
    if (HasStatus(s.status)) {
      n += LenField(SizeStatus(s.status));
    }
    n += sizeof kSpanFlagsKey + 4;
    return Fill(slot, n);
  }

  std::size_t SizeEvent(const SpanEvent& e) {
    const std::size_t slot = Reserve();
    std::size_t n = e.time_unix_nano != 0 ? 9 : 0;
    if (!e.name.empty()) {
      n += TextField(e.name);
    }
    n += SizeAttributes(e.attributes);
    return Fill(slot, n);
  }

  std::size_t SizeLink(const SpanLink& l) {
    const std::size_t slot = Reserve();
    std::size_t n = kTraceIdField + kSpanIdField + 5;
    if (std::size_t ts = TraceStateSize(l.context.trace_state); ts != 0) {
      n += LenField(ts);
    }
    n += SizeAttributes(l.attributes);
    return Fill(slot, n);
  }

  std::size_t SizeStatus(const SpanStatus& st) {
    const std::size_t slot = Reserve();
    std::size_t n = st.message.empty() ? 0 : TextField(st.message);
    if (st.code != StatusCode::kUnset) {
      n += 2;
    }
    return Fill(slot, n);
  }

  // ------------------------------------------------------------------ writing primitives

  std::uint32_t Next() { return sizes_[cursor_++]; }

  void Byte(std::uint8_t b) { *p_++ = static_cast<char>(b); }
  void Raw(const void* data, std::size_t n) {
    std::memcpy(p_, data, n);
    p_ += n;
  }
  void Varint(std::uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>(static_cast<std::uint8_t>(v) | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void Fixed64(std::uint64_t v) {
    if constexpr (std::endian::native == std::endian::little) {
      Raw(&v, 8);
    } else {
      for (int i = 0; i < 8; ++i) {
        Byte(static_cast<std::uint8_t>(v >> (8 * i)));
      }
    }
  }
  void Fixed32(std::uint32_t v) {
    if constexpr (std::endian::native == std::endian::little) {
      Raw(&v, 4);
    } else {
      for (int i = 0; i < 4; ++i) {
        Byte(static_cast<std::uint8_t>(v >> (8 * i)));
      }
    }
  }
  // A submessage's key and its recorded length; the payload follows.
  void Header(std::uint8_t tag) {
    Byte(tag);
    Varint(Next());
  }
  void String(std::uint8_t tag, std::string_view s) {
    Byte(tag);
    if (!sanitize_) {
      Varint(s.size());
      Raw(s.data(), s.size());
      return;
    }
    const utf8::Measured m = utf8::Measure(s);
    Varint(m.repaired_size);
    if (m.valid) {
      Raw(s.data(), s.size());
    } else {
      p_ = utf8::WriteRepaired(s, p_);
    }
  }
  template <std::size_t N>
  void Bytes(std::uint8_t tag, const std::array<std::uint8_t, N>& b) {
    Byte(tag);
    Byte(static_cast<std::uint8_t>(N));
    Raw(b.data(), N);
  }

  // ------------------------------------------------------------------ messages

  void WriteKeyValue(std::uint8_t tag, const Attribute& a) {
    Header(tag);
    if (!a.key.empty()) {
      String(kKeyValueKey, a.key);
    }
    WriteAnyValue(kKeyValueValue, a.value);
  }

  void WriteAnyValue(std::uint8_t tag, const AttributeValue& value) {
    Header(tag);
    if (const auto* b = std::get_if<bool>(&value.v)) {
      Byte(kAnyBool);
      Byte(*b ? 1 : 0);
    } else if (const auto* i = std::get_if<std::int64_t>(&value.v)) {
      Byte(kAnyInt);
      Varint(static_cast<std::uint64_t>(*i));
    } else if (const auto* d = std::get_if<double>(&value.v)) {
      Byte(kAnyDouble);
      Fixed64(std::bit_cast<std::uint64_t>(*d));
    } else if (const auto* s = std::get_if<std::string>(&value.v)) {
      String(kAnyString, *s);
    } else {
      Header(kAnyArray);
      for (const auto& e : std::get<AttributeArray>(value.v)) {
        WriteAnyValue(kArrayValues, e);
      }
    }
  }

  void WriteSpan(const SpanData& s) {
    Header(kScopeSpansSpans);
    Bytes(kSpanTraceId, s.trace_id.bytes());
    Bytes(kSpanSpanId, s.span_id.bytes());
    if (!s.trace_state.empty()) {
      String(kSpanTraceState, s.trace_state);
    }
    if (s.parent_span_id.IsValid()) {
      Bytes(kSpanParentSpanId, s.parent_span_id.bytes());
    }
    if (!s.name.empty()) {
      String(kSpanName, s.name);
    }
    if (s.kind != SpanKind{}) {
      Byte(kSpanKind);
      Varint(static_cast<std::uint64_t>(s.kind));
    }
    if (s.start_unix_nano != 0) {
      Byte(kSpanStartTime);
      Fixed64(s.start_unix_nano);
    }
    if (s.end_unix_nano != 0) {
      Byte(kSpanEndTime);
      Fixed64(s.end_unix_nano);
    }
    for (const auto& a : s.attributes) {
      WriteKeyValue(kSpanAttributes, a);
    }
    if (s.dropped_attributes_count != 0) {
      Byte(kSpanDroppedAttributes);
      Varint(s.dropped_attributes_count);
    }
    for (const auto& e : s.events) {
      Header(kSpanEvents);
      if (e.time_unix_nano != 0) {
        Byte(kEventTime);
        Fixed64(e.time_unix_nano);
      }
      if (!e.name.empty()) {
        String(kEventName, e.name);
      }
      for (const auto& a : e.attributes) {
        WriteKeyValue(kEventAttributes, a);
      }
    }
    if (s.dropped_events_count != 0) {
      Byte(kSpanDroppedEvents);
      Varint(s.dropped_events_count);
    }
    for (const auto& l : s.links) {
      WriteLink(l);
    }
    if (s.dropped_links_count != 0) {
      Byte(kSpanDroppedLinks);
      Varint(s.dropped_links_count);
    }
    if (HasStatus(s.status)) {
      Header(kSpanStatus);
      if (!s.status.message.empty()) {
        String(kStatusMessage, s.status.message);
      }
      if (s.status.code != StatusCode::kUnset) {
        Byte(kStatusCode);
        Byte(static_cast<std::uint8_t>(s.status.code));
      }
    }
    Raw(kSpanFlagsKey, sizeof kSpanFlagsKey);
    Fixed32(SpanFlags(s));
  }

  void WriteLink(const SpanLink& l) {
    Header(kSpanLinks);
    Bytes(kLinkTraceId, l.context.trace_id.bytes());
    Bytes(kLinkSpanId, l.context.span_id.bytes());
    if (std::size_t ts = TraceStateSize(l.context.trace_state); ts != 0) {
      Byte(kLinkTraceState);
      Varint(ts);
      bool first = true;
      for (const auto& m : l.context.trace_state.members()) {
        if (!first) {
          Byte(',');
        }
        first = false;
        Raw(m.key.data(), m.key.size());
        Byte('=');
        Raw(m.value.data(), m.value.size());
      }
    }
    for (const auto& a : l.attributes) {
      WriteKeyValue(kLinkAttributes, a);
    }
    Byte(kLinkFlags);
    Fixed32(LinkFlags(l));
  }

  std::vector<std::uint32_t>& sizes_;
  std::size_t cursor_ = 0;
  char* p_ = nullptr;
  bool sanitize_ = false;  // some string needs UTF-8 repair: check each one while writing
};

}  // namespace

void EncodeTracesProtobuf(const Resource& resource, const InstrumentationScope& scope,
                          std::span<const SpanData* const> spans, std::string& out) {
  // Kept per thread so that steady-state encoding allocates nothing.
  thread_local std::vector<std::uint32_t> sizes;
  ProtobufWriter writer(sizes);
  const std::size_t total = writer.SizeRequest(resource, scope, spans);
  const std::size_t start = out.size();
  out.resize(start + total);
  writer.WriteRequest(resource, scope, spans, out.data() + start);
  if (writer.end() != out.data() + out.size() || writer.consumed() != sizes.size()) {
    // Unreachable unless the two passes disagree; never send a corrupt body.
    out.resize(start);
    throw std::logic_error("OTLP protobuf encoder size mismatch");
  }
}

}  // namespace vigil::telemetry

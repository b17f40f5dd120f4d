// ExportTraceServiceRequest in the OTLP/JSON mapping (the protobuf JSON mapping with the
// OTLP exceptions: trace and span ids as hex, not base64; enums as integers).

#include <charconv>
#include <cmath>
#include <cstring>
#include <variant>
#include <vigil/telemetry/otlp.hpp>

#include "otlp/span_prefetch.hpp"
#include "utf8.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::uint32_t kFlagHasIsRemote = 0x100;
constexpr std::uint32_t kFlagIsRemote = 0x200;

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void Request(const Resource& resource, const InstrumentationScope& scope,
               std::span<const SpanData* const> spans) {
    Raw("{\"resourceSpans\":[{\"resource\":{");
    if (!resource.attributes.empty()) {
      Attributes("attributes", resource.attributes, false);
    }
    Raw("},\"scopeSpans\":[{\"scope\":{");
    bool first = true;
    if (!scope.name.empty()) {
      Key("name", first);
      String(scope.name);
    }
    if (!scope.version.empty()) {
      Key("version", first);
      String(scope.version);
    }
    out_ += '}';
    if (!spans.empty()) {
      Raw(",\"spans\":[");
      for (std::size_t i = 0; i < spans.size(); ++i) {
        if (i != 0) {
          out_ += ',';
        }
        otlp::PrefetchAhead(spans, i);
        Span(*spans[i]);
      }
      out_ += ']';
    }
    Raw("}]}]}");
  }

 private:
  void Raw(std::string_view s) { out_.append(s); }

  // `"name":`, preceded by a comma unless it is the object's first member.
  void Key(std::string_view name, bool& first) {
    if (!first) {
      out_ += ',';
    }
    first = false;
    out_ += '"';
    out_.append(name);
    out_ += "\":";
  }

  template <typename Int>
  void Integer(Int v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  // 64-bit integers are strings in the protobuf JSON mapping (JavaScript numbers are not).
  template <typename Int>
  void QuotedInteger(Int v) {
    out_ += '"';
    Integer(v);
    out_ += '"';
  }

  void Double(double d) {
    if (std::isnan(d)) {
      Raw("\"NaN\"");
    } else if (std::isinf(d)) {
      Raw(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out_.append(buf, r.ptr);
    }
  }

  template <typename Id>
  void Hex(const Id& id) {
    char buf[Id::kHexSize + 2];
    buf[0] = '"';
    id.ToHex(buf + 1);
    buf[Id::kHexSize + 1] = '"';
    out_.append(buf, sizeof buf);
  }

  // A JSON string: escapes what JSON requires and repairs invalid UTF-8.
  void String(std::string_view s) {
    out_ += '"';
    const auto* u = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t run = 0;  // start of the bytes not yet copied
    std::size_t i = 0;
    while (i < s.size()) {
      const unsigned char c = u[i];
      if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
        ++i;
        continue;
      }
      std::size_t bad = 1;
      if (c >= 0x80) {
        if (std::size_t n = utf8::SequenceLength(u + i, s.size() - i, &bad); n != 0) {
          i += n;
          continue;
        }
      }
      out_.append(s.data() + run, i - run);
      switch (c) {
        case '"':
          Raw("\\\"");
          break;
        case '\\':
          Raw("\\\\");
          break;
        case '\n':
          Raw("\\n");
          break;
        case '\r':
          Raw("\\r");
          break;
        case '\t':
          Raw("\\t");
          break;
        case '\b':
          Raw("\\b");
          break;
        case '\f':
          Raw("\\f");
          break;
        default:
          if (c >= 0x80) {
            out_.append(utf8::kReplacement);
          } else {
            static constexpr char kHex[] = "0123456789abcdef";
            const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
            out_.append(esc, sizeof esc);
          }
      }
      i += bad;
      run = i;
    }
    out_.append(s.data() + run, s.size() - run);
    out_ += '"';
  }

  void AnyValue(const AttributeValue& value) {
    if (const auto* b = std::get_if<bool>(&value.v)) {
      Raw(*b ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
    } else if (const auto* i = std::get_if<std::int64_t>(&value.v)) {
      Raw("{\"intValue\":");
      QuotedInteger(*i);
      out_ += '}';
    } else if (const auto* d = std::get_if<double>(&value.v)) {
      Raw("{\"doubleValue\":");
      Double(*d);
      out_ += '}';
    } else if (const auto* s = std::get_if<std::string>(&value.v)) {
      Raw("{\"stringValue\":");
      String(*s);
      out_ += '}';
    } else {
      const auto& array = std::get<AttributeArray>(value.v);
      if (array.empty()) {
        Raw("{\"arrayValue\":{}}");
        return;
      }
      Raw("{\"arrayValue\":{\"values\":[");
      for (std::size_t k = 0; k < array.size(); ++k) {
        if (k != 0) {
          out_ += ',';
        }
        AnyValue(array[k]);
      }
      Raw("]}}");
    }
  }

  // `"name":[{"key":...,"value":...},...]`; nothing for an empty list.
  void Attributes(std::string_view name, const std::vector<Attribute>& attrs, bool comma) {
    if (attrs.empty()) {
      return;
    }
    if (comma) {
      out_ += ',';
    }
    out_ += '"';
    out_.append(name);
    Raw("\":[");
    for (std::size_t k = 0; k < attrs.size(); ++k) {
      if (k != 0) {
        out_ += ',';
      }
      if (attrs[k].key.empty()) {
        Raw("{\"value\":");
      } else {
        Raw("{\"key\":");
        String(attrs[k].key);
        Raw(",\"value\":");
      }
      AnyValue(attrs[k].value);
      out_ += '}';
    }
    out_ += ']';
  }

  void Span(const SpanData& s) {
    Raw("{\"traceId\":");
    Hex(s.trace_id);
    Raw(",\"spanId\":");
    Hex(s.span_id);
    bool first = false;
    if (!s.trace_state.empty()) {
      Key("traceState", first);
      String(s.trace_state);
    }
    if (s.parent_span_id.IsValid()) {
      Key("parentSpanId", first);
      Hex(s.parent_span_id);
    }
    std::uint32_t flags = s.flags.bits | kFlagHasIsRemote;
    if (s.parent_is_remote && s.parent_span_id.IsValid()) {
      flags |= kFlagIsRemote;
    }
    Key("flags", first);
    Integer(flags);
    if (!s.name.empty()) {
      Key("name", first);
      String(s.name);
    }
    if (s.kind != SpanKind{}) {
      Key("kind", first);
      Integer(static_cast<unsigned>(s.kind));
    }
    if (s.start_unix_nano != 0) {
      Key("startTimeUnixNano", first);
      QuotedInteger(s.start_unix_nano);
    }
    if (s.end_unix_nano != 0) {
      Key("endTimeUnixNano", first);
      QuotedInteger(s.end_unix_nano);
    }
    Attributes("attributes", s.attributes, true);
    if (s.dropped_attributes_count != 0) {
      Key("droppedAttributesCount", first);
      Integer(s.dropped_attributes_count);
    }
    if (!s.events.empty()) {
      Raw(",\"events\":[");
      for (std::size_t k = 0; k < s.events.size(); ++k) {
        if (k != 0) {
          out_ += ',';
        }
        Event(s.events[k]);
      }
      out_ += ']';
    }
    if (s.dropped_events_count != 0) {
      Key("droppedEventsCount", first);
      Integer(s.dropped_events_count);
    }
    if (!s.links.empty()) {
      Raw(",\"links\":[");
      for (std::size_t k = 0; k < s.links.size(); ++k) {
        if (k != 0) {
          out_ += ',';
        }
        Link(s.links[k]);
      }
      out_ += ']';
    }
    if (s.dropped_links_count != 0) {
      Key("droppedLinksCount", first);
      Integer(s.dropped_links_count);
    }
    if (s.status.code != StatusCode::kUnset || !s.status.message.empty()) {
      Raw(",\"status\":{");
      bool status_first = true;
      if (!s.status.message.empty()) {
        Key("message", status_first);
        String(s.status.message);
      }
      if (s.status.code != StatusCode::kUnset) {
        Key("code", status_first);
        Integer(static_cast<unsigned>(s.status.code));
      }
      out_ += '}';
    }
    out_ += '}';
  }

  void Event(const SpanEvent& e) {
    out_ += '{';
    bool first = true;
    if (e.time_unix_nano != 0) {
      Key("timeUnixNano", first);
      QuotedInteger(e.time_unix_nano);
    }
    if (!e.name.empty()) {
      Key("name", first);
      String(e.name);
    }
    Attributes("attributes", e.attributes, !first);
    out_ += '}';
  }

  void Link(const SpanLink& l) {
    Raw("{\"traceId\":");
    Hex(l.context.trace_id);
    Raw(",\"spanId\":");
    Hex(l.context.span_id);
    if (!l.context.trace_state.empty()) {
      Raw(",\"traceState\":");
      // Links are rare enough that building the header text here costs nothing.
      String(l.context.trace_state.ToHeader());
    }
    Attributes("attributes", l.attributes, true);
    std::uint32_t flags = l.context.flags.bits | kFlagHasIsRemote;
    if (l.context.is_remote) {
      flags |= kFlagIsRemote;
    }
    Raw(",\"flags\":");
    Integer(flags);
    out_ += '}';
  }

  std::string& out_;
};

}  // namespace

void EncodeTracesJson(const Resource& resource, const InstrumentationScope& scope,
                      std::span<const SpanData* const> spans, std::string& out) {
  JsonWriter(out).Request(resource, scope, spans);
}

}  // namespace vigil::telemetry

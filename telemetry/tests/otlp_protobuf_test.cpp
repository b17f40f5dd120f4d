// EncodeTracesProtobuf, byte by byte: field keys, varints, fixed64/fixed32, nested
// lengths, omitted defaults, UTF-8 repair, and no allocation when a buffer is reused.

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/testing/count_allocations.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::telemetry {
namespace {

using test_support::AllocationsDuring;
using test_support::Bytes;

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!out.empty()) {
      out += ' ';
    }
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  }
  return out;
}

// A minimal protobuf reader for checking structure.
struct Field {
  std::uint64_t number = 0;
  int wire = 0;
  std::uint64_t varint = 0;
  std::string_view bytes;  // length-delimited payload, or the raw fixed-width bytes
};

bool ReadVarint(std::string_view& s, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !s.empty(); shift += 7) {
    const auto b = static_cast<std::uint8_t>(s.front());
    s.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

// Parses one message completely; fails the test when it is malformed.
std::vector<Field> Fields(std::string_view s) {
  std::vector<Field> out;
  while (!s.empty()) {
    std::uint64_t key = 0;
    EXPECT_TRUE(ReadVarint(s, key));
    Field f;
    f.number = key >> 3;
    f.wire = static_cast<int>(key & 7);
    switch (f.wire) {
      case 0:
        EXPECT_TRUE(ReadVarint(s, f.varint));
        break;
      case 1:
      case 5: {
        const std::size_t n = f.wire == 1 ? 8 : 4;
        EXPECT_GE(s.size(), n);
        if (s.size() < n) {
          return out;
        }
        f.bytes = s.substr(0, n);
        s.remove_prefix(n);
        break;
      }
      case 2: {
        std::uint64_t n = 0;
        EXPECT_TRUE(ReadVarint(s, n));
        EXPECT_LE(n, s.size()) << "length runs past the enclosing message";
        if (n > s.size()) {
          return out;
        }
        f.bytes = s.substr(0, static_cast<std::size_t>(n));
        s.remove_prefix(static_cast<std::size_t>(n));
        break;
      }
      default:
        ADD_FAILURE() << "unexpected wire type " << f.wire;
        return out;
    }
    out.push_back(f);
  }
  return out;
}

std::vector<std::string_view> Repeated(std::string_view message, std::uint64_t number) {
  std::vector<std::string_view> out;
  for (const Field& f : Fields(message)) {
    if (f.number == number) {
      out.push_back(f.bytes);
    }
  }
  return out;
}

// The Span payloads of an ExportTraceServiceRequest.
std::vector<std::string_view> SpanPayloads(std::string_view request) {
  std::vector<std::string_view> spans;
  for (auto rs : Repeated(request, 1)) {
    for (auto ss : Repeated(rs, 2)) {
      for (auto span : Repeated(ss, 2)) {
        spans.push_back(span);
      }
    }
  }
  return spans;
}

SpanData MinimalSpan() {
  SpanData s;
  s.trace_id = TraceId({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  s.span_id = SpanId({0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18});
  return s;
}

std::string Encode(const SpanData& span, const Resource& resource = {},
                   const InstrumentationScope& scope = {"v", ""}) {
  const SpanData* batch[] = {&span};
  std::string out;
  EncodeTracesProtobuf(resource, scope, batch, out);
  return out;
}

std::string OnlySpan(const std::string& request) {
  auto spans = SpanPayloads(request);
  EXPECT_EQ(spans.size(), 1u);
  return spans.empty() ? std::string() : std::string(spans[0]);
}

// The bytes of a span holding only ids, kind INTERNAL and flags = HAS_IS_REMOTE.
std::string MinimalSpanBytes() {
  return Bytes({0x0a, 0x10, 1,    2,    3,    4,    5,    6,    7,    8,
                9,    10,   11,   12,   13,   14,   15,   16,                // trace_id
                0x12, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // span_id
                0x30, 0x01,                                                  // kind
                0x85, 0x01, 0x00, 0x01, 0x00, 0x00});                        // flags (16)
}

TEST(OtlpProtobuf, MinimalRequestExactBytes) {
  const std::string got = Encode(MinimalSpan());
  std::string want = Bytes({0x0a, 0x2f,                   // resource_spans, 47 bytes
                            0x0a, 0x00,                   //   resource {}
                            0x12, 0x2b,                   //   scope_spans, 43 bytes
                            0x0a, 0x03, 0x0a, 0x01, 'v',  // scope { name: "v" }
                            0x12, 0x24});                 //     spans, 36 bytes
  want += MinimalSpanBytes();
  EXPECT_EQ(Hex(got), Hex(want));
}

TEST(OtlpProtobuf, EmptyBatchStillNamesResourceAndScope) {
  std::string out;
  EncodeTracesProtobuf(Resource{{{"a", "b"}}}, InstrumentationScope{"s", "1"}, {}, out);
  const std::string want =
      Bytes({0x0a, 0x16,                                                // resource_spans
             0x0a, 0x0a,                                                //   resource
             0x0a, 0x08,                                                //     attributes
             0x0a, 0x01, 'a', 0x12, 0x03, 0x0a, 0x01, 'b', 0x12, 0x08,  //   scope_spans
             0x0a, 0x06,                                                //     scope
             0x0a, 0x01, 's', 0x12, 0x01, '1'});
  EXPECT_EQ(Hex(out), Hex(want));
}

TEST(OtlpProtobuf, AppendsToExistingContent) {
  std::string out = "prefix";
  const SpanData span = MinimalSpan();
  const SpanData* batch[] = {&span};
  EncodeTracesProtobuf({}, {"v", ""}, batch, out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(out.substr(6), Encode(span));
}

std::string AttributeBytes(AttributeValue value) {
  SpanData span = MinimalSpan();
  span.attributes = {{"k", std::move(value)}};
  const std::string payload = OnlySpan(Encode(span));
  const auto attrs = Repeated(payload, 9);
  EXPECT_EQ(attrs.size(), 1u);
  return attrs.empty() ? std::string() : std::string(attrs[0]);
}

// KeyValue{key "k", value AnyValue{...}}
std::string KeyValue(const std::string& any) {
  return Bytes({0x0a, 0x01, 'k', 0x12, static_cast<int>(any.size())}) + any;
}

TEST(OtlpProtobuf, IntVarints) {
  EXPECT_EQ(Hex(AttributeBytes(0)), Hex(KeyValue(Bytes({0x18, 0x00}))));
  EXPECT_EQ(Hex(AttributeBytes(1)), Hex(KeyValue(Bytes({0x18, 0x01}))));
  EXPECT_EQ(Hex(AttributeBytes(127)), Hex(KeyValue(Bytes({0x18, 0x7f}))));
  EXPECT_EQ(Hex(AttributeBytes(128)), Hex(KeyValue(Bytes({0x18, 0x80, 0x01}))));
  EXPECT_EQ(Hex(AttributeBytes(300)), Hex(KeyValue(Bytes({0x18, 0xac, 0x02}))));
  // int64 negatives take ten bytes (two's complement, not zigzag).
  EXPECT_EQ(
      Hex(AttributeBytes(-1)),
      Hex(KeyValue(Bytes({0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}))));
  EXPECT_EQ(
      Hex(AttributeBytes(std::numeric_limits<std::int64_t>::min())),
      Hex(KeyValue(Bytes({0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}))));
  EXPECT_EQ(Hex(AttributeBytes(std::numeric_limits<std::int64_t>::max())),
            Hex(KeyValue(Bytes({0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}))));
}

TEST(OtlpProtobuf, ScalarValuesIncludingDefaultsInsideOneof) {
  EXPECT_EQ(Hex(AttributeBytes(true)), Hex(KeyValue(Bytes({0x10, 0x01}))));
  EXPECT_EQ(Hex(AttributeBytes(false)), Hex(KeyValue(Bytes({0x10, 0x00}))));
  EXPECT_EQ(Hex(AttributeBytes(1.5)), Hex(KeyValue(Bytes({0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f}))));
  EXPECT_EQ(Hex(AttributeBytes(-2.0)), Hex(KeyValue(Bytes({0x21, 0, 0, 0, 0, 0, 0, 0, 0xc0}))));
  EXPECT_EQ(Hex(AttributeBytes(0.0)), Hex(KeyValue(Bytes({0x21, 0, 0, 0, 0, 0, 0, 0, 0}))));
  EXPECT_EQ(Hex(AttributeBytes("")), Hex(KeyValue(Bytes({0x0a, 0x00}))));
  EXPECT_EQ(Hex(AttributeBytes("hi")), Hex(KeyValue(Bytes({0x0a, 0x02, 'h', 'i'}))));
}

TEST(OtlpProtobuf, ArraysNest) {
  // AnyValue{array_value: ArrayValue{values: [AnyValue{"a"}, AnyValue{1}]}}
  EXPECT_EQ(
      Hex(AttributeBytes(AttributeArray{"a", 1})),
      Hex(KeyValue(Bytes({0x2a, 0x09, 0x0a, 0x03, 0x0a, 0x01, 'a', 0x0a, 0x02, 0x18, 0x01}))));
  EXPECT_EQ(Hex(AttributeBytes(AttributeArray{})), Hex(KeyValue(Bytes({0x2a, 0x00}))));
  EXPECT_EQ(Hex(AttributeBytes(AttributeArray{AttributeValue{AttributeArray{true}}})),
            Hex(KeyValue(Bytes({0x2a, 0x08, 0x0a, 0x06, 0x2a, 0x04, 0x0a, 0x02, 0x10, 0x01}))));
}

TEST(OtlpProtobuf, EveryScalarSpanField) {
  SpanData span = MinimalSpan();
  span.trace_state = "a=b";
  span.parent_span_id = SpanId({0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28});
  span.parent_is_remote = true;
  span.flags.bits = 0x03;
  span.name = "n";
  span.kind = SpanKind::kConsumer;
  span.start_unix_nano = 0x0102030405060708ULL;
  span.end_unix_nano = 0xF1F2F3F4F5F6F7F8ULL;
  span.dropped_attributes_count = 300;
  span.dropped_events_count = 1;
  span.dropped_links_count = 2;
  span.status = {StatusCode::kError, "m"};
  const std::string want =
      Bytes({0x0a, 0x10, 1,    2,    3,    4,    5,    6,    7,    8,
             9,    10,   11,   12,   13,   14,   15,   16,                // trace_id
             0x12, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // span_id
             0x1a, 0x03, 'a',  '=',  'b',                                 // trace_state
             0x22, 0x08, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,  // parent
             0x2a, 0x01, 'n',                                             // name
             0x30, 0x05,                                                  // kind
             0x39, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,        // start, LE
             0x41, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1,        // end
             0x50, 0xac, 0x02,                                            // dropped attrs
             0x60, 0x01,                                                  // dropped events
             0x70, 0x02,                                                  // dropped links
             0x7a, 0x05, 0x12, 0x01, 'm',  0x18, 0x02,                    // status
             0x85, 0x01, 0x03, 0x03, 0x00, 0x00});  // flags: 0x03 | HAS_IS_REMOTE | IS_REMOTE
  EXPECT_EQ(Hex(OnlySpan(Encode(span))), Hex(want));
}

TEST(OtlpProtobuf, StatusOmittedOnlyWhenUnsetAndEmpty) {
  SpanData span = MinimalSpan();
  EXPECT_TRUE(Repeated(OnlySpan(Encode(span)), 15).empty());
  span.status = {StatusCode::kOk, ""};
  EXPECT_EQ(Hex(Repeated(OnlySpan(Encode(span)), 15).at(0)), Hex(Bytes({0x18, 0x01})));
  span.status = {StatusCode::kUnset, "why"};
  EXPECT_EQ(Hex(Repeated(OnlySpan(Encode(span)), 15).at(0)),
            Hex(Bytes({0x12, 0x03, 'w', 'h', 'y'})));
}

TEST(OtlpProtobuf, LocalParentSetsOnlyHasIsRemote) {
  SpanData span = MinimalSpan();
  span.parent_span_id = SpanId({1, 1, 1, 1, 1, 1, 1, 1});
  span.flags.bits = 0x01;
  const std::string payload = OnlySpan(Encode(span));
  auto fields = Fields(payload);
  ASSERT_EQ(fields.back().number, 16u);
  ASSERT_EQ(fields.back().wire, 5);
  EXPECT_EQ(Hex(fields.back().bytes), Hex(Bytes({0x01, 0x01, 0x00, 0x00})));
}

TEST(OtlpProtobuf, EventsAndLinks) {
  SpanData span = MinimalSpan();
  span.events = {{"e", 5, {{"k", 1}}}, {"", 0, {}}};
  SpanLink link;
  link.context.trace_id = span.trace_id;
  link.context.span_id = SpanId({9, 9, 9, 9, 9, 9, 9, 9});
  link.context.flags.bits = 1;
  link.context.is_remote = true;
  ASSERT_TRUE(link.context.trace_state.Set("x", "1"));
  ASSERT_TRUE(link.context.trace_state.Set("y", "2"));
  link.attributes = {{"k", true}};
  span.links = {link};
  const std::string payload = OnlySpan(Encode(span));

  const auto events = Repeated(payload, 11);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(Hex(events[0]),
            Hex(Bytes({0x09, 5,    0,    0,    0,   0,    0,    0,    0,  // time, fixed64
                       0x12, 0x01, 'e',                                   // name
                       0x1a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x18, 0x01})));
  EXPECT_EQ(events[1].size(), 0u) << "an all-default event is an empty message";

  const auto links = Repeated(payload, 13);
  ASSERT_EQ(links.size(), 1u);
  const std::string want =
      Bytes({0x0a, 0x10, 1,    2,    3,   4,    5,    6,    7,    8,
             9,    10,   11,   12,   13,  14,   15,   16,             // trace_id
             0x12, 0x08, 9,    9,    9,   9,    9,    9,    9,    9,  // span_id
             0x1a, 0x07, 'y',  '=',  '2', ',',  'x',  '=',  '1',      // most recent first
             0x22, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x10, 0x01,     // attributes
             0x35, 0x01, 0x03, 0x00, 0x00});                          // flags, fixed32
  EXPECT_EQ(Hex(links[0]), Hex(want));
}

TEST(OtlpProtobuf, LengthsOver127TakeTwoBytes) {
  SpanData span = MinimalSpan();
  span.name = std::string(200, 'x');
  const std::string request = Encode(span);
  const std::string payload = OnlySpan(request);
  const auto names = Repeated(payload, 5);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0], std::string(200, 'x'));
  // "name" key, then 200 as the varint c8 01.
  EXPECT_NE(payload.find(Bytes({0x2a, 0xc8, 0x01})), std::string::npos);
  EXPECT_EQ(payload.size(), MinimalSpanBytes().size() + 3 + 200);
}

TEST(OtlpProtobuf, InvalidUtf8IsRepairedValidKept) {
  SpanData span = MinimalSpan();
  span.name =
      "a\xff"
      "b";
  span.attributes = {{"ok", "\xF0\x9F\x98\x80 \xC3\xA9"},  // valid 4- and 2-byte
                     {"surrogate", "\xED\xA0\x80"},        // UTF-16 surrogate: invalid
                     {"overlong", "\xC0\xAF"},             // overlong '/': invalid
                     {"cut", "x\xE2\x9C"}};                // truncated: one subpart
  const std::string payload = OnlySpan(Encode(span));
  EXPECT_EQ(Repeated(payload, 5).at(0),
            "a\xEF\xBF\xBD"
            "b");
  const auto attrs = Repeated(payload, 9);
  ASSERT_EQ(attrs.size(), 4u);
  auto value = [&](std::size_t i) {
    return std::string(Repeated(Repeated(attrs[i], 2).at(0), 1).at(0));
  };
  EXPECT_EQ(value(0), "\xF0\x9F\x98\x80 \xC3\xA9");
  EXPECT_EQ(value(1), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(value(2), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // Each maximal ill-formed subpart is one U+FFFD (Unicode 3.9), as in log lines: the
  // truncated E2 9C is one, the surrogate's and the overlong's bytes are one each.
  EXPECT_EQ(value(3), "x\xEF\xBF\xBD");
}

SpanData TypicalSpan(std::uint64_t i) {
  SpanData s;
  s.trace_id = TraceId::Random();
  s.span_id = SpanId::Random();
  s.parent_span_id = i % 3 == 0 ? SpanId() : SpanId::Random();
  s.flags.bits = 1;
  s.name = "GET /items/{id}";
  s.kind = SpanKind::kServer;
  s.start_unix_nano = 1700000000000000000ULL + i;
  s.end_unix_nano = s.start_unix_nano + 1234567;
  s.attributes = {
      {"http.request.method", "GET"},      {"http.route", "/items/{id}"},
      {"http.response.status_code", 200},  {"url.path", "/items/" + std::to_string(i)},
      {"server.address", "catalog"},       {"server.port", 8082},
      {"network.protocol.version", "1.1"}, {"user_agent.original", std::string(i % 200, 'u')}};
  s.events = {{"checkpoint", s.start_unix_nano + 10, {{"n", static_cast<std::int64_t>(i)}}}};
  return s;
}

TEST(OtlpProtobuf, LargeBatchParsesWithConsistentLengths) {
  std::vector<SpanData> spans;
  for (std::uint64_t i = 0; i < 700; ++i) {
    spans.push_back(TypicalSpan(i));
  }
  std::vector<const SpanData*> batch;
  batch.reserve(spans.size());
  for (const auto& s : spans) {
    batch.push_back(&s);
  }
  std::string out;
  EncodeTracesProtobuf(Resource{{{"service.name", "x"}}}, {}, batch, out);
  const auto payloads = SpanPayloads(out);
  ASSERT_EQ(payloads.size(), spans.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const auto ids = Repeated(payloads[i], 2);
    ASSERT_EQ(ids.size(), 1u);
    ASSERT_EQ(std::memcmp(ids[0].data(), spans[i].span_id.bytes().data(), 8), 0) << i;
    EXPECT_EQ(Repeated(payloads[i], 9).size(), 8u);
    EXPECT_EQ(Repeated(payloads[i], 11).size(), 1u);
    EXPECT_EQ(Repeated(payloads[i], 4).size(), i % 3 == 0 ? 0u : 1u);
  }
}

TEST(OtlpProtobuf, AllocationCounterSeesAllocations) {
  std::vector<int>* v = nullptr;
  EXPECT_GE(AllocationsDuring([&] { v = new std::vector<int>(100); }), 2);
  delete v;
}

TEST(OtlpProtobuf, ReusedBufferDoesNotAllocate) {
  std::vector<SpanData> spans;
  for (std::uint64_t i = 0; i < 64; ++i) {
    spans.push_back(TypicalSpan(i));
  }
  std::vector<const SpanData*> batch;
  batch.reserve(spans.size());
  for (const auto& s : spans) {
    batch.push_back(&s);
  }
  const Resource resource{{{"service.name", "x"}}};
  const InstrumentationScope scope;
  std::string out;
  EncodeTracesProtobuf(resource, scope, batch, out);  // grows the buffers once
  const std::string first = out;

  EXPECT_EQ(AllocationsDuring([&] {
              for (int round = 0; round < 3; ++round) {
                out.clear();
                EncodeTracesProtobuf(resource, scope, batch, out);
              }
            }),
            0);
  EXPECT_EQ(out, first);
}

}  // namespace
}  // namespace vigil::telemetry

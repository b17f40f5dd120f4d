// EncodeTracesJson against the OTLP/JSON mapping: exact text for small requests, string
// escaping and UTF-8 repair, number forms, omitted defaults.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vigil/telemetry/otlp.hpp>

namespace vigil::telemetry {
namespace {

SpanData MinimalSpan() {
  SpanData s;
  s.trace_id = *TraceId::FromHex("0102030405060708090a0b0c0d0e0f10");
  s.span_id = *SpanId::FromHex("a1a2a3a4a5a6a7a8");
  return s;
}

std::string Encode(const SpanData& span, const Resource& resource = {},
                   const InstrumentationScope& scope = {"v", ""}) {
  const SpanData* batch[] = {&span};
  std::string out;
  EncodeTracesJson(resource, scope, batch, out);
  return out;
}

// The text of the one span in a request.
std::string SpanJson(const SpanData& span) {
  const std::string all = Encode(span);
  const std::string head =
      "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{\"name\":\"v\"},\"spans\":"
      "[";
  const std::string tail = "]}]}]}";
  EXPECT_EQ(all.substr(0, head.size()), head);
  EXPECT_EQ(all.substr(all.size() - tail.size()), tail);
  return all.substr(head.size(), all.size() - head.size() - tail.size());
}

std::string AttributeJson(AttributeValue value) {
  SpanData span = MinimalSpan();
  span.attributes = {{"k", std::move(value)}};
  const std::string s = SpanJson(span);
  const std::string open = "\"attributes\":[{\"key\":\"k\",\"value\":";
  const auto at = s.find(open);
  EXPECT_NE(at, std::string::npos) << s;
  if (at == std::string::npos) {
    return {};
  }
  const std::string rest = s.substr(at + open.size());
  return rest.substr(0, rest.size() - 3);  // drop "}]}"
}

TEST(OtlpJson, MinimalRequestExactText) {
  EXPECT_EQ(Encode(MinimalSpan()),
            "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{\"name\":\"v\"},"
            "\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
            "\"spanId\":\"a1a2a3a4a5a6a7a8\",\"flags\":256,\"kind\":1}]}]}]}");
}

TEST(OtlpJson, ResourceScopeAndEmptyBatch) {
  std::string out;
  EncodeTracesJson(Resource{{{"service.name", "auth"}, {"n", 3}}}, InstrumentationScope{"s", "1.0"},
                   {}, out);
  EXPECT_EQ(out,
            "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
            "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"auth\"}},"
            "{\"key\":\"n\",\"value\":{\"intValue\":\"3\"}}]},"
            "\"scopeSpans\":[{\"scope\":{\"name\":\"s\",\"version\":\"1.0\"}}]}]}");
}

TEST(OtlpJson, AppendsToExistingContent) {
  const SpanData span = MinimalSpan();
  const SpanData* batch[] = {&span};
  std::string out = "x";
  EncodeTracesJson({}, {"v", ""}, batch, out);
  EXPECT_EQ(out, "x" + Encode(span));
}

TEST(OtlpJson, EverySpanField) {
  SpanData span = MinimalSpan();
  span.trace_state = "a=b";
  span.parent_span_id = *SpanId::FromHex("b1b2b3b4b5b6b7b8");
  span.parent_is_remote = true;
  span.flags.bits = 0x01;
  span.name = "GET /x";
  span.kind = SpanKind::kServer;
  span.start_unix_nano = 18446744073709551615ULL;  // above 2^53: must stay exact
  span.end_unix_nano = 2;
  span.attributes = {{"a", 1}};
  span.dropped_attributes_count = 4;
  span.events = {{"ev", 7, {{"b", true}}}, {"", 0, {}}};
  span.dropped_events_count = 5;
  SpanLink link;
  link.context.trace_id = span.trace_id;
  link.context.span_id = *SpanId::FromHex("c1c2c3c4c5c6c7c8");
  ASSERT_TRUE(link.context.trace_state.Set("k", "v"));
  span.links = {link};
  span.dropped_links_count = 6;
  span.status = {StatusCode::kError, "bad"};
  EXPECT_EQ(
      SpanJson(span),
      "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"a1a2a3a4a5a6a7a8\","
      "\"traceState\":\"a=b\",\"parentSpanId\":\"b1b2b3b4b5b6b7b8\",\"flags\":769,"
      "\"name\":\"GET /x\",\"kind\":2,\"startTimeUnixNano\":\"18446744073709551615\","
      "\"endTimeUnixNano\":\"2\",\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}}],"
      "\"droppedAttributesCount\":4,"
      "\"events\":[{\"timeUnixNano\":\"7\",\"name\":\"ev\",\"attributes\":[{\"key\":\"b\","
      "\"value\":{\"boolValue\":true}}]},{}],\"droppedEventsCount\":5,"
      "\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
      "\"spanId\":\"c1c2c3c4c5c6c7c8\",\"traceState\":\"k=v\",\"flags\":256}],"
      "\"droppedLinksCount\":6,\"status\":{\"message\":\"bad\",\"code\":2}}");
}

TEST(OtlpJson, StatusOkWithoutMessage) {
  SpanData span = MinimalSpan();
  span.status = {StatusCode::kOk, ""};
  EXPECT_NE(SpanJson(span).find(",\"status\":{\"code\":1}}"), std::string::npos);
}

TEST(OtlpJson, ScalarValues) {
  EXPECT_EQ(AttributeJson(true), "{\"boolValue\":true}");
  EXPECT_EQ(AttributeJson(false), "{\"boolValue\":false}");
  EXPECT_EQ(AttributeJson(0), "{\"intValue\":\"0\"}");
  EXPECT_EQ(AttributeJson(std::numeric_limits<std::int64_t>::min()),
            "{\"intValue\":\"-9223372036854775808\"}");
  EXPECT_EQ(AttributeJson(""), "{\"stringValue\":\"\"}");
  EXPECT_EQ(AttributeJson(0.25), "{\"doubleValue\":0.25}");
  EXPECT_EQ(AttributeJson(2.0), "{\"doubleValue\":2}");
  EXPECT_EQ(AttributeJson(-1.5e300), "{\"doubleValue\":-1.5e+300}");
  EXPECT_EQ(AttributeJson(0.1), "{\"doubleValue\":0.1}") << "shortest round-trip form";
}

TEST(OtlpJson, NonFiniteDoublesAreStrings) {
  EXPECT_EQ(AttributeJson(std::numeric_limits<double>::quiet_NaN()), "{\"doubleValue\":\"NaN\"}");
  EXPECT_EQ(AttributeJson(std::numeric_limits<double>::infinity()),
            "{\"doubleValue\":\"Infinity\"}");
  EXPECT_EQ(AttributeJson(-std::numeric_limits<double>::infinity()),
            "{\"doubleValue\":\"-Infinity\"}");
}

TEST(OtlpJson, Arrays) {
  EXPECT_EQ(AttributeJson(AttributeArray{"a", 1, 1.5, false}),
            "{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},{\"intValue\":\"1\"},"
            "{\"doubleValue\":1.5},{\"boolValue\":false}]}}");
  EXPECT_EQ(AttributeJson(AttributeArray{}), "{\"arrayValue\":{}}");
  EXPECT_EQ(AttributeJson(AttributeArray{AttributeValue{AttributeArray{}}}),
            "{\"arrayValue\":{\"values\":[{\"arrayValue\":{}}]}}");
}

TEST(OtlpJson, StringEscapes) {
  EXPECT_EQ(AttributeJson("q\"b\\s/"), "{\"stringValue\":\"q\\\"b\\\\s/\"}");
  EXPECT_EQ(AttributeJson("\n\r\t\b\f"), "{\"stringValue\":\"\\n\\r\\t\\b\\f\"}");
  EXPECT_EQ(AttributeJson(std::string("\x01\x1f\x7f", 3)),
            "{\"stringValue\":\"\\u0001\\u001f\x7f\"}");
  EXPECT_EQ(AttributeJson(std::string("a\0b", 3)), "{\"stringValue\":\"a\\u0000b\"}");
}

TEST(OtlpJson, Utf8KeptAndRepaired) {
  EXPECT_EQ(AttributeJson("\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80"),
            "{\"stringValue\":\"\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80\"}");
  EXPECT_EQ(AttributeJson("a\xff"
                          "b"),
            "{\"stringValue\":\"a\xEF\xBF\xBD"
            "b\"}");
  EXPECT_EQ(AttributeJson("\xED\xA0\x80"),  // a UTF-16 surrogate is not UTF-8
            "{\"stringValue\":\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"}");
  EXPECT_EQ(AttributeJson("\xF4\x90\x80\x80"),  // above U+10FFFF
            "{\"stringValue\":\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"}");
  // A truncated sequence is one maximal ill-formed subpart: one U+FFFD.
  EXPECT_EQ(AttributeJson("end\xE2\x9C"), "{\"stringValue\":\"end\xEF\xBF\xBD\"}");
  EXPECT_EQ(AttributeJson("\xF0\x9F\x98 \xF0\x9F"),
            "{\"stringValue\":\"\xEF\xBF\xBD \xEF\xBF\xBD\"}");
}

TEST(OtlpJson, KeysAreEscapedToo) {
  SpanData span = MinimalSpan();
  span.attributes = {{"we\"ird", 1}};
  EXPECT_NE(SpanJson(span).find("{\"key\":\"we\\\"ird\","), std::string::npos);
}

TEST(OtlpJson, NoNewlineEvenWithManySpans) {
  std::vector<SpanData> spans(50, MinimalSpan());
  for (auto& s : spans) {
    s.name = "line\nbreak";
  }
  std::vector<const SpanData*> batch;
  batch.reserve(spans.size());
  for (const auto& s : spans) {
    batch.push_back(&s);
  }
  std::string out;
  EncodeTracesJson({}, {}, batch, out);
  EXPECT_EQ(out.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vigil::telemetry

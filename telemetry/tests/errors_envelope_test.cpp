// Envelope serialisation: the framing (header line, item headers whose length is patched
// in after the payload), the event payload Sentry reads, client reports and session
// aggregates; and a fixed buffer that never allocates and says when it ran out of room.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vigil/testing/count_allocations.hpp>
#include <vigil/testing/envelope.hpp>

#include "errors/envelope.hpp"

namespace vigil::telemetry::internal {
namespace {

namespace json = boost::json;

EnvelopeHeader Header() {
  EnvelopeHeader h;
  h.event_id = "0123456789abcdef0123456789abcdef";
  h.dsn = "https://key@example.com/1";
  h.sent_at_unix_nano = 1'700'000'000'123'456'000;
  h.sdk_version = "1.2.3";
  h.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  h.public_key = "key";
  h.release = "svc@1.2.3";
  h.environment = "prod";
  return h;
}

ErrorEvent SampleEvent() {
  ErrorEvent e;
  e.event_id = "0123456789abcdef0123456789abcdef";
  e.time_unix_nano = 1'700'000'000'000'000'000;
  e.logger = "vigil.http";
  e.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  e.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  e.parent_span_id = *SpanId::FromHex("b7ad6b7169203331");
  ExceptionInfo& ex = e.exception.emplace();
  ex.type = "std::out_of_range";
  ex.value = "index 7 \"out\" of range\n";
  ex.mechanism = "vigil.http";
  ex.handled = false;
  ex.frames_at_throw = true;
  // Innermost first, as captured.
  ex.frames = {{0x1234, "Thrower()", "a.cpp", 12, "/bin/x", true},
               {0x5678, "Caller()", "", 0, "/bin/x", false}};
  e.tags = {{"http.route", "/items/{id}"}, {"service", "catalog"}};
  e.request.emplace();
  e.request->method = "GET";
  e.request->url = "http://h/items/7";
  e.request->query_string = "a=1";
  e.request->headers = {{"User-Agent", "test"}};
  e.user_id = "u-1";
  e.breadcrumbs.push_back(
      {1'699'999'999'000'000'000, ErrorLevel::kInfo, "log", "started", {{"k", "v"}}});
  e.contexts = {{"order", {{"id", "o-1"}}}};
  e.extra = {{"count", "3"}};
  e.fingerprint = {"std::out_of_range", "Thrower()"};
  e.images = {{"/bin/x", "b1b2", "00000000-0000-0000-0000-000000000000", 0x400000, 4096}};
  return e;
}

std::string Write(const ErrorEvent& event) {
  std::string out;
  JsonBuffer buffer(out);
  EnvelopeWriter envelope(buffer, Header());
  WriteEvent(envelope.BeginItem("event"), event, {"svc@1.2.3", "prod", "host-1", "1.2.3"});
  envelope.EndItem();
  return out;
}

TEST(EnvelopeTest, FramesItemsWithTheirExactLength) {
  const std::string out = Write(SampleEvent());
  const auto envelope = test_support::SplitEnvelope(out);
  ASSERT_TRUE(envelope) << out;
  ASSERT_EQ(envelope->items.size(), 1u);
  EXPECT_EQ(envelope->items[0].type, "event");
  EXPECT_EQ(out.back(), '\n');
  // Every part is a JSON document of its own.
  const json::value header = json::parse(envelope->header);
  EXPECT_EQ(header.at("event_id"), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(header.at("dsn"), "https://key@example.com/1");
  EXPECT_EQ(header.at("sent_at"), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(header.at("sdk").at("name"), "vigil.telemetry");
  EXPECT_EQ(header.at("trace").at("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(header.at("trace").at("public_key"), "key");
  const json::value item = json::parse(envelope->items[0].header);
  EXPECT_EQ(item.at("length").as_int64(),
            static_cast<std::int64_t>(envelope->items[0].payload.size()));
  EXPECT_NO_THROW(json::parse(envelope->items[0].payload));
}

TEST(EnvelopeTest, TheEventCarriesWhatSentryReads) {
  const auto envelope = test_support::SplitEnvelope(Write(SampleEvent()));
  ASSERT_TRUE(envelope);
  const json::value e = json::parse(envelope->items[0].payload);
  EXPECT_EQ(e.at("event_id"), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(e.at("timestamp"), "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(e.at("platform"), "native");
  EXPECT_EQ(e.at("level"), "error");
  EXPECT_EQ(e.at("release"), "svc@1.2.3");
  EXPECT_EQ(e.at("environment"), "prod");
  EXPECT_EQ(e.at("server_name"), "host-1");
  const json::value& ex = e.at("exception").at("values").at(0);
  EXPECT_EQ(ex.at("type"), "std::out_of_range");
  EXPECT_EQ(ex.at("value"), "index 7 \"out\" of range\n");
  EXPECT_EQ(ex.at("mechanism").at("type"), "vigil.http");
  EXPECT_EQ(ex.at("mechanism").at("handled"), false);
  const json::array& frames = ex.at("stacktrace").at("frames").as_array();
  ASSERT_EQ(frames.size(), 2u);
  // Outermost first.
  EXPECT_EQ(frames[0].at("function"), "Caller()");
  EXPECT_EQ(frames[0].at("instruction_addr"), "0x5678");
  EXPECT_FALSE(frames[0].as_object().contains("filename"));
  EXPECT_EQ(frames[1].at("function"), "Thrower()");
  EXPECT_EQ(frames[1].at("filename"), "a.cpp");
  EXPECT_EQ(frames[1].at("lineno").as_int64(), 12);
  EXPECT_EQ(frames[1].at("in_app"), true);
  EXPECT_EQ(frames[1].at("package"), "/bin/x");
  const json::value& trace = e.at("contexts").at("trace");
  EXPECT_EQ(trace.at("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(trace.at("span_id"), "00f067aa0ba902b7");
  EXPECT_EQ(trace.at("parent_span_id"), "b7ad6b7169203331");
  EXPECT_EQ(e.at("contexts").at("order").at("id"), "o-1");
  EXPECT_EQ(e.at("tags").at("http.route"), "/items/{id}");
  EXPECT_EQ(e.at("request").at("method"), "GET");
  EXPECT_EQ(e.at("request").at("url"), "http://h/items/7");
  EXPECT_EQ(e.at("request").at("query_string"), "a=1");
  EXPECT_EQ(e.at("request").at("headers").at("User-Agent"), "test");
  EXPECT_EQ(e.at("user").at("id"), "u-1");
  const json::value& crumb = e.at("breadcrumbs").at("values").at(0);
  EXPECT_EQ(crumb.at("message"), "started");
  EXPECT_EQ(crumb.at("category"), "log");
  EXPECT_EQ(crumb.at("data").at("k"), "v");
  EXPECT_EQ(e.at("extra").at("count"), "3");
  EXPECT_EQ(e.at("fingerprint").at(1), "Thrower()");
  const json::value& image = e.at("debug_meta").at("images").at(0);
  EXPECT_EQ(image.at("type"), "elf");
  EXPECT_EQ(image.at("code_id"), "b1b2");
  EXPECT_EQ(image.at("image_addr"), "0x400000");
  EXPECT_EQ(image.at("image_size").as_int64(), 4096);
}

TEST(EnvelopeTest, ClientReportsAndSessionsShareAnEnvelope) {
  std::string out;
  JsonBuffer buffer(out);
  EnvelopeHeader header = Header();
  header.event_id = {};
  header.trace_id = TraceId();
  EnvelopeWriter envelope(buffer, header);
  const SessionAggregates::Minute minutes[] = {{1'700'000'040, 10, 2, 1}, {1'700'000'100, 5, 0, 0}};
  WriteSessions(envelope.BeginItem("sessions"), minutes, "svc@1", "prod");
  envelope.EndItem();
  const Outcomes::Pending discarded[] = {{DiscardReason::kRateLimitBackoff, Category::kError, 4},
                                         {DiscardReason::kQueueOverflow, Category::kSession, 1}};
  WriteClientReport(envelope.BeginItem("client_report"), 1'700'000'000'000'000'000, discarded);
  envelope.EndItem();

  const auto split = test_support::SplitEnvelope(out);
  ASSERT_TRUE(split) << out;
  const json::value h = json::parse(split->header);
  EXPECT_FALSE(h.as_object().contains("event_id"));
  EXPECT_FALSE(h.as_object().contains("trace"));
  ASSERT_EQ(split->items.size(), 2u);
  const json::value sessions = json::parse(split->items[0].payload);
  EXPECT_EQ(sessions.at("attrs").at("release"), "svc@1");
  EXPECT_EQ(sessions.at("attrs").at("environment"), "prod");
  const json::array& aggregates = sessions.at("aggregates").as_array();
  ASSERT_EQ(aggregates.size(), 2u);
  EXPECT_EQ(aggregates[0].at("started"), "2023-11-14T22:14:00.000000Z");
  EXPECT_EQ(aggregates[0].at("exited").as_int64(), 10);
  EXPECT_EQ(aggregates[0].at("errored").as_int64(), 2);
  EXPECT_EQ(aggregates[0].at("crashed").as_int64(), 1);
  EXPECT_FALSE(aggregates[1].as_object().contains("errored")) << "zero counts are left out";
  const json::value report = json::parse(split->items[1].payload);
  EXPECT_EQ(report.at("timestamp"), "2023-11-14T22:13:20.000000Z");
  const json::array& lost = report.at("discarded_events").as_array();
  ASSERT_EQ(lost.size(), 2u);
  EXPECT_EQ(lost[0].at("reason"), "ratelimit_backoff");
  EXPECT_EQ(lost[0].at("category"), "error");
  EXPECT_EQ(lost[0].at("quantity").as_int64(), 4);
  EXPECT_EQ(lost[1].at("reason"), "queue_overflow");
  EXPECT_EQ(lost[1].at("category"), "session");
}

TEST(EnvelopeTest, AFixedBufferNeverAllocatesAndSaysWhenItIsTooSmall) {
  const ErrorEvent event = SampleEvent();
  static char memory[16384];
  std::size_t written = 0;
  const EnvelopeHeader header = Header();
  bool overflowed = true;
  const long allocations = test_support::AllocationsDuring([&] {
    JsonBuffer buffer(memory, sizeof memory);
    EnvelopeWriter envelope(buffer, header);
    WriteEvent(envelope.BeginItem("event"), event, {"svc@1.2.3", "prod", "host-1", "1.2.3"});
    envelope.EndItem();
    overflowed = buffer.overflowed();
    written = buffer.size();
  });
  EXPECT_FALSE(overflowed);
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(std::string(memory, written), Write(event)) << "the same bytes as a growing buffer";

  char small[100];
  JsonBuffer buffer(small, sizeof small);
  EnvelopeWriter envelope(buffer, Header());
  WriteEvent(envelope.BeginItem("event"), event, {"svc@1.2.3", "prod", "host-1", "1.2.3"});
  envelope.EndItem();
  EXPECT_TRUE(buffer.overflowed());
  EXPECT_EQ(buffer.size(), sizeof small);
}

TEST(EnvelopeTest, StringsAreEscapedAndRepaired) {
  ErrorEvent event = SampleEvent();
  event.exception->value = std::string("bad \xFF byte, tab\t, nul ") + '\0' + "end";
  const auto split = test_support::SplitEnvelope(Write(event));
  ASSERT_TRUE(split);
  const json::value e = json::parse(split->items[0].payload);
  EXPECT_EQ(e.at("exception").at("values").at(0).at("value").as_string(),
            std::string("bad \xEF\xBF\xBD byte, tab\t, nul ") + '\0' + "end");
}

}  // namespace
}  // namespace vigil::telemetry::internal

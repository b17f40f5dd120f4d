// Spans: parenting and propagation, what a recording span keeps (attributes, events,
// links, status, kind, times), end-once semantics, moves, limits, and WithSpan.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <vigil/telemetry/trace.hpp>
#include <vigil/telemetry/trace_processor.hpp>
#include <vigil/testing/scoped_env.hpp>

#include "trace/span_clock.hpp"

namespace vigil::telemetry {
namespace {

using test_support::ScopedEnv;
using namespace std::chrono_literals;

class CaptureExporter : public SpanExporter {
 public:
  explicit CaptureExporter(std::vector<SpanData>* out, std::mutex* mu) : out_(out), mu_(mu) {}
  ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override {
    std::lock_guard lock(*mu_);
    for (const SpanData* s : batch) {
      out_->push_back(*s);
    }
    return {batch.size(), 0, {}};
  }
  void Shutdown(std::chrono::steady_clock::time_point) noexcept override {}

 private:
  std::vector<SpanData>* out_;
  std::mutex* mu_;
};

class SpanTest : public ::testing::Test {
 protected:
  explicit SpanTest(Sampler sampler = Sampler(), SpanLimits limits = {})
      : processor_(std::make_unique<CaptureExporter>(&spans_, &mu_), Options()),
        tracer_(sampler, &processor_, limits) {}

  static BatchOptions Options() {
    BatchOptions o;
    o.schedule_delay = 1h;  // only ForceFlush exports
    return o;
  }

  // Everything ended so far, in end order.
  std::vector<SpanData> Flush() {
    EXPECT_TRUE(processor_.ForceFlush(std::chrono::steady_clock::now() + 10s));
    std::lock_guard lock(mu_);
    return std::exchange(spans_, {});
  }

  SpanData FlushOne() {
    auto spans = Flush();
    EXPECT_EQ(spans.size(), 1u);
    return spans.empty() ? SpanData{} : spans.front();
  }

  Tracer Make(Sampler sampler, SpanLimits limits = {}) {
    return Tracer(sampler, &processor_, limits);
  }

  std::mutex mu_;
  std::vector<SpanData> spans_;
  BatchSpanProcessor processor_;
  Tracer tracer_;
};

SpanContext RemoteParent(bool sampled, std::string_view tracestate = {}) {
  const std::string header = std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-") +
                             (sampled ? "01" : "00");
  auto parsed = ExtractTraceContext(header, tracestate);
  EXPECT_TRUE(parsed.value.has_value());
  return *parsed.value;
}

const AttributeValue* Find(const std::vector<Attribute>& attrs, std::string_view key) {
  for (const auto& a : attrs) {
    if (a.key == key) {
      return &a.value;
    }
  }
  return nullptr;
}

std::uint64_t NowNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

TEST_F(SpanTest, RootSpanStartsANewRandomTrace) {
  const std::uint64_t before = NowNanos();
  Span a = tracer_.StartRootSpan("root", SpanKind::kServer);
  Span b = tracer_.StartRootSpan("other");
  ASSERT_TRUE(a.IsRecording());
  EXPECT_TRUE(a.context().IsValid());
  EXPECT_NE(a.context().trace_id, b.context().trace_id);
  EXPECT_TRUE(a.context().sampled());
  EXPECT_EQ(a.context().flags.bits & TraceFlags::kRandom, TraceFlags::kRandom);
  EXPECT_FALSE(a.context().is_remote);
  const SpanContext ctx = a.context();
  a.End();
  b.End();
  const std::uint64_t after = NowNanos();
  auto spans = Flush();
  ASSERT_EQ(spans.size(), 2u);
  const SpanData& s = spans[0];
  EXPECT_EQ(s.name, "root");
  EXPECT_EQ(s.trace_id, ctx.trace_id);
  EXPECT_EQ(s.span_id, ctx.span_id);
  EXPECT_EQ(s.flags, ctx.flags);
  EXPECT_FALSE(s.parent_span_id.IsValid());
  EXPECT_FALSE(s.parent_is_remote);
  EXPECT_EQ(s.kind, SpanKind::kServer);
  // The timestamps are CLOCK_REALTIME (give or take the conversion's microsecond).
  EXPECT_GE(s.start_unix_nano + 1'000'000, before);
  EXPECT_LE(s.start_unix_nano, s.end_unix_nano);
  EXPECT_LE(s.end_unix_nano, after + 1'000'000);
}

TEST_F(SpanTest, ChildOfLocalParent) {
  Span parent = tracer_.StartRootSpan("parent");
  Span child = tracer_.StartSpan("child", parent.context());
  EXPECT_EQ(child.context().trace_id, parent.context().trace_id);
  EXPECT_NE(child.context().span_id, parent.context().span_id);
  EXPECT_EQ(child.context().flags, parent.context().flags);
  child.End();
  const SpanData s = FlushOne();
  EXPECT_EQ(s.parent_span_id, parent.context().span_id);
  EXPECT_FALSE(s.parent_is_remote);
  EXPECT_EQ(s.trace_id, parent.context().trace_id);
}

TEST_F(SpanTest, ChildOfRemoteParentKeepsTraceStateAndRemoteness) {
  const SpanContext parent = RemoteParent(true, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(parent.is_remote);
  Span child = tracer_.StartSpan("GET /items/{id}", parent, SpanKind::kServer);
  ASSERT_TRUE(child.IsRecording());
  EXPECT_FALSE(child.context().is_remote);  // our own span is local
  EXPECT_EQ(child.context().trace_id, parent.trace_id);
  EXPECT_EQ(child.context().trace_state, parent.trace_state);
  EXPECT_TRUE(child.context().sampled());
  child.End();
  const SpanData s = FlushOne();
  EXPECT_TRUE(s.parent_is_remote);
  EXPECT_EQ(s.parent_span_id, parent.span_id);
  EXPECT_EQ(s.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

TEST_F(SpanTest, UnsampledParentGivesNonRecordingSpanThatStillPropagates) {
  const SpanContext parent = RemoteParent(false, "rojo=00f067aa0ba902b7");
  Span child = tracer_.StartSpan("work", parent);
  EXPECT_FALSE(child.IsRecording());
  EXPECT_TRUE(child.context().IsValid());
  EXPECT_EQ(child.context().trace_id, parent.trace_id);
  EXPECT_NE(child.context().span_id, parent.span_id);
  EXPECT_FALSE(child.context().sampled());
  EXPECT_EQ(child.context().trace_state, parent.trace_state);
  // Its own children follow it (local parent, not sampled).
  Span grandchild = tracer_.StartSpan("deeper", child.context());
  EXPECT_FALSE(grandchild.IsRecording());
  EXPECT_EQ(grandchild.context().trace_id, parent.trace_id);
  EXPECT_FALSE(grandchild.context().sampled());
  child.SetAttribute("ignored", 1);
  child.AddEvent("ignored");
  child.SetStatus(StatusCode::kError, "ignored");
  child.End();
  grandchild.End();
  EXPECT_TRUE(Flush().empty());
}

TEST_F(SpanTest, SampledFlagClearedButOtherFlagsKept) {
  SpanContext parent = RemoteParent(true);
  parent.flags.bits = 0x83;  // sampled, random and an unknown future bit
  Tracer off = Make(Sampler::AlwaysOff());
  Span s = off.StartSpan("x", parent);
  EXPECT_EQ(s.context().flags.bits, 0x82);
  Tracer on = Make(Sampler::AlwaysOn());
  parent.flags.bits = 0x80;
  Span t = on.StartSpan("y", parent);
  EXPECT_EQ(t.context().flags.bits, 0x81);
}

TEST_F(SpanTest, TracerWithoutProcessorPropagatesOnly) {
  const Tracer tracer;
  Span root = tracer.StartRootSpan("root");
  EXPECT_FALSE(root.IsRecording());
  EXPECT_TRUE(root.context().IsValid());
  EXPECT_TRUE(root.context().sampled());  // the decision still travels downstream
  Span child = tracer.StartSpan("child", RemoteParent(false));
  EXPECT_FALSE(child.context().sampled());
}

TEST_F(SpanTest, RatioSampledRootCarriesThresholdInTraceState) {
  Tracer tracer = Make(Sampler::TraceIdRatio(1.0));
  Span s = tracer.StartRootSpan("root");
  EXPECT_EQ(s.context().trace_state.Get("ot"), "th:0");
  s.End();
  EXPECT_EQ(FlushOne().trace_state, "ot=th:0");
}

TEST_F(SpanTest, AttributesOfEveryType) {
  Span s = tracer_.StartRootSpan("attrs");
  const std::string owned = "owned string";
  s.SetAttribute("bool", true);
  s.SetAttribute("int", 42);
  s.SetAttribute("int64", std::int64_t{-7});
  s.SetAttribute("uint32", std::uint32_t{4'000'000'000u});
  s.SetAttribute("short", static_cast<short>(-3));
  s.SetAttribute("double", 2.5);
  s.SetAttribute("float", 0.5f);
  s.SetAttribute("literal", "text");
  s.SetAttribute("view", std::string_view("view"));
  s.SetAttribute("string", owned);
  s.SetAttribute(KeyValue("kv", false));
  s.SetAttribute("array", AttributeArray{AttributeValue(1), AttributeValue("two")});
  s.End();
  const SpanData d = FlushOne();
  ASSERT_EQ(d.attributes.size(), 12u);
  EXPECT_EQ(d.attributes[0].key, "bool");  // call order is kept
  EXPECT_EQ(*Find(d.attributes, "bool"), AttributeValue(true));
  EXPECT_EQ(*Find(d.attributes, "int"), AttributeValue(std::int64_t{42}));
  EXPECT_EQ(*Find(d.attributes, "int64"), AttributeValue(std::int64_t{-7}));
  EXPECT_EQ(*Find(d.attributes, "uint32"), AttributeValue(std::int64_t{4'000'000'000}));
  EXPECT_EQ(*Find(d.attributes, "short"), AttributeValue(std::int64_t{-3}));
  EXPECT_EQ(*Find(d.attributes, "double"), AttributeValue(2.5));
  EXPECT_EQ(*Find(d.attributes, "float"), AttributeValue(0.5));
  EXPECT_EQ(*Find(d.attributes, "literal"), AttributeValue(std::string("text")));
  EXPECT_EQ(*Find(d.attributes, "view"), AttributeValue(std::string("view")));
  EXPECT_EQ(*Find(d.attributes, "string"), AttributeValue(owned));
  EXPECT_EQ(*Find(d.attributes, "kv"), AttributeValue(false));
  EXPECT_EQ(*Find(d.attributes, "array"),
            AttributeValue(AttributeArray{AttributeValue(1), AttributeValue("two")}));
  EXPECT_EQ(d.dropped_attributes_count, 0u);
}

TEST_F(SpanTest, SettingAKeyAgainReplacesItsValue) {
  Span s = tracer_.StartRootSpan("attrs");
  s.SetAttribute("k", 1);
  s.SetAttribute("other", 2);
  s.SetAttribute("k", "now a string");
  s.End();
  const SpanData d = FlushOne();
  ASSERT_EQ(d.attributes.size(), 2u);
  EXPECT_EQ(d.attributes[0].key, "k");
  EXPECT_EQ(d.attributes[0].value, AttributeValue("now a string"));
}

// Keys of equal length that differ in a single byte, at every position and for lengths
// around the 8, 16 and 32-byte steps of the comparison, are different keys; the same
// key again replaces its value. Values that differ in one byte are stored as such when
// a recycled record held the other one before.
TEST_F(SpanTest, KeysDifferingInOneByteAreDistinct) {
  for (const std::size_t length : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 24u, 31u, 32u, 33u, 40u}) {
    for (std::size_t at = 0; at < length; ++at) {
      const std::string key(length, 'k');
      std::string other = key;
      other[at] = 'x';
      Span s = tracer_.StartRootSpan("keys");
      s.SetAttribute(key, 1);
      s.SetAttribute(other, 2);
      s.SetAttribute(key, 3);
      s.End();
      const SpanData d = FlushOne();
      ASSERT_EQ(d.attributes.size(), 2u) << length << " " << at;
      EXPECT_EQ(d.attributes[0].key, key);
      EXPECT_EQ(d.attributes[0].value, AttributeValue(3));
      EXPECT_EQ(d.attributes[1].key, other);
      EXPECT_EQ(d.attributes[1].value, AttributeValue(2));

      Span t = tracer_.StartRootSpan("values");
      t.SetAttribute("v", other);
      t.End();
      EXPECT_EQ(FlushOne().attributes.at(0).value, AttributeValue(other));
    }
  }
}

// More keys than the record keeps fingerprints for: a key set again is found whether it
// came among the first ones or later, in a fresh record and in a recycled one.
TEST_F(SpanTest, ManyKeysEachSetTwiceKeepOneValueEach) {
  constexpr int kKeys = 40;
  for (int round = 0; round < 2; ++round) {
    Span s = tracer_.StartRootSpan("many");
    for (int i = 0; i < kKeys; ++i) s.SetAttribute("key." + std::to_string(i), i);
    for (int i = kKeys - 1; i >= 0; --i) s.SetAttribute("key." + std::to_string(i), -i);
    s.End();
    const SpanData d = FlushOne();
    ASSERT_EQ(d.attributes.size(), static_cast<std::size_t>(kKeys)) << round;
    for (int i = 0; i < kKeys; ++i) {
      EXPECT_EQ(d.attributes[static_cast<std::size_t>(i)].key, "key." + std::to_string(i));
      EXPECT_EQ(d.attributes[static_cast<std::size_t>(i)].value, AttributeValue(-i)) << i;
    }
  }
}

TEST_F(SpanTest, EventsKeepTimeAndAttributes) {
  Span s = tracer_.StartRootSpan("events");
  const std::uint64_t before = NowNanos();
  s.AddEvent("exception", {{"exception.type", "Timeout"}, {"attempt", 3}}, 1234);
  s.AddEvent("retry");
  const std::vector<KeyValue> attrs = {{"a", 1.5}, {"a", 2.5}};  // duplicate: last wins
  s.AddEvent("from span", attrs);
  s.End();
  const SpanData d = FlushOne();
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.events[0].name, "exception");
  EXPECT_EQ(d.events[0].time_unix_nano, 1234u);
  ASSERT_EQ(d.events[0].attributes.size(), 2u);
  EXPECT_EQ(d.events[0].attributes[0].key, "exception.type");
  EXPECT_EQ(d.events[0].attributes[0].value, AttributeValue("Timeout"));
  EXPECT_EQ(d.events[0].attributes[1].value, AttributeValue(3));
  EXPECT_EQ(d.events[1].name, "retry");
  EXPECT_GE(d.events[1].time_unix_nano + 1'000'000, before);
  EXPECT_TRUE(d.events[1].attributes.empty());
  ASSERT_EQ(d.events[2].attributes.size(), 1u);
  EXPECT_EQ(d.events[2].attributes[0].value, AttributeValue(2.5));
}

TEST_F(SpanTest, LinksFollowTheSpecificationsRule) {
  Span other = tracer_.StartRootSpan("other");
  Span s = tracer_.StartRootSpan("links");
  s.AddLink(other.context(), {{"link.kind", "batch"}});
  s.AddLink(SpanContext{});                    // invalid and empty: ignored
  s.AddLink(SpanContext{}, {{"kept", true}});  // invalid but has attributes: kept
  s.End();
  auto spans = Flush();
  ASSERT_EQ(spans.size(), 1u);
  const SpanData& d = spans[0];
  ASSERT_EQ(d.links.size(), 2u);
  EXPECT_EQ(d.links[0].context, other.context());
  ASSERT_EQ(d.links[0].attributes.size(), 1u);
  EXPECT_EQ(d.links[0].attributes[0].value, AttributeValue("batch"));
  EXPECT_FALSE(d.links[1].context.IsValid());
  EXPECT_EQ(d.dropped_links_count, 0u);
}

TEST_F(SpanTest, StatusRules) {
  Span s = tracer_.StartRootSpan("status");
  s.SetStatus(StatusCode::kUnset, "ignored");
  s.SetStatus(StatusCode::kError, "boom");
  s.End();
  SpanData d = FlushOne();
  EXPECT_EQ(d.status.code, StatusCode::kError);
  EXPECT_EQ(d.status.message, "boom");

  Span t = tracer_.StartRootSpan("status");
  t.SetStatus(StatusCode::kError, "boom");
  t.SetStatus(StatusCode::kOk, "description dropped");
  t.SetStatus(StatusCode::kError, "ignored: Ok is final");
  t.End();
  d = FlushOne();
  EXPECT_EQ(d.status.code, StatusCode::kOk);
  EXPECT_EQ(d.status.message, "");
}

TEST_F(SpanTest, KindAndUpdatedName) {
  for (SpanKind kind : {SpanKind::kInternal, SpanKind::kServer, SpanKind::kClient,
                        SpanKind::kProducer, SpanKind::kConsumer}) {
    Span s = tracer_.StartRootSpan("before", kind);
    s.UpdateName("after");
    s.End();
    const SpanData d = FlushOne();
    EXPECT_EQ(d.kind, kind);
    EXPECT_EQ(d.name, "after");
  }
}

TEST_F(SpanTest, EndIsIdempotentAndTheDestructorEnds) {
  {
    Span s = tracer_.StartRootSpan("explicit", SpanKind::kInternal, 1000);
    s.End(2000);
    EXPECT_FALSE(s.IsRecording());
    EXPECT_TRUE(s.context().IsValid());  // still usable for propagation
    s.End(3000);
    s.SetAttribute("after.end", 1);  // ignored
  }
  { Span s = tracer_.StartRootSpan("scoped"); }
  auto spans = Flush();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].name, "explicit");
  EXPECT_EQ(spans[0].start_unix_nano, 1000u);
  EXPECT_EQ(spans[0].end_unix_nano, 2000u);
  EXPECT_TRUE(spans[0].attributes.empty());
  EXPECT_EQ(spans[1].name, "scoped");
  EXPECT_GT(spans[1].end_unix_nano, 0u);
}

TEST_F(SpanTest, EndBeforeStartIsClamped) {
  Span s = tracer_.StartRootSpan("clamped", SpanKind::kInternal, 5000);
  s.End(4000);
  const SpanData d = FlushOne();
  EXPECT_EQ(d.end_unix_nano, 5000u);
}

TEST_F(SpanTest, MoveTransfersTheSpan) {
  Span a = tracer_.StartRootSpan("a");
  const SpanContext ctx = a.context();
  Span b(std::move(a));
  EXPECT_FALSE(a.IsRecording());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_TRUE(b.IsRecording());
  EXPECT_EQ(b.context(), ctx);
  a.End();  // harmless

  Span c = tracer_.StartRootSpan("c");
  c = std::move(b);  // ends "c" first, then takes over "a"
  EXPECT_EQ(c.context(), ctx);
  Span& alias = c;
  c = std::move(alias);  // self-move keeps the span
  EXPECT_TRUE(c.IsRecording());
  c.End();
  auto spans = Flush();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].name, "c");
  EXPECT_EQ(spans[1].name, "a");
}

TEST_F(SpanTest, DefaultSpanIsInert) {
  Span s;
  EXPECT_FALSE(s.IsRecording());
  EXPECT_FALSE(s.context().IsValid());
  s.SetAttribute("k", 1);
  s.End();
  EXPECT_TRUE(Flush().empty());
}

TEST_F(SpanTest, RecycledRecordsCarryNothingOver) {
  // Alternate shapes so that records are reused with more and fewer elements than
  // their previous span had.
  for (int round = 0; round < 200; ++round) {
    const bool big = round % 2 == 0;
    Span s = tracer_.StartRootSpan(big ? "big" : "small");
    if (big) {
      s.SetAttribute("s", "a rather long string value, longer than small-string storage");
      s.SetAttribute("i", round);
      s.SetAttribute("d", 0.5);
      s.AddEvent("e", {{"k", "v"}, {"k2", 2}});
      s.AddLink(s.context(), {{"l", true}});
      s.SetStatus(StatusCode::kError, "failed");
    } else {
      s.SetAttribute("i", "type changed");
    }
    s.End();
    const SpanData d = FlushOne();
    if (big) {
      ASSERT_EQ(d.attributes.size(), 3u);
      EXPECT_EQ(d.attributes[0].value,
                AttributeValue("a rather long string value, longer than small-string storage"));
      EXPECT_EQ(d.attributes[1].value, AttributeValue(round));
      ASSERT_EQ(d.events.size(), 1u);
      EXPECT_EQ(d.events[0].attributes.size(), 2u);
      EXPECT_EQ(d.links.size(), 1u);
      EXPECT_EQ(d.status.code, StatusCode::kError);
    } else {
      ASSERT_EQ(d.attributes.size(), 1u);
      EXPECT_EQ(d.attributes[0].key, "i");
      EXPECT_EQ(d.attributes[0].value, AttributeValue("type changed"));
      EXPECT_TRUE(d.events.empty());
      EXPECT_TRUE(d.links.empty());
      EXPECT_EQ(d.status.code, StatusCode::kUnset);
      EXPECT_TRUE(d.status.message.empty());
      EXPECT_EQ(d.name, "small");
    }
  }
}

class LimitedSpanTest : public SpanTest {
 protected:
  static SpanLimits Limits() {
    SpanLimits l;
    l.attribute_count = 3;
    l.event_count = 2;
    l.link_count = 1;
    l.attributes_per_event = 1;
    l.attributes_per_link = 1;
    l.attribute_value_length = 5;
    return l;
  }
  LimitedSpanTest() : SpanTest(Sampler(), Limits()) {}
};

TEST_F(LimitedSpanTest, ExcessIsDroppedAndCounted) {
  Span s = tracer_.StartRootSpan("limited");
  for (int i = 0; i < 5; ++i) {
    s.SetAttribute("k" + std::to_string(i), i);
  }
  s.SetAttribute("k0", 100);  // replacing an existing key is not "more"
  for (int i = 0; i < 4; ++i) {
    s.AddEvent("e", {{"a", 1}, {"b", 2}});
  }
  for (int i = 0; i < 3; ++i) {
    s.AddLink(s.context());
  }
  s.SetAttribute("k1", "héllo world");
  s.End();
  const SpanData d = FlushOne();
  ASSERT_EQ(d.attributes.size(), 3u);
  EXPECT_EQ(d.attributes[0].value, AttributeValue(100));
  EXPECT_EQ(d.attributes[1].value, AttributeValue("héll"));  // 5 bytes, whole characters
  EXPECT_EQ(d.dropped_attributes_count, 2u);
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].attributes.size(), 1u);
  EXPECT_EQ(d.dropped_events_count, 2u);
  EXPECT_EQ(d.links.size(), 1u);
  EXPECT_EQ(d.dropped_links_count, 2u);
}

TEST_F(LimitedSpanTest, TruncationNeverSplitsACharacter) {
  Span s = tracer_.StartRootSpan("utf8");
  s.SetAttribute("k", "abcd€");  // '€' is 3 bytes starting at byte 4
  s.End();
  EXPECT_EQ(FlushOne().attributes[0].value, AttributeValue("abcd"));
}

TEST(WithSpanTest, KeepsRequestIdAndBaggage) {
  RequestContext base = RequestContext::NewRoot();
  base.request_id = *RequestId::FromString("req-1");
  ASSERT_TRUE(base.baggage.Set("user", "alice"));
  const Tracer tracer;
  Span span = tracer.StartSpan("op", base.span);
  const RequestContext ctx = WithSpan(base, span);
  EXPECT_EQ(ctx.span, span.context());
  EXPECT_EQ(ctx.request_id, base.request_id);
  EXPECT_EQ(ctx.baggage, base.baggage);
  EXPECT_EQ(ctx.span.trace_id, base.span.trace_id);
}

TEST(SpanClockTest, TracksRealtime) {
  internal::CalibrateSpanClock();
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t a = internal::RealtimeNanos();
    const std::uint64_t t = internal::SpanClockNow();
    const std::uint64_t b = internal::RealtimeNanos();
    // Within 20 us of the bracketing realtime reads.
    EXPECT_GE(t + 20'000, a);
    EXPECT_LE(t, b + 20'000);
  }
}

TEST(SpanLimitsTest, FromEnvFallsBackToGeneralLimits) {
  ScopedEnv a("OTEL_ATTRIBUTE_COUNT_LIMIT", "10");
  ScopedEnv b("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5");
  ScopedEnv c("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100");
  ScopedEnv d("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", nullptr);
  ScopedEnv e("OTEL_SPAN_EVENT_COUNT_LIMIT", "7");
  ScopedEnv f("OTEL_SPAN_LINK_COUNT_LIMIT", nullptr);
  ScopedEnv g("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", nullptr);
  ScopedEnv h("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "2");
  const SpanLimits l = SpanLimits::FromEnv();
  EXPECT_EQ(l.attribute_count, 5u);
  EXPECT_EQ(l.attribute_value_length, 100u);
  EXPECT_EQ(l.event_count, 7u);
  EXPECT_EQ(l.link_count, 128u);
  EXPECT_EQ(l.attributes_per_event, 10u);
  EXPECT_EQ(l.attributes_per_link, 2u);
}

TEST(SpanLimitsTest, InvalidValueNamesTheVariable) {
  ScopedEnv a("OTEL_SPAN_EVENT_COUNT_LIMIT", "-1");
  try {
    SpanLimits::FromEnv();
    FAIL() << "no error";
  } catch (const EnvVarError& e) {
    EXPECT_EQ(e.variable(), "OTEL_SPAN_EVENT_COUNT_LIMIT");
  }
}

}  // namespace
}  // namespace vigil::telemetry

// traceparent parsing and formatting, and extraction together with tracestate.
#include <gtest/gtest.h>

#include <string>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry {
namespace {

constexpr std::string_view kSpecExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view kTraceHex = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpanHex = "00f067aa0ba902b7";

std::string WithVersion(std::string_view version, std::string_view rest = "") {
  return std::string(version) + "-" + std::string(kTraceHex) + "-" + std::string(kSpanHex) +
         "-01" + std::string(rest);
}

static_assert(noexcept(ParseTraceparent(std::string_view())));
static_assert(noexcept(FormatTraceparent(SpanContext(), static_cast<char*>(nullptr))));

TEST(Traceparent, ParsesSpecExample) {
  const auto r = ParseTraceparent(kSpecExample);
  ASSERT_TRUE(r) << r.error;
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.value->trace_id.ToHex(), kTraceHex);
  EXPECT_EQ(r.value->span_id.ToHex(), kSpanHex);
  EXPECT_EQ(r.value->flags.bits, 0x01);
  EXPECT_TRUE(r.value->sampled());
  EXPECT_TRUE(r.value->is_remote);
  EXPECT_TRUE(r.value->trace_state.empty());
  EXPECT_TRUE(r.value->IsValid());
}

TEST(Traceparent, ParsesUnsampledExample) {
  const auto r = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(r) << r.error;
  EXPECT_FALSE(r.value->sampled());
  EXPECT_EQ(r.value->flags.bits, 0);
}

TEST(Traceparent, KeepsUnknownFlagBits) {
  const auto r = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->flags.bits, 0xff);
  const auto r2 = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02");
  ASSERT_TRUE(r2);
  EXPECT_FALSE(r2.value->sampled());
  EXPECT_EQ(r2.value->flags.bits, TraceFlags::kRandom);
}

TEST(Traceparent, TrimsOptionalWhitespace) {
  const auto r = ParseTraceparent(" \t" + std::string(kSpecExample) + "\t  ");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->trace_id.ToHex(), kTraceHex);
  EXPECT_FALSE(ParseTraceparent("\n" + std::string(kSpecExample)));
  EXPECT_FALSE(ParseTraceparent(std::string(kSpecExample) + "\r"));
}

TEST(Traceparent, RejectsWrongLengthForVersion00) {
  std::string s(kSpecExample);
  EXPECT_FALSE(ParseTraceparent(s.substr(0, 54)));
  EXPECT_FALSE(ParseTraceparent(s + "-"));
  EXPECT_FALSE(ParseTraceparent(s + "-extra"));
  EXPECT_FALSE(ParseTraceparent(s + "0"));
  EXPECT_FALSE(ParseTraceparent(""));
  EXPECT_FALSE(ParseTraceparent("00"));
}

TEST(Traceparent, RejectsVersionFf) {
  const auto r = ParseTraceparent(WithVersion("ff"));
  EXPECT_FALSE(r);
  EXPECT_FALSE(r.error.empty());
  EXPECT_FALSE(ParseTraceparent(WithVersion("ff", "-future")));
}

TEST(Traceparent, RejectsBadVersionCharacters) {
  EXPECT_FALSE(ParseTraceparent(WithVersion("0g")));
  EXPECT_FALSE(ParseTraceparent(WithVersion("FE", "-x")));
  EXPECT_FALSE(ParseTraceparent(WithVersion("Cc", "-x")));
  EXPECT_FALSE(ParseTraceparent(WithVersion("-0")));
}

TEST(Traceparent, AcceptsFutureVersions) {
  // The Trace Context test suite's example of a future header.
  const auto r = ParseTraceparent(WithVersion("cc", "-what-the-future-will-be-like"));
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->trace_id.ToHex(), kTraceHex);
  EXPECT_EQ(r.value->span_id.ToHex(), kSpanHex);
  EXPECT_TRUE(r.value->sampled());
  // A future version at exactly 55 characters, and with an empty extra field.
  EXPECT_TRUE(ParseTraceparent(WithVersion("01")));
  EXPECT_TRUE(ParseTraceparent(WithVersion("fe", "-")));
  EXPECT_TRUE(ParseTraceparent(WithVersion("cc", "-\xc3\xbf")));
}

TEST(Traceparent, RejectsFutureVersionWithoutDashAfterFlags) {
  EXPECT_FALSE(ParseTraceparent(WithVersion("cc", ".")));
  EXPECT_FALSE(ParseTraceparent(WithVersion("cc", "0-what-the-future-will-be-like")));
  EXPECT_FALSE(ParseTraceparent(WithVersion("cc").substr(0, 54)));
}

TEST(Traceparent, RejectsFutureVersionWithBadFields) {
  EXPECT_FALSE(ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g-x"));
  EXPECT_FALSE(ParseTraceparent("cc-00000000000000000000000000000000-00f067aa0ba902b7-01-x"));
  EXPECT_FALSE(ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7.01-x"));
}

TEST(Traceparent, RejectsUppercaseHex) {
  EXPECT_FALSE(ParseTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473A-00f067aa0ba902b7-01"));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"));
}

TEST(Traceparent, RejectsEveryNonHexCharacterInEveryPosition) {
  const std::string good(kSpecExample);
  for (std::size_t pos = 0; pos < good.size(); ++pos) {
    if (good[pos] == '-') continue;
    for (char bad : {'g', 'G', 'A', 'F', 'z', ' ', '-', '.', '\0', '\x80', '\xff'}) {
      std::string s = good;
      s[pos] = bad;
      EXPECT_FALSE(ParseTraceparent(s)) << "position " << pos << " char " << int{bad};
    }
  }
}

TEST(Traceparent, RejectsBadDelimiters) {
  const std::string good(kSpecExample);
  for (std::size_t pos : {2u, 35u, 52u}) {
    for (char bad : {'_', '0', ' ', '+'}) {
      std::string s = good;
      s[pos] = bad;
      EXPECT_FALSE(ParseTraceparent(s)) << pos;
    }
  }
}

TEST(Traceparent, RejectsWrongFieldLengths) {
  // Same total length, but fields shifted.
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e47360-0f067aa0ba902b7-01"));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"));
  EXPECT_FALSE(ParseTraceparent("000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001"));
}

TEST(Traceparent, RejectsAllZeroIds) {
  const auto zero_trace =
      ParseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  EXPECT_FALSE(zero_trace);
  EXPECT_NE(zero_trace.error.find("trace-id"), std::string_view::npos);
  const auto zero_span =
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01");
  EXPECT_FALSE(zero_span);
  EXPECT_NE(zero_span.error.find("parent-id"), std::string_view::npos);
  // A single non-zero nibble anywhere makes an id valid.
  EXPECT_TRUE(ParseTraceparent("00-00000000000000000000000000000001-1000000000000000-00"));
}

TEST(Traceparent, FailureReasonsAreStaticStrings) {
  const auto r = ParseTraceparent("garbage");
  EXPECT_FALSE(r);
  EXPECT_FALSE(r.value.has_value());
  EXPECT_FALSE(r.error.empty());
  // The reason outlives any input buffer.
  std::string_view reason;
  {
    std::string input = "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01";
    reason = ParseTraceparent(input).error;
  }
  EXPECT_FALSE(reason.empty());
  EXPECT_NE(reason.find("traceparent"), std::string_view::npos);
}

TEST(Traceparent, FormatsVersion00) {
  SpanContext ctx;
  ctx.trace_id = *TraceId::FromHex(kTraceHex);
  ctx.span_id = *SpanId::FromHex(kSpanHex);
  ctx.flags.bits = 0x01;
  EXPECT_EQ(FormatTraceparent(ctx), kSpecExample);

  ctx.flags.bits = 0xa5;
  char buf[kTraceparentSize + 1];
  buf[kTraceparentSize] = '#';
  FormatTraceparent(ctx, buf);
  EXPECT_EQ(std::string_view(buf, kTraceparentSize),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-a5");
  EXPECT_EQ(buf[kTraceparentSize], '#') << "must not write past 55 characters";
}

TEST(Traceparent, FutureVersionIsFormattedAsVersion00) {
  const auto r = ParseTraceparent(WithVersion("cc", "-what-the-future-will-be-like"));
  ASSERT_TRUE(r);
  EXPECT_EQ(FormatTraceparent(*r.value), WithVersion("00"));
}

TEST(Traceparent, RoundTripsRandomContexts) {
  for (int i = 0; i < 200; ++i) {
    SpanContext ctx;
    ctx.trace_id = TraceId::Random();
    ctx.span_id = SpanId::Random();
    ctx.flags.bits = static_cast<std::uint8_t>(RandomU64());
    ctx.is_remote = true;
    const std::string header = FormatTraceparent(ctx);
    ASSERT_EQ(header.size(), kTraceparentSize);
    const auto parsed = ParseTraceparent(header);
    ASSERT_TRUE(parsed) << header << ": " << parsed.error;
    EXPECT_EQ(*parsed.value, ctx);
    EXPECT_EQ(FormatTraceparent(*parsed.value), header);
  }
}

TEST(ExtractTraceContext, KeepsValidTracestate) {
  const auto r = ExtractTraceContext(kSpecExample, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(r) << r.error;
  ASSERT_EQ(r.value->trace_state.members().size(), 2u);
  EXPECT_EQ(r.value->trace_state.Get("rojo"), "00f067aa0ba902b7");
  EXPECT_EQ(r.value->trace_state.Get("congo"), "t61rcWkgMzE");
  EXPECT_EQ(r.value->trace_id.ToHex(), kTraceHex);
  EXPECT_TRUE(r.value->is_remote);
}

TEST(ExtractTraceContext, DropsInvalidTracestateWithoutFailing) {
  for (std::string_view bad : {"UPPER=1", "novalue", "k=a,b=", "k=v=w", "rojo=1,rojo=2,Bad=3"}) {
    const auto r = ExtractTraceContext(kSpecExample, bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_TRUE(r.value->trace_state.empty()) << bad;
    EXPECT_EQ(r.value->span_id.ToHex(), kSpanHex);
  }
}

TEST(ExtractTraceContext, TruncatesTracestateWithTooManyMembers) {
  std::string state;
  for (int i = 0; i < 33; ++i) state += (i ? ",k" : "k") + std::to_string(i) + "=v";
  const auto r = ExtractTraceContext(kSpecExample, state);
  ASSERT_TRUE(r);
  ASSERT_EQ(r.value->trace_state.members().size(), 32u);
  EXPECT_EQ(r.value->trace_state.members().back().key, "k31");
  EXPECT_FALSE(r.error.empty()) << "the dropped member is reported";
}

TEST(ExtractTraceContext, KeepsTheFirstOfDuplicateTracestateKeys) {
  const auto r = ExtractTraceContext(kSpecExample, "rojo=1,congo=2,rojo=3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value->trace_state.ToHeader(), "rojo=1,congo=2");
}

TEST(ExtractTraceContext, FailsOnInvalidTraceparentWhateverTheTracestate) {
  const auto r = ExtractTraceContext("00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                     "rojo=00f067aa0ba902b7");
  EXPECT_FALSE(r);
  EXPECT_FALSE(r.error.empty());
  EXPECT_FALSE(ExtractTraceContext("", "rojo=1"));
  EXPECT_FALSE(ExtractTraceContext("", ""));
}

TEST(ExtractTraceContext, EmptyTracestateIsFine) {
  const auto r = ExtractTraceContext(kSpecExample, "");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.value->trace_state.empty());
  EXPECT_EQ(*r.value, *ParseTraceparent(kSpecExample).value);
}

}  // namespace
}  // namespace vigil::telemetry

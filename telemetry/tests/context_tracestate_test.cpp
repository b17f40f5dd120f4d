// TraceState validation, mutation and the tracestate header.
#include <gtest/gtest.h>

#include <string>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry {
namespace {

std::string Repeat(char c, std::size_t n) { return std::string(n, c); }

std::vector<TraceState::Member> Members(
    std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  std::vector<TraceState::Member> out;
  for (const auto& [k, v] : kv) out.push_back({std::string(k), std::string(v)});
  return out;
}

TEST(TraceStateKey, SimpleKeys) {
  EXPECT_TRUE(TraceState::IsValidKey("rojo"));
  EXPECT_TRUE(TraceState::IsValidKey("congo"));
  EXPECT_TRUE(TraceState::IsValidKey("a"));
  EXPECT_TRUE(TraceState::IsValidKey("a0_-*/z"));
  EXPECT_FALSE(TraceState::IsValidKey(""));
  EXPECT_FALSE(TraceState::IsValidKey("Rojo"));
  EXPECT_FALSE(TraceState::IsValidKey("rOjo"));
  EXPECT_FALSE(TraceState::IsValidKey("0rojo")) << "a simple key starts with a letter";
  EXPECT_FALSE(TraceState::IsValidKey("_rojo"));
  EXPECT_FALSE(TraceState::IsValidKey("ro jo"));
  EXPECT_FALSE(TraceState::IsValidKey("ro.jo"));
  EXPECT_FALSE(TraceState::IsValidKey("ro=jo"));
  EXPECT_FALSE(TraceState::IsValidKey("ro,jo"));
  EXPECT_FALSE(TraceState::IsValidKey(std::string_view("ro\0jo", 5)));
}

TEST(TraceStateKey, SimpleKeyLengthBoundary) {
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('k', 256)));
  EXPECT_FALSE(TraceState::IsValidKey(Repeat('k', 257)));
}

TEST(TraceStateKey, MultiTenantKeys) {
  EXPECT_TRUE(TraceState::IsValidKey("fw529a3039@dt"));
  EXPECT_TRUE(TraceState::IsValidKey("0tenant@sys"));
  EXPECT_TRUE(TraceState::IsValidKey("t@s"));
  EXPECT_TRUE(TraceState::IsValidKey("t-_*/@s0_-*/"));
  EXPECT_FALSE(TraceState::IsValidKey("@dt"));
  EXPECT_FALSE(TraceState::IsValidKey("fw529a3039@"));
  EXPECT_FALSE(TraceState::IsValidKey("fw529a3039@0dt")) << "system-id starts with a letter";
  EXPECT_FALSE(TraceState::IsValidKey("_tenant@dt"));
  EXPECT_FALSE(TraceState::IsValidKey("a@b@c"));
  EXPECT_FALSE(TraceState::IsValidKey("Tenant@dt"));
  EXPECT_FALSE(TraceState::IsValidKey("tenant@Dt"));
}

TEST(TraceStateKey, TenantIdLengthBoundary) {
  // tenant-id = ( lcalpha / DIGIT ) 0*240( keychar ): at most 241 characters.
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('t', 240) + "@dt"));
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('t', 241) + "@dt"));
  EXPECT_FALSE(TraceState::IsValidKey(Repeat('t', 242) + "@dt"));
}

TEST(TraceStateKey, SystemIdLengthBoundary) {
  // system-id = lcalpha 0*13( keychar ): at most 14 characters.
  EXPECT_TRUE(TraceState::IsValidKey("t@" + Repeat('s', 13)));
  EXPECT_TRUE(TraceState::IsValidKey("t@" + Repeat('s', 14)));
  EXPECT_FALSE(TraceState::IsValidKey("t@" + Repeat('s', 15)));
  // The longest multi-tenant key: 241 + 1 + 14 = 256 characters.
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('t', 241) + "@" + Repeat('s', 14)));
}

TEST(TraceStateValue, Grammar) {
  EXPECT_TRUE(TraceState::IsValidValue("00f067aa0ba902b7"));
  EXPECT_TRUE(TraceState::IsValidValue("t61rcWkgMzE"));
  EXPECT_TRUE(TraceState::IsValidValue("x"));
  EXPECT_TRUE(TraceState::IsValidValue(" leading space"));
  EXPECT_TRUE(TraceState::IsValidValue("inner space"));
  EXPECT_TRUE(TraceState::IsValidValue("!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"));
  EXPECT_FALSE(TraceState::IsValidValue(""));
  EXPECT_FALSE(TraceState::IsValidValue("trailing "));
  EXPECT_FALSE(TraceState::IsValidValue(" "));
  EXPECT_FALSE(TraceState::IsValidValue("a,b"));
  EXPECT_FALSE(TraceState::IsValidValue("a=b"));
  EXPECT_FALSE(TraceState::IsValidValue("tab\there"));
  EXPECT_FALSE(TraceState::IsValidValue("del\x7f"));
  EXPECT_FALSE(TraceState::IsValidValue("caf\xc3\xa9"));
}

TEST(TraceStateValue, LengthBoundary) {
  EXPECT_TRUE(TraceState::IsValidValue(Repeat('v', 256)));
  EXPECT_FALSE(TraceState::IsValidValue(Repeat('v', 257)));
}

TEST(ParseTracestate, SpecExamples) {
  const auto single = ParseTracestate("rojo=00f067aa0ba902b7");
  ASSERT_TRUE(single) << single.error;
  EXPECT_EQ(single.value->members(), Members({{"rojo", "00f067aa0ba902b7"}}));

  const auto two = ParseTracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(two) << two.error;
  EXPECT_EQ(two.value->members(),
            Members({{"rojo", "00f067aa0ba902b7"}, {"congo", "t61rcWkgMzE"}}));
  EXPECT_EQ(two.value->ToHeader(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");

  const auto tenant = ParseTracestate("fw529a3039@dt=oo,congo=ucfJifl5GOE");
  ASSERT_TRUE(tenant) << tenant.error;
  EXPECT_EQ(tenant.value->Get("fw529a3039@dt"), "oo");
}

TEST(ParseTracestate, EmptyHeaderAndEmptyMembers) {
  const auto empty = ParseTracestate("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value->empty());
  EXPECT_EQ(empty.value->ToHeader(), "");

  EXPECT_TRUE(ParseTracestate(" \t "));
  EXPECT_TRUE(ParseTracestate(",,,"));
  const auto r = ParseTracestate(" , rojo=1 ,\t, congo=2,, ");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->members(), Members({{"rojo", "1"}, {"congo", "2"}}));
  EXPECT_EQ(r.value->ToHeader(), "rojo=1,congo=2");
}

TEST(ParseTracestate, WhitespaceBelongsToMembersOnlyAtTheirEdges) {
  // Leading spaces of a value are part of it; trailing ones are OWS.
  const auto r = ParseTracestate("rojo= 12 ,congo=x");
  ASSERT_TRUE(r) << r.error;
  EXPECT_EQ(r.value->Get("rojo"), " 12");
  // No whitespace between key and '='.
  EXPECT_FALSE(ParseTracestate("rojo =12"));
  EXPECT_FALSE(ParseTracestate("rojo=1\t2"));
}

TEST(ParseTracestate, RejectsInvalidMembers) {
  EXPECT_FALSE(ParseTracestate("rojo"));
  EXPECT_FALSE(ParseTracestate("rojo="));
  EXPECT_FALSE(ParseTracestate("=value"));
  EXPECT_FALSE(ParseTracestate("Rojo=1"));
  EXPECT_FALSE(ParseTracestate("rojo=a=b"));
  EXPECT_FALSE(ParseTracestate("rojo=1,congo"));
  EXPECT_FALSE(ParseTracestate("rojo=1,CONGO=2"));
  EXPECT_FALSE(ParseTracestate("rojo=\x01"));
  EXPECT_FALSE(ParseTracestate("rojo=" + Repeat('v', 257)));
  EXPECT_TRUE(ParseTracestate("rojo=" + Repeat('v', 256)));
  EXPECT_FALSE(ParseTracestate(Repeat('k', 257) + "=1"));
  EXPECT_TRUE(ParseTracestate(Repeat('k', 256) + "=1"));
  const auto r = ParseTracestate("rojo=1,bad key=2");
  EXPECT_FALSE(r);
  EXPECT_FALSE(r.error.empty());
}

TEST(ParseTracestate, RejectsDuplicateKeys) {
  const auto r = ParseTracestate("rojo=1,congo=2,rojo=3");
  EXPECT_FALSE(r);
  EXPECT_NE(r.error.find("duplicate"), std::string_view::npos);
  EXPECT_TRUE(ParseTracestate("rojo=1,rojo@t=2"));
}

std::string MembersHeader(int n) {
  std::string h;
  for (int i = 0; i < n; ++i) {
    if (i) h += ',';
    h += "k" + std::to_string(i) + "=v" + std::to_string(i);
  }
  return h;
}

TEST(ParseTracestate, MemberCountBoundary) {
  const auto max = ParseTracestate(MembersHeader(32));
  ASSERT_TRUE(max) << max.error;
  EXPECT_EQ(max.value->members().size(), 32u);
  EXPECT_EQ(max.value->ToHeader(), MembersHeader(32));
  EXPECT_FALSE(ParseTracestate(MembersHeader(33)));
  // Empty members do not count.
  EXPECT_TRUE(ParseTracestate(",," + MembersHeader(32) + ",,"));
}

TEST(TraceStateMutation, SetAddsAtTheFront) {
  TraceState ts;
  EXPECT_TRUE(ts.Set("congo", "t61rcWkgMzE"));
  EXPECT_TRUE(ts.Set("rojo", "00f067aa0ba902b7"));
  EXPECT_EQ(ts.ToHeader(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

TEST(TraceStateMutation, SetMovesAnUpdatedKeyToTheFront) {
  auto ts = *ParseTracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").value;
  EXPECT_TRUE(ts.Set("congo", "ucfJifl5GOE"));
  EXPECT_EQ(ts.ToHeader(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
  EXPECT_TRUE(ts.Set("congo", "again"));
  EXPECT_EQ(ts.ToHeader(), "congo=again,rojo=00f067aa0ba902b7");
}

TEST(TraceStateMutation, SetRejectsInvalidInputWithoutChanges) {
  auto ts = *ParseTracestate("rojo=1,congo=2").value;
  const TraceState before = ts;
  EXPECT_FALSE(ts.Set("Bad", "v"));
  EXPECT_FALSE(ts.Set("congo", "a,b"));
  EXPECT_FALSE(ts.Set("congo", ""));
  EXPECT_FALSE(ts.Set("congo", "trailing "));
  EXPECT_EQ(ts, before);
}

TEST(TraceStateMutation, SetDropsTheRightmostMemberWhenFull) {
  auto ts = *ParseTracestate(MembersHeader(32)).value;
  EXPECT_TRUE(ts.Set("newest", "x"));
  ASSERT_EQ(ts.members().size(), 32u);
  EXPECT_EQ(ts.members().front().key, "newest");
  EXPECT_EQ(ts.members().back().key, "k30");
  EXPECT_FALSE(ts.Get("k31"));
  // Updating an existing key of a full list drops nothing.
  EXPECT_TRUE(ts.Set("k5", "updated"));
  EXPECT_EQ(ts.members().size(), 32u);
  EXPECT_EQ(ts.members().front().key, "k5");
  EXPECT_EQ(ts.members().back().key, "k30");
}

TEST(TraceStateMutation, GetAndErase) {
  auto ts = *ParseTracestate("rojo=1,congo=2,fw529a3039@dt=3").value;
  EXPECT_EQ(ts.Get("congo"), "2");
  EXPECT_EQ(ts.Get("fw529a3039@dt"), "3");
  EXPECT_FALSE(ts.Get("missing"));
  EXPECT_TRUE(ts.Erase("congo"));
  EXPECT_FALSE(ts.Erase("congo"));
  EXPECT_EQ(ts.ToHeader(), "rojo=1,fw529a3039@dt=3");
  EXPECT_TRUE(ts.Erase("rojo"));
  EXPECT_TRUE(ts.Erase("fw529a3039@dt"));
  EXPECT_TRUE(ts.empty());
  EXPECT_EQ(ts.ToHeader(), "");
}

TEST(ParseTracestate, RoundTrips) {
  for (std::string_view h :
       {"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", " a=1 ,, b= 2 \t,c=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~",
        "fw529a3039@dt=v,0t@s=w"}) {
    const auto first = ParseTracestate(h);
    ASSERT_TRUE(first) << h << ": " << first.error;
    const std::string formatted = first.value->ToHeader();
    const auto second = ParseTracestate(formatted);
    ASSERT_TRUE(second) << formatted;
    EXPECT_EQ(*second.value, *first.value);
    EXPECT_EQ(second.value->ToHeader(), formatted);
  }
}

}  // namespace
}  // namespace vigil::telemetry

// TraceState validation, mutation and the tracestate header.
#include <gtest/gtest.h>

#include <optional>
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

// Trace Context Level 2: key = ( lcalpha / DIGIT ) 0*255( keychar ), where keychar is
// lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@". Level 1's multi-tenant keys are a subset.
struct KeyCase {
  std::string key;
  bool valid;
};

TEST(TraceStateKey, Level2Grammar) {
  const KeyCase cases[] = {
      {"rojo", true},
      {"congo", true},
      {"a", true},
      {"a0_-*/z", true},
      {"0rojo", true},  // Level 2: a digit may come first
      {"9", true},
      {"fw529a3039@dt", true},
      {"0tenant@sys", true},
      {"t@s", true},
      {"t-_*/@s0_-*/", true},
      {"fw529a3039@0dt", true},  // no separate system-id rule any more
      {"a@b@c", true},
      {"foo@", true},
      {"", false},
      {"Rojo", false},
      {"rOjo", false},
      {"_rojo", false},
      {"-rojo", false},
      {"*rojo", false},
      {"/rojo", false},
      {"@dt", false},
      {"ro jo", false},
      {"ro.jo", false},
      {"ro=jo", false},
      {"ro,jo", false},
      {"Tenant@dt", false},
      {"tenant@Dt", false},
      {std::string("ro\0jo", 5), false},
      {"caf\xc3\xa9", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(TraceState::IsValidKey(c.key), c.valid) << '"' << c.key << '"';
  }
}

TEST(TraceStateKey, LengthBoundary) {
  // One first character and up to 255 more, whatever the position of any '@'.
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('k', 256)));
  EXPECT_FALSE(TraceState::IsValidKey(Repeat('k', 257)));
  EXPECT_TRUE(TraceState::IsValidKey("0" + Repeat('k', 255)));
  EXPECT_FALSE(TraceState::IsValidKey("0" + Repeat('k', 256)));
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('t', 241) + "@" + Repeat('s', 14)));
  EXPECT_TRUE(TraceState::IsValidKey(Repeat('t', 242) + "@" + Repeat('s', 13)));
  EXPECT_TRUE(TraceState::IsValidKey("t@" + Repeat('s', 254)));
  EXPECT_FALSE(TraceState::IsValidKey("t@" + Repeat('s', 255)));
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

// What a list (one field line, or several joined with ',') becomes: the header we would
// send, or nullopt when the whole list is unusable, and whether ParseTracestate reports
// dropped members next to the value.
struct ListCase {
  std::string header;
  std::optional<std::string> sent;
  bool reports_drop;
};

void ExpectList(const ListCase& c) {
  const auto r = ParseTracestate(c.header);
  if (!c.sent) {
    EXPECT_FALSE(r) << c.header;
    EXPECT_FALSE(r.error.empty()) << c.header;
    return;
  }
  ASSERT_TRUE(r) << c.header << ": " << r.error;
  EXPECT_EQ(r.value->ToHeader(), *c.sent) << c.header;
  EXPECT_EQ(!r.error.empty(), c.reports_drop) << c.header << ": " << r.error;
}

TEST(ParseTracestate, DuplicateKeysKeepTheFirstMember) {
  const ListCase cases[] = {
      {"rojo=1,congo=2,rojo=3", "rojo=1,congo=2", true},
      {"rojo=1,rojo=1", "rojo=1", true},
      {"rojo=1,congo=2,rojo=3,congo=4,rojo=5", "rojo=1,congo=2", true},
      // The joined lines of a request that repeated a vendor's line.
      {"rojo=1,congo=2, rojo=1,congo=2", "rojo=1,congo=2", true},
      {"rojo=1,rojo@t=2,t@rojo=3", "rojo=1,rojo@t=2,t@rojo=3", false},
      // A duplicate does not excuse a malformed member elsewhere.
      {"rojo=1,rojo=2,Bad=3", std::nullopt, false},
  };
  for (const auto& c : cases) ExpectList(c);
}

TEST(ParseTracestate, DigitFirstAndAtSignKeys) {
  const ListCase cases[] = {
      {"0rojo=1", "0rojo=1", false},
      {"rojo=1,1congo=2", "rojo=1,1congo=2", false},
      {"a@b@c=1,foo@=2", "a@b@c=1,foo@=2", false},
      {"@dt=1", std::nullopt, false},
  };
  for (const auto& c : cases) ExpectList(c);
}

std::string MembersHeader(int n, int from = 0) {
  std::string h;
  for (int i = from; i < from + n; ++i) {
    if (i != from) h += ',';
    h += "k" + std::to_string(i) + "=v" + std::to_string(i);
  }
  return h;
}

// A member "key=vvv..." of exactly `size` characters.
std::string MemberOfSize(std::string_view key, std::size_t size) {
  return std::string(key) + "=" + Repeat('v', size - key.size() - 1);
}

std::string Join(std::initializer_list<std::string_view> members) {
  std::string out;
  for (auto m : members) {
    if (!out.empty()) out += ',';
    out += m;
  }
  return out;
}

TEST(ParseTracestate, MemberCountLimitTruncatesFromTheEnd) {
  const ListCase cases[] = {
      {MembersHeader(32), MembersHeader(32), false},
      {MembersHeader(33), MembersHeader(32), true},
      {MembersHeader(100), MembersHeader(32), true},
      // Empty members do not count.
      {",," + MembersHeader(32) + ",,", MembersHeader(32), false},
      // The limit is on the combined list: two lines of 20 make one list of 40.
      {MembersHeader(20) + ", " + MembersHeader(20, 20), MembersHeader(32), true},
      // Members beyond the limit are still read: a malformed one fails the list.
      {MembersHeader(40) + ",Bad=1", std::nullopt, false},
  };
  for (const auto& c : cases) ExpectList(c);
}

TEST(ParseTracestate, ByteLimitDropsLongMembersFirstThenFromTheEnd) {
  const std::string a = MemberOfSize("a", 100), b = MemberOfSize("b", 100),
                    c = MemberOfSize("c", 100), d = MemberOfSize("d", 100),
                    e = MemberOfSize("e", 100), f = MemberOfSize("f", 108);
  const std::string long200 = MemberOfSize("long", 200);
  const std::string x = MemberOfSize("x", 129), y = MemberOfSize("y", 129);
  const std::string z = MemberOfSize("z", 128);
  const ListCase cases[] = {
      {Join({a, b, c, d, e}), Join({a, b, c, d, e}), false},               // 504 bytes
      {Join({a, b, c, d, f}), Join({a, b, c, d, f}), false},               // 512 bytes exactly
      {Join({a, b, c, d, e, "g=12345678"}), Join({a, b, c, d, e}), true},  // 515 bytes
      // A member over 128 characters goes first, wherever it is...
      {Join({long200, a, b, c, d}), Join({a, b, c, d}), true},
      // ...the rightmost of them first, and only as many as needed...
      {Join({x, y, a, b, c}), Join({x, a, b, c}), true},
      // ...and 128 characters is not long.
      {Join({z, a, b, c, d}), Join({z, a, b, c}), true},
      // A long member stays while there is room (503 bytes)...
      {Join({long200, a, b, c}), Join({long200, a, b, c}), false},
      // ...and short members that arrive after it still outrank it.
      {Join({long200, a, b, c, d, e}), Join({a, b, c, d, e}), true},
      // A member of the longest key and value (513 bytes) never fits.
      {Join({Repeat('k', 256) + "=" + Repeat('v', 256), "rojo=1"}), "rojo=1", true},
      // Optional whitespace is not sent, so it does not count.
      {a + " ,\t " + b + " , " + c + " , " + d + " , " + f, Join({a, b, c, d, f}), false},
  };
  for (const auto& lc : cases) ExpectList(lc);
}

TEST(ParseTracestate, DuplicatesAreDroppedBeforeTruncation) {
  // "long" is dropped for size, and the later "long=1" repeats its key: the first
  // occurrence is the most recent position, so an older one does not stand in for it.
  const std::string huge = MemberOfSize("huge", 260);
  const std::string long260 = MemberOfSize("long", 260);
  ExpectList({Join({huge, long260, "long=1", "rojo=2"}), Join({huge, "rojo=2"}), true});
}

TEST(ParseTracestate, LimitsHoldForLongLists) {
  // Thousands of members, long and short, many repeated: what is kept fits the limits
  // and parses back unchanged.
  std::string h;
  for (int i = 0; i < 2000; ++i) {
    h += "k" + std::to_string(i % 700) + "=" + Repeat('v', i % 7 == 0 ? 150u : 3u) + ",";
  }
  const auto r = ParseTracestate(h);
  ASSERT_TRUE(r) << r.error;
  EXPECT_FALSE(r.error.empty());
  EXPECT_LE(r.value->members().size(), TraceState::kMaxMembers);
  const std::string sent = r.value->ToHeader();
  EXPECT_LE(sent.size(), TraceState::kMaxBytes);
  const auto back = ParseTracestate(sent);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back.error.empty()) << back.error;
  EXPECT_EQ(*back.value, *r.value);
}

TEST(ExtractTraceContext, ReportsWhatTheTracestateStepDropped) {
  const std::string_view parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const auto kept = ExtractTraceContext(parent, "rojo=1,rojo=2");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept.value->trace_state.ToHeader(), "rojo=1");
  EXPECT_NE(kept.error.find("duplicate"), std::string_view::npos) << kept.error;

  const auto clean = ExtractTraceContext(parent, "rojo=1");
  ASSERT_TRUE(clean);
  EXPECT_TRUE(clean.error.empty()) << clean.error;
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

TEST(TraceStateMutation, SetKeepsTheByteLimitAndTheMemberJustSet) {
  const std::string a = MemberOfSize("a", 100), b = MemberOfSize("b", 100),
                    c = MemberOfSize("c", 100), long200 = MemberOfSize("long", 200);
  auto ts = *ParseTracestate(Join({a, long200, b, c})).value;  // 503 bytes
  // 8 + 1 + 503 = 512: fits.
  EXPECT_TRUE(ts.Set("new", "1234"));
  EXPECT_EQ(ts.ToHeader(), Join({"new=1234", a, long200, b, c}));
  // A longer value for the same key no longer fits: the long member goes first.
  EXPECT_TRUE(ts.Set("new", "12345"));
  EXPECT_EQ(ts.ToHeader(), Join({"new=12345", a, b, c}));
  // Then from the end; the member just set stays even when it is long itself.
  EXPECT_TRUE(ts.Set("big", Repeat('v', 256)));
  EXPECT_EQ(ts.ToHeader(), Join({"big=" + Repeat('v', 256), "new=12345", a, b}));
  EXPECT_LE(ts.ToHeader().size(), TraceState::kMaxBytes);

  // A member that alone breaks the limit is refused, changing nothing.
  const TraceState before = ts;
  EXPECT_FALSE(ts.Set(Repeat('k', 256), Repeat('v', 256)));
  EXPECT_EQ(ts, before);
  EXPECT_TRUE(ts.Set(Repeat('k', 255), Repeat('v', 256)));  // 512 bytes
  EXPECT_EQ(ts.members().size(), 1u);
}

TEST(TraceStateMutation, SetAcceptsLevel2Keys) {
  TraceState ts;
  EXPECT_TRUE(ts.Set("0vendor", "1"));
  EXPECT_TRUE(ts.Set("tenant@vendor@region", "2"));
  EXPECT_EQ(ts.ToHeader(), "tenant@vendor@region=2,0vendor=1");
  EXPECT_FALSE(ts.Set("@vendor", "3"));
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

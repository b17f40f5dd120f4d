// Baggage parsing, percent-coding, properties, limits and mutation.
#include <gtest/gtest.h>

#include <string>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry {
namespace {

Baggage Parse(std::string_view h) {
  auto r = ParseBaggage(h);
  EXPECT_TRUE(r) << h << ": " << r.error;
  return r ? *r.value : Baggage{};
}

TEST(ParseBaggage, SpecExample) {
  const Baggage b = Parse(
      "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue");
  ASSERT_EQ(b.members().size(), 3u);
  EXPECT_EQ(b.members()[0],
            (Baggage::Member{"key1", "value1", "property1;property2"}));
  EXPECT_EQ(b.members()[1], (Baggage::Member{"key2", "value2", ""}));
  EXPECT_EQ(b.members()[2], (Baggage::Member{"key3", "value3", "propertyKey=propertyValue"}));
  EXPECT_EQ(b.ToHeader(),
            "key1=value1;property1;property2,key2=value2,key3=value3;propertyKey=propertyValue");
}

TEST(ParseBaggage, SpecHeaderExamples) {
  const Baggage b = Parse("userId=alice,serverNode=DF%2028,isProduction=false");
  EXPECT_EQ(b.Get("userId"), "alice");
  EXPECT_EQ(b.Get("serverNode"), "DF 28");
  EXPECT_EQ(b.Get("isProduction"), "false");
  EXPECT_FALSE(b.Get("missing"));
  EXPECT_EQ(b.ToHeader(), "userId=alice,serverNode=DF%2028,isProduction=false");

  const Baggage spaced = Parse("userId =   alice,serverNode = DF%2028, isProduction = false");
  EXPECT_EQ(spaced, b);
}

TEST(ParseBaggage, EmptyHeaderIsEmptyBaggage) {
  EXPECT_TRUE(Parse("").empty());
  EXPECT_TRUE(Parse(" \t").empty());
}

TEST(ParseBaggage, EmptyValuesAreAllowed) {
  const Baggage b = Parse("a=,b= ;p");
  EXPECT_EQ(b.Get("a"), "");
  EXPECT_EQ(b.Get("b"), "");
  EXPECT_EQ(b.members()[1].properties, "p");
  EXPECT_EQ(b.ToHeader(), "a=,b=;p");
}

TEST(ParseBaggage, ValueMayContainEqualsSigns) {
  const Baggage b = Parse("token=abc==,x=a=b=c");
  EXPECT_EQ(b.Get("token"), "abc==");
  EXPECT_EQ(b.Get("x"), "a=b=c");
}

// What a header (one field line, or several joined with ',') becomes: the header we
// would send, and whether ParseBaggage reports dropped members. ParseBaggage never
// fails: a bad member costs only itself.
struct ListCase {
  std::string header;
  std::string sent;
  bool reports_drop;
};

void ExpectList(const ListCase& c) {
  const auto r = ParseBaggage(c.header);
  ASSERT_TRUE(r) << c.header;
  EXPECT_EQ(r.value->ToHeader(), c.sent) << c.header;
  EXPECT_EQ(!r.error.empty(), c.reports_drop) << c.header << ": " << r.error;
}

TEST(ParseBaggage, KeysAreTokens) {
  const ListCase cases[] = {
      {"!#$%&'*+-.^_`|~09azAZ=v", "!#$%&'*+-.^_`|~09azAZ=v", false},
      {"=v", "", true},
      {"a b=v", "", true},
      {"a\"b=v", "", true},
      {"a(b=v", "", true},
      {"a/b=v", "", true},
      {"k\xc3\xa9=v", "", true},
      {"a b=v,c=1", "c=1", true},
  };
  for (const auto& c : cases) ExpectList(c);
}

TEST(ParseBaggage, DropsMalformedMembersAlone) {
  const ListCase cases[] = {
      {"novalue", "", true},
      {"a=1,novalue,b=2", "a=1,b=2", true},
      {"a=two words,b=2", "b=2", true},
      {"a=1,b=quo\"te", "a=1", true},
      {"a=back\\slash,b=2", "b=2", true},
      {"a=tab\there,b=2", "b=2", true},
      {"a=caf\xc3\xa9,b=2", "b=2", true},
      {"a=1;,b=2", "b=2", true},
      {"a=1;;p,b=2", "b=2", true},
      {"a=1;=x,b=2", "b=2", true},
      {"a=1;p=x y,b=2", "b=2", true},
      {"a=1;p q,b=2", "b=2", true},
      {"a=%4g,b=%41", "b=A", true},
      {"a=1,b", "a=1", true},
      // Empty members carry nothing (they appear when field lines are joined).
      {"a=1,,b=2", "a=1,b=2", false},
      {"a=1,", "a=1", false},
      {",a=1", "a=1", false},
      {" , ,", "", false},
  };
  for (const auto& c : cases) ExpectList(c);
}

TEST(ParseBaggage, Properties) {
  const Baggage b = Parse("k=v ; p1 ; p2 = x ;p3=%41\t");
  ASSERT_EQ(b.members().size(), 1u);
  EXPECT_EQ(b.members()[0].value, "v");
  // Kept as raw text, trimmed at both ends.
  EXPECT_EQ(b.members()[0].properties, "p1 ; p2 = x ;p3=%41");
  EXPECT_EQ(b.ToHeader(), "k=v;p1 ; p2 = x ;p3=%41");
  EXPECT_EQ(Parse(b.ToHeader()), b);
}

TEST(ParseBaggage, KeepsDuplicateKeysInOrder) {
  const Baggage b = Parse("k=1,j=2,k=3");
  ASSERT_EQ(b.members().size(), 3u);
  EXPECT_EQ(b.Get("k"), "1");
  EXPECT_EQ(b.ToHeader(), "k=1,j=2,k=3");
}

TEST(PercentCoding, DecodesEscapesOfEitherCase) {
  const Baggage b = Parse("a=%41%62%2c%2C%25%3B%20x,b=%e2%82%ac");
  EXPECT_EQ(b.Get("a"), "Ab,,%; x");
  EXPECT_EQ(b.Get("b"), "\xe2\x82\xac");  // U+20AC EURO SIGN
  EXPECT_EQ(b.ToHeader(), "a=Ab%2C%2C%25%3B%20x,b=%E2%82%AC");
}

TEST(PercentCoding, DropsMembersWithMalformedEscapes) {
  for (std::string_view bad : {"a=%", "a=%4", "a=%4g", "a=%g4", "a=x%", "a=%%41", "a=%41%"}) {
    const auto r = ParseBaggage(std::string(bad) + ",b=1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value->ToHeader(), "b=1") << bad;
    EXPECT_NE(r.error.find("percent"), std::string_view::npos) << bad << ": " << r.error;
  }
}

TEST(PercentCoding, SpacesAndOtherOctetsAreEncodedOnTheWayOutAndDecodedOnTheWayIn) {
  Baggage b;
  ASSERT_TRUE(b.Set("serverNode", "DF 28"));
  ASSERT_TRUE(b.Set("note", "a,b;c\"d\\e"));
  EXPECT_EQ(b.ToHeader(), "serverNode=DF%2028,note=a%2Cb%3Bc%22d%5Ce");
  const Baggage back = Parse(b.ToHeader());
  EXPECT_EQ(back.Get("serverNode"), "DF 28");
  EXPECT_EQ(back.Get("note"), "a,b;c\"d\\e");
}

TEST(PercentCoding, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(Parse("a=%FF").Get("a"), fffd);
  EXPECT_EQ(Parse("a=x%C3").Get("a"), "x" + fffd);                   // truncated sequence
  EXPECT_EQ(Parse("a=%C3x").Get("a"), fffd + "x");
  EXPECT_EQ(Parse("a=%C0%AF").Get("a"), fffd + fffd);                 // overlong
  EXPECT_EQ(Parse("a=%ED%A0%80").Get("a"), fffd + fffd + fffd);       // surrogate
  EXPECT_EQ(Parse("a=%F4%90%80%80").Get("a"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(Parse("a=%E2%82").Get("a"), fffd);                        // one maximal subpart
  EXPECT_EQ(Parse("a=%F0%9F%98%80").Get("a"), "\xf0\x9f\x98\x80");    // U+1F600 is fine
  EXPECT_EQ(Parse("a=%F4%8F%BF%BF").Get("a"), "\xf4\x8f\xbf\xbf");    // U+10FFFF is fine
}

TEST(PercentCoding, RoundTripsArbitraryUtf8AndPercent) {
  Baggage b;
  const std::string value = "100% caf\xc3\xa9, \"quoted\"; back\\slash\ttab \xf0\x9f\x98\x80 =";
  ASSERT_TRUE(b.Set("note", value));
  const std::string header = b.ToHeader();
  EXPECT_EQ(header,
            "note=100%25%20caf%C3%A9%2C%20%22quoted%22%3B%20back%5Cslash%09tab%20%F0%9F%98%80%20=");
  const Baggage back = Parse(header);
  EXPECT_EQ(back.Get("note"), value);
  EXPECT_EQ(back, b);
}

TEST(PercentCoding, EncodesEveryByteOutsideBaggageOctet) {
  std::string all;
  for (int c = 0x20; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  Baggage b;
  ASSERT_TRUE(b.Set("k", all));
  const std::string header = b.ToHeader();
  for (char c : std::string_view(header).substr(2)) {
    EXPECT_TRUE(c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\') << c;
  }
  EXPECT_EQ(Parse(header).Get("k"), all);
}

std::string MembersHeader(std::size_t n, std::size_t from = 0) {
  std::string h;
  for (std::size_t i = from; i < from + n; ++i) {
    if (i != from) h += ',';
    h += "k" + std::to_string(i) + "=v";
  }
  return h;
}

TEST(BaggageLimits, MemberCount) {
  const auto ok = ParseBaggage(MembersHeader(Baggage::kMaxMembers));
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok.error.empty()) << ok.error;
  EXPECT_EQ(ok.value->members().size(), 64u);

  // The 65th and later members are dropped, the first 64 kept.
  const auto over = ParseBaggage(MembersHeader(Baggage::kMaxMembers + 10));
  ASSERT_TRUE(over);
  EXPECT_FALSE(over.error.empty());
  EXPECT_EQ(*over.value, *ok.value);

  // The limit is on the combined list: two lines of 40 make one list of 80. A malformed
  // member does not count.
  const auto joined = ParseBaggage("bad key=1," + MembersHeader(40) + ", " + MembersHeader(40, 40));
  ASSERT_TRUE(joined);
  EXPECT_EQ(*joined.value, *ok.value);

  Baggage b = *ok.value;
  EXPECT_FALSE(b.Set("one-more", "v"));
  EXPECT_EQ(b.members().size(), 64u);
  EXPECT_TRUE(b.Set("k3", "replaced")) << "replacing does not add a member";
  EXPECT_EQ(b.Get("k3"), "replaced");
}

TEST(BaggageLimits, HeaderBytes) {
  const std::string fits = "k=" + std::string(Baggage::kMaxBytes - 2, 'v');
  const std::string over = "k=" + std::string(Baggage::kMaxBytes - 1, 'v');
  const ListCase cases[] = {
      // 8192 bytes exactly is fine, one more is not.
      {fits, fits, false},
      {over, "", true},
      // Surrounding whitespace is not part of the value.
      {"  " + fits + "  ", fits, false},
      // A member that would take the list past the limit is dropped; a later one that
      // still fits is kept.
      {"a=1," + fits + ",b=2", "a=1,b=2", true},
      // The limit is on the combined list: two lines of 5000 bytes.
      {"a=" + std::string(4998, 'v') + ", b=" + std::string(4998, 'v') + ",c=1",
       "a=" + std::string(4998, 'v') + ",c=1", true},
  };
  for (const auto& c : cases) ExpectList(c);

  Baggage b;
  EXPECT_TRUE(b.Set("k", std::string(Baggage::kMaxBytes - 2, 'v')));
  EXPECT_EQ(b.ToHeader().size(), Baggage::kMaxBytes);
  EXPECT_FALSE(b.Set("j", "x"));
  Baggage c;
  EXPECT_FALSE(c.Set("k", std::string(Baggage::kMaxBytes - 1, 'v')));
  // The limit applies to the encoded size: a space costs three bytes.
  EXPECT_TRUE(Baggage().Set("k", std::string((Baggage::kMaxBytes - 2) / 3, ' ')));
  EXPECT_FALSE(c.Set("k", std::string((Baggage::kMaxBytes - 2) / 3 + 1, ' ')));
  EXPECT_TRUE(c.empty());
}

TEST(BaggageLimits, DecodedReplacementCharactersCountAgainstTheLimit) {
  // 2000 invalid bytes arrive as 6002 bytes but would leave as 18002.
  std::string h = "a=1,k=";
  for (int i = 0; i < 2000; ++i) h += "%FF";
  const auto r = ParseBaggage(h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value->ToHeader(), "a=1");
  EXPECT_FALSE(r.error.empty());
}

TEST(BaggageMutation, SetAddsReplacesAndValidates) {
  Baggage b;
  EXPECT_TRUE(b.Set("userId", "alice"));
  EXPECT_TRUE(b.Set("tier", "gold", " ttl=60 ; shared "));
  EXPECT_EQ(b.ToHeader(), "userId=alice,tier=gold;ttl=60 ; shared");
  EXPECT_TRUE(b.Set("userId", "bob"));
  EXPECT_EQ(b.ToHeader(), "userId=bob,tier=gold;ttl=60 ; shared");

  const Baggage before = b;
  EXPECT_FALSE(b.Set("", "v"));
  EXPECT_FALSE(b.Set("bad key", "v"));
  EXPECT_FALSE(b.Set("k\xc3\xa9", "v"));
  EXPECT_FALSE(b.Set("k", "v", "not a property"));
  EXPECT_FALSE(b.Set("k", "v", "p;"));
  EXPECT_FALSE(b.Set("k", "v", "p,q"));
  EXPECT_EQ(b, before);
}

TEST(BaggageMutation, SetCollapsesDuplicates) {
  Baggage b = Parse("k=1,j=2,k=3");
  EXPECT_TRUE(b.Set("k", "4"));
  EXPECT_EQ(b.ToHeader(), "k=4,j=2");
}

TEST(BaggageMutation, Erase) {
  Baggage b = Parse("k=1,j=2,k=3");
  EXPECT_TRUE(b.Erase("k"));
  EXPECT_FALSE(b.Erase("k"));
  EXPECT_EQ(b.ToHeader(), "j=2");
  EXPECT_TRUE(b.Erase("j"));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.ToHeader(), "");
}

TEST(ParseBaggage, RoundTrips) {
  for (std::string_view h : {"a=1", " a = %20x%20 ; p ; q=1 , b=%E2%82%AC", "k=%FFv;x",
                             "!#$%&'*+-.^_`|~=!#$&'()*+-./:<=>?@[]^_`{|}~", "a=,b="}) {
    const auto first = ParseBaggage(h);
    ASSERT_TRUE(first) << h << ": " << first.error;
    const std::string formatted = first.value->ToHeader();
    const auto second = ParseBaggage(formatted);
    ASSERT_TRUE(second) << formatted << ": " << second.error;
    EXPECT_EQ(*second.value, *first.value) << formatted;
    EXPECT_EQ(second.value->ToHeader(), formatted);
  }
}

}  // namespace
}  // namespace vigil::telemetry

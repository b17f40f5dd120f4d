// Entity tags: the strong tag's form and stability, and If-None-Match per RFC 9110
// section 13.1.2 (weak comparison, lists, "*").
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <vigil/http/etag.hpp>

namespace vigil::http {
namespace {

TEST(StrongEtag, QuotedSixteenHexDigits) {
  for (std::string_view body : {std::string_view(""), std::string_view("a"),
                                std::string_view(R"({"id":"01J","stock":3})")}) {
    const std::string tag = StrongEtag(body);
    ASSERT_EQ(tag.size(), 18u) << tag;
    EXPECT_EQ(tag.front(), '"');
    EXPECT_EQ(tag.back(), '"');
    for (std::size_t i = 1; i < 17; ++i) {
      EXPECT_TRUE((tag[i] >= '0' && tag[i] <= '9') || (tag[i] >= 'a' && tag[i] <= 'f')) << tag;
    }
  }
}

TEST(StrongEtag, DeterministicAndStableAcrossBuilds) {
  EXPECT_EQ(StrongEtag("hello"), StrongEtag(std::string("hel") + "lo"));
  // Fixed values: replicas and releases must agree, so the function may never change.
  EXPECT_EQ(StrongEtag(""), StrongEtag(std::string_view()));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(BodyHash("hello")));
  EXPECT_EQ(StrongEtag("hello"), "\"" + std::string(hex) + "\"");
  EXPECT_EQ(BodyHash("hello"), BodyHash("hello"));
  EXPECT_EQ(StrongEtag(R"({"id":"1","stock":5})"), StrongEtag(R"({"id":"1","stock":5})"));
}

TEST(StrongEtag, SmallChangesChangeTheTag) {
  std::set<std::string> tags;
  std::string body = R"({"id":"01JD000000","name":"widget","price_cents":1999,"stock":10})";
  tags.insert(StrongEtag(body));
  // Every single-character change of the body, and every length: all distinct.
  for (std::size_t i = 0; i < body.size(); ++i) {
    std::string changed = body;
    changed[i] = static_cast<char>(changed[i] ^ 1);
    tags.insert(StrongEtag(changed));
  }
  for (std::size_t n = 0; n < body.size(); ++n) tags.insert(StrongEtag(body.substr(0, n)));
  EXPECT_EQ(tags.size(), 1 + 2 * body.size());
  // Trailing zero bytes are not the same as a shorter body.
  EXPECT_NE(StrongEtag(std::string_view("ab\0", 3)), StrongEtag("ab"));
}

TEST(IfNoneMatch, ExactAndWeakComparison) {
  EXPECT_TRUE(IfNoneMatchMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("\"abc\"", "W/\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("W/\"abc\"", "W/\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"abd\"", "\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"ABC\"", "\"abc\"")) << "opaque tags are case-sensitive";
  EXPECT_FALSE(IfNoneMatchMatches("\"\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("\"\"", "\"\""));
}

TEST(IfNoneMatch, Lists) {
  EXPECT_TRUE(IfNoneMatchMatches("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\",W/\"abc\",\"y\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches(" \"x\" ,\t\"abc\" ", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches(",,\"abc\",", "\"abc\"")) << "empty list elements";
  EXPECT_FALSE(IfNoneMatchMatches("\"x\", \"y\"", "\"abc\""));
  // A comma is a valid etagc: it belongs to the tag, not the list.
  EXPECT_TRUE(IfNoneMatchMatches("\"a,b\"", "\"a,b\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"a,b\"", "\"a\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"a,b\"", "\"b\""));
}

TEST(IfNoneMatch, Star) {
  EXPECT_TRUE(IfNoneMatchMatches("*", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("  *  ", "W/\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("*, \"x\"", "\"abc\"")) << "\"*\" stands alone";
}

TEST(IfNoneMatch, MalformedNeverMatches) {
  EXPECT_FALSE(IfNoneMatchMatches("", "\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("abc", "\"abc\"")) << "unquoted";
  EXPECT_FALSE(IfNoneMatchMatches("\"abc", "\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("w/\"abc\"", "\"abc\"")) << "W/ is case-sensitive";
  EXPECT_FALSE(IfNoneMatchMatches("W/ \"abc\"", "\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"ab c\"", "\"ab c\"")) << "space is not an etagc";
  EXPECT_FALSE(IfNoneMatchMatches("\"x\" \"abc\"", "\"abc\"")) << "missing comma";
  EXPECT_FALSE(IfNoneMatchMatches("garbage, \"abc\"", "\"abc\""));
  // Reading stops at the first malformed element; a match before it still counts.
  EXPECT_TRUE(IfNoneMatchMatches("\"abc\", garbage", "\"abc\""));
  // Our own tag must be well-formed to match anything.
  EXPECT_FALSE(IfNoneMatchMatches("*", "abc"));
  EXPECT_FALSE(IfNoneMatchMatches("\"abc\"", ""));
}

TEST(IfNoneMatch, WithStrongEtag) {
  const std::string tag = StrongEtag("{\"id\":\"1\"}");
  EXPECT_TRUE(IfNoneMatchMatches(tag, tag));
  EXPECT_TRUE(IfNoneMatchMatches("W/" + tag, tag));
  EXPECT_FALSE(IfNoneMatchMatches(StrongEtag("{\"id\":\"2\"}"), tag));
}

}  // namespace
}  // namespace vigil::http

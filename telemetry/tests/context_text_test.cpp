// The shared ASCII grammar helpers (vigil/telemetry/text.hpp): the pieces that the
// Accept, Accept-Encoding and W3C readers all rely on.
#include <gtest/gtest.h>

#include <optional>
#include <string_view>
#include <vigil/telemetry/text.hpp>

namespace {

using vigil::telemetry::text::IsTokenChar;
using vigil::telemetry::text::ParseQvalue;
using vigil::telemetry::text::TrimOws;
using vigil::telemetry::text::Utf8Prefix;

TEST(TextTest, QvaluesAreThousandths) {
  EXPECT_EQ(ParseQvalue("0"), 0);
  EXPECT_EQ(ParseQvalue("1"), 1000);
  EXPECT_EQ(ParseQvalue("0."), 0);
  EXPECT_EQ(ParseQvalue("1."), 1000);
  EXPECT_EQ(ParseQvalue("0.5"), 500);
  EXPECT_EQ(ParseQvalue("0.05"), 50);
  EXPECT_EQ(ParseQvalue("0.123"), 123);
  EXPECT_EQ(ParseQvalue("0.999"), 999);
  EXPECT_EQ(ParseQvalue("1.000"), 1000);
}

TEST(TextTest, AnythingOutsideTheQvalueGrammarIsRefused) {
  for (std::string_view bad : {"", "2", "1.5", "1.001", "0.1234", ".5", "0,5", "-0", "+1", " 0.5",
                               "0.5 ", "0.a", "1e0", "01", "00.5", "0.5;"}) {
    EXPECT_EQ(ParseQvalue(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(TextTest, OwsIsSpaceAndTabOnly) {
  EXPECT_EQ(TrimOws(" \tgzip\t "), "gzip");
  EXPECT_EQ(TrimOws("\r\ngzip"), "\r\ngzip");
  EXPECT_EQ(TrimOws("  "), "");
}

TEST(TextTest, TokenCharsAreRfc9110Tchars) {
  for (char c : std::string_view("!#$%&'*+-.^_`|~09azAZ")) EXPECT_TRUE(IsTokenChar(c)) << c;
  for (char c : std::string_view(" \t\",;=()/<>?@[]\\{}\x7f")) EXPECT_FALSE(IsTokenChar(c)) << c;
  EXPECT_FALSE(IsTokenChar('\0'));
}

TEST(TextTest, Utf8PrefixNeverSplitsACharacter) {
  const std::string_view s = "caf\xC3\xA9 \xF0\x9F\x98\x80!";  // "café 😀!"
  EXPECT_EQ(Utf8Prefix(s, 100), s);
  EXPECT_EQ(Utf8Prefix(s, s.size()), s);
  EXPECT_EQ(Utf8Prefix(s, 3), "caf");
  EXPECT_EQ(Utf8Prefix(s, 4), "caf");  // not the first byte of U+00E9
  EXPECT_EQ(Utf8Prefix(s, 5), "caf\xC3\xA9");
  for (std::size_t n = 7; n <= 9; ++n) EXPECT_EQ(Utf8Prefix(s, n), "caf\xC3\xA9 ") << n;
  EXPECT_EQ(Utf8Prefix(s, 10), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(Utf8Prefix(s, 0), "");
}

}  // namespace

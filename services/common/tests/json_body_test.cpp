#include <gtest/gtest.h>

#include <cstdint>
#include <vigil/http/exchange.hpp>
#include <vigil/service/json_body.hpp>

namespace vigil::service {
namespace {

// The status and detail of the HttpError `f` throws.
template <typename F>
std::pair<unsigned, std::string> ErrorOf(F&& f) {
  try {
    f();
  } catch (const http::HttpError& e) {
    return {e.status(), e.what()};
  }
  return {0, ""};
}

TEST(JsonBodyTest, MalformedOrNonObjectBodiesAre400) {
  for (std::string_view body : {"", "{", "[1]", "\"text\"", "{\"a\":}", "nul"}) {
    EXPECT_EQ(ErrorOf([&] { ParseJsonObject(body); }).first, 400u) << body;
  }
  // Nesting beyond the limit is refused, not recursed into.
  EXPECT_EQ(ErrorOf([] { ParseJsonObject(std::string(100, '[') + std::string(100, ']')); }).first,
            400u);
  // The detail says where parsing stopped.
  EXPECT_EQ(ErrorOf([] { ParseJsonObject(R"({"a":1,})"); }).second,
            "the body is not valid JSON: syntax error at byte 7");
}

// The body's object and kMaxJsonDepth - 1 levels inside it are read; one more is refused,
// saying so.
TEST(JsonBodyTest, NestingIsBoundedAtTheStatedDepth) {
  auto nested = [](std::size_t depth) {
    std::string body = "{\"a\":";
    body += std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
    return body;
  };
  EXPECT_NO_THROW(ParseJsonObject(nested(kMaxJsonDepth)));
  const auto [status, detail] = ErrorOf([&] { ParseJsonObject(nested(kMaxJsonDepth + 1)); });
  EXPECT_EQ(status, 400u);
  EXPECT_EQ(detail, "the body nests arrays and objects deeper than 16 levels");
}

TEST(JsonBodyTest, TextThatIsNotUtf8OrHoldsNulIsRefusedNamingTheField) {
  // Bytes that are not UTF-8 (a lone continuation byte, an overlong '/', a surrogate
  // written in UTF-8, a truncated sequence) in a string: 400 naming the field.
  for (std::string_view bad : {"\x80", "\xC0\xAF", "\xED\xA0\x80", "\xE2\x82"}) {
    JsonReader r(ParseJsonObject("{\"lines\":[{\"name\":\"a" + std::string(bad) + "\"}]}"));
    auto lines = r.Objects("lines", 1, 1);
    EXPECT_EQ(ErrorOf([&] { lines[0].String("name", 0, 10); }),
              std::make_pair(400u, std::string("lines[0].name: must be valid UTF-8")));
  }
  // A lone surrogate written as an escape is not JSON at all.
  EXPECT_EQ(ErrorOf([] { ParseJsonObject(R"({"name":"\ud800"})"); }).first, 400u);
  JsonReader nul(ParseJsonObject(R"({"name":"a\u0000b"})"));
  EXPECT_EQ(ErrorOf([&] { nul.String("name", 0, 10); }),
            std::make_pair(422u, std::string("name: must not contain U+0000")));
  // A field name that is not UTF-8 is not echoed.
  JsonReader key(ParseJsonObject("{\"\xFF\":1}"));
  EXPECT_EQ(ErrorOf([&] { key.RejectUnknown(); }),
            std::make_pair(400u, std::string("a field name is not valid UTF-8")));
}

TEST(JsonBodyTest, Utf8LengthCountsCodePointsOfValidUtf8Only) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(Utf8Length(std::string_view("a\0b", 3)), 3u) << "U+0000 is UTF-8";
  for (std::string_view bad : {"\xFF", "\xC3", "\xC1\xBF", "\xE0\x80\x80", "\xED\xBF\xBF",
                               "\xF4\x90\x80\x80", "\xF0\x80\x80\x80", "a\x80"}) {
    EXPECT_EQ(Utf8Length(bad), std::nullopt) << bad;
  }
}

TEST(JsonBodyTest, FieldsAreReadStrictlyAndErrorsNameThem) {
  JsonReader r(ParseJsonObject(R"({"name":"Lamp","price":250,"whole":3.0,"big":1e300,
                                   "neg":-1,"text":"5","lines":[{"q":1},{"q":"x"}]})"));
  EXPECT_EQ(r.String("name", 1, 10), "Lamp");
  EXPECT_EQ(r.Integer("price", 0, 1000), 250);
  EXPECT_EQ(r.Integer("whole", 0, 10), 3);
  auto [status, detail] = ErrorOf([&] { r.Integer("big", 0, 10); });
  EXPECT_EQ(status, 422u);
  EXPECT_EQ(detail, "big: must be an integer between 0 and 10");
  EXPECT_EQ(ErrorOf([&] { r.Integer("neg", 0, 10); }).second,
            "neg: must be an integer between 0 and 10");
  EXPECT_EQ(ErrorOf([&] { r.Integer("text", 0, 10); }).first, 422u);
  EXPECT_EQ(ErrorOf([&] { r.String("missing", 1, 2); }).second, "missing: is required");
  EXPECT_EQ(ErrorOf([&] { r.String("name", 5, 10); }).second,
            "name: must be a string of 5 to 10 characters");
  auto lines = r.Objects("lines", 1, 5);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].Integer("q", 1, 9), 1);
  EXPECT_EQ(ErrorOf([&] { lines[1].Integer("q", 1, 9); }).second,
            "lines[1].q: must be an integer between 1 and 9");
}

TEST(JsonBodyTest, UnknownFieldsAreNamed) {
  JsonReader r(ParseJsonObject(R"({"name":"a","colour":"red"})"));
  r.String("name", 1, 5);
  EXPECT_EQ(ErrorOf([&] { r.RejectUnknown(); }).second, "colour: is not a known field");
  JsonReader ok(ParseJsonObject(R"({"name":"a"})"));
  ok.String("name", 1, 5);
  EXPECT_NO_THROW(ok.RejectUnknown());
}

TEST(JsonBodyTest, ALongUnknownFieldIsCutOnACharacterBoundary) {
  // 63 ASCII bytes then a two-byte character: a 64-byte cut would keep half of it.
  const std::string key = std::string(63, 'k') + "\xC3\xA9tail";
  JsonReader r(ParseJsonObject("{\"" + key + "\":1}"));
  EXPECT_EQ(ErrorOf([&] { r.RejectUnknown(); }).second,
            std::string(63, 'k') + ": is not a known field");
}

TEST(JsonBodyTest, FloatsFarOutsideTheIntegerRangeAreRefusedWithoutConverting) {
  JsonReader r(ParseJsonObject(R"({"a":1e300,"b":-1e300,"c":9.3e18,"d":-9.3e18,"e":1e18})"));
  for (const char* key : {"a", "b", "c", "d"}) {
    EXPECT_EQ(ErrorOf([&] { r.Integer(key, INT64_MIN, INT64_MAX); }).first, 422u) << key;
  }
  EXPECT_EQ(r.Integer("e", 0, INT64_MAX), 1'000'000'000'000'000'000);
}

TEST(JsonBodyTest, LengthsCountCharactersNotBytes) {
  JsonReader r(ParseJsonObject(R"({"name":"\u00e9t\u00e9"})"));  // 3 characters, 5 bytes
  EXPECT_EQ(r.String("name", 3, 3), "\xC3\xA9t\xC3\xA9");
}

TEST(JsonBodyTest, AQueryParameterGivenTwiceIsRefusedNamingIt) {
  for (std::string_view query : {"a=1&a=2", "a=1&a=1", "a&a", "a=1&b=2&%61=3", "a=1&a=%zz"}) {
    EXPECT_EQ(ErrorOf([&] { QueryParam(query, "a"); }),
              std::make_pair(400u, std::string("a: must be given once")))
        << query;
  }
  EXPECT_EQ(QueryParam("a=1&b=2&b=3", "a"), "1") << "another name's repetition is its own";
}

TEST(JsonBodyTest, QueryParametersAreDecoded) {
  EXPECT_EQ(QueryParam("q=red+lamp&limit=5", "q"), "red lamp");
  EXPECT_EQ(QueryParam("q=red+lamp&limit=5", "limit"), "5");
  EXPECT_EQ(QueryParam("a=%2F%c3%a9", "a"), "/\xC3\xA9");
  EXPECT_EQ(QueryParam("flag&x=1", "flag"), "");
  EXPECT_EQ(QueryParam("x=1", "y"), std::nullopt);
  EXPECT_EQ(QueryParam("", "y"), std::nullopt);
  EXPECT_EQ(ErrorOf([] { QueryParam("a=%zz", "a"); }),
            std::make_pair(400u, std::string("a: malformed percent-encoding")));
  EXPECT_EQ(ErrorOf([] { QueryParam("a=%2", "a"); }).first, 400u);
  EXPECT_EQ(ErrorOf([] { QueryParam("a=1&b=%zz", "a"); }).first, 0u) << "b's value is not read";
  EXPECT_EQ(QueryParam("a=%FF", "a"), "\xFF") << "any bytes: the caller checks the value";
  EXPECT_EQ(DecodePathSegment("a%20b"), "a b");
  EXPECT_EQ(DecodePathSegment("a+b"), "a+b");
}

}  // namespace
}  // namespace vigil::service

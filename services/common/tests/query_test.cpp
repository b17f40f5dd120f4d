// QueryLimit: the default when absent, the bounds, and a problem naming `limit` for
// everything a client can get wrong.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vigil/http/exchange.hpp>
#include <vigil/service/query.hpp>

namespace vigil::service {
namespace {

constexpr std::int64_t kDefault = 20;
constexpr std::int64_t kMax = 100;

// The status and detail QueryLimit throws for `query`; {0, ""} when it returns.
std::pair<unsigned, std::string> Refusal(std::string_view query) {
  try {
    (void)QueryLimit(query, kDefault, kMax);
  } catch (const http::HttpError& e) {
    return {e.status(), e.what()};
  }
  return {0, ""};
}

TEST(QueryLimitTest, TheDefaultWhenAbsent) {
  EXPECT_EQ(QueryLimit("", kDefault, kMax), kDefault);
  EXPECT_EQ(QueryLimit("q=lamp&cursor=abc", kDefault, kMax), kDefault);
  EXPECT_EQ(QueryLimit("limits=5&xlimit=6", kDefault, kMax), kDefault) << "other names";
}

TEST(QueryLimitTest, AcceptsEveryValueWithinTheBounds) {
  EXPECT_EQ(QueryLimit("limit=1", kDefault, kMax), 1);
  EXPECT_EQ(QueryLimit("limit=100", kDefault, kMax), 100);
  EXPECT_EQ(QueryLimit("q=a&limit=42&cursor=x", kDefault, kMax), 42);
  EXPECT_EQ(QueryLimit("limit=007", kDefault, kMax), 7) << "leading zeros are digits";
  EXPECT_EQ(QueryLimit("limit=%35", kDefault, kMax), 5) << "percent-encoded digits";
  EXPECT_EQ(QueryLimit("l%69mit=9", kDefault, kMax), 9) << "a percent-encoded name";
  EXPECT_EQ(QueryLimit("limit=9223372036854775807", kDefault, INT64_MAX), INT64_MAX);
}

TEST(QueryLimitTest, EveryBadValueIsA422NamingTheField) {
  const std::string detail = "limit: must be an integer between 1 and 100";
  for (const char* query :
       {"limit=0", "limit=101", "limit=-1", "limit=+5", "limit=", "limit", "limit=abc", "limit=1.5",
        "limit=1e2", "limit=%20", "limit=5%00", "limit=0x10", "limit=99999999999999999999999999999",
        "limit=18446744073709551621", "limit=9223372036854775808"}) {
    EXPECT_EQ(Refusal(query), std::make_pair(422u, detail)) << query;
  }
  EXPECT_EQ(Refusal("limit=5&q=x%zz").first, 0u) << "another parameter is not read here";
  try {
    (void)QueryLimit("limit=9223372036854775808", kDefault, INT64_MAX);
    ADD_FAILURE() << "accepted a value past INT64_MAX";
  } catch (const http::HttpError& e) {
    EXPECT_EQ(e.status(), 422u);
  }
}

TEST(QueryLimitTest, ARepeatedLimitIsA400) {
  for (const char* query :
       {"limit=5&limit=5", "limit=5&limit=500", "limit=5&q=a&l%69mit=6", "limit=abc&limit="}) {
    EXPECT_EQ(Refusal(query), std::make_pair(400u, std::string("limit: must be given once")))
        << query;
  }
}

TEST(QueryLimitTest, MalformedEncodingIsA400) {
  EXPECT_EQ(Refusal("limit=%zz").first, 400u);
  EXPECT_EQ(Refusal("limit=%2").first, 400u);
}

}  // namespace
}  // namespace vigil::service

// The pure parts of an order: reading a create request, the Idempotency-Key rules, the
// request fingerprint, timestamps and the JSON shape.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <vigil/http/exchange.hpp>

#include "model.hpp"

namespace vigil::orders {
namespace {

namespace json = boost::json;

constexpr std::string_view kA = "0193a1c2d3e4aaaaaaaaaaaaaaaa";
constexpr std::string_view kB = "0193a1c2d3e4bbbbbbbbbbbbbbbb";

std::vector<LineRequest> Read(std::string_view body) {
  return ReadCreateOrder(json::parse(body).as_object());
}

// The detail of the 422 that reading `body` throws ("" if it does not).
std::string Rejection(std::string_view body) {
  try {
    Read(body);
  } catch (const http::HttpError& e) {
    EXPECT_EQ(e.status(), 422u) << body;
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << body;
  return "";
}

TEST(ReadCreateOrderTest, ReturnsTheLinesSortedByItem) {
  const auto lines =
      Read(R"({"lines":[{"item_id":")" + std::string(kB) +
           R"(","quantity":2},{"quantity":1000,"item_id":")" + std::string(kA) + R"("}]})");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], (LineRequest{std::string(kA), 1000}));
  EXPECT_EQ(lines[1], (LineRequest{std::string(kB), 2}));
}

TEST(ReadCreateOrderTest, NamesTheFieldOfEveryRejection) {
  const std::string a(kA);
  EXPECT_EQ(Rejection("{}"), "lines: is required");
  EXPECT_EQ(Rejection(R"({"lines":[]})"), "lines: must be an array of 1 to 50 objects");
  EXPECT_EQ(Rejection(R"({"lines":{}})"), "lines: must be an array of 1 to 50 objects");
  EXPECT_EQ(Rejection(R"({"lines":[7]})"), "lines[0]: must be an object");
  EXPECT_EQ(Rejection(R"({"lines":[{"quantity":1}]})"), "lines[0].item_id: is required");
  EXPECT_EQ(Rejection(R"({"lines":[{"item_id":"abc","quantity":1}]})"),
            "lines[0].item_id: must be an item id (28 lowercase hex digits)");
  EXPECT_EQ(Rejection(R"({"lines":[{"item_id":")" + a + R"(X","quantity":1}]})"),
            "lines[0].item_id: must be an item id (28 lowercase hex digits)");
  EXPECT_EQ(Rejection(R"({"lines":[{"item_id":7,"quantity":1}]})"),
            "lines[0].item_id: must be a string of 0 to 1024 characters");
  EXPECT_EQ(Rejection(R"({"lines":[{"item_id":")" + a + R"("}]})"),
            "lines[0].quantity: is required");
  for (const char* quantity : {"0", "1001", "-1", "1.5", "\"2\"", "null", "true"}) {
    EXPECT_EQ(Rejection(R"({"lines":[{"item_id":")" + a + R"(","quantity":)" + quantity + "}]}"),
              "lines[0].quantity: must be an integer between 1 and 1000")
        << quantity;
  }
  EXPECT_EQ(Rejection(R"({"lines":[{"item_id":")" + a + R"(","quantity":1,"note":"x"}]})"),
            "lines[0].note: is not a known field");
  EXPECT_EQ(Rejection(R"({"lines":[{"item_id":")" + a + R"(","quantity":1}],"coupon":"x"})"),
            "coupon: is not a known field");
  EXPECT_EQ(
      Rejection(R"({"lines":[{"item_id":")" + a + R"(","quantity":1},{"item_id":")" +
                std::string(kB) + R"(","quantity":1},{"item_id":")" + a + R"(","quantity":3}]})"),
      "lines[2].item_id: the item is already in lines[0]; use one line per item");
}

TEST(ReadCreateOrderTest, AcceptsFiftyLinesAndNotFiftyOne) {
  auto body = [](int n) {
    std::string out = R"({"lines":[)";
    for (int i = 0; i < n; ++i) {
      char id[29];
      std::snprintf(id, sizeof id, "0193a1c2d3e4%016x", i);
      out += (i > 0 ? "," : "") + std::string(R"({"item_id":")") + id + R"(","quantity":1})";
    }
    return out + "]}";
  };
  EXPECT_EQ(Read(body(50)).size(), 50u);
  EXPECT_EQ(Rejection(body(51)), "lines: must be an array of 1 to 50 objects");
}

TEST(IdempotencyKeyTest, VisibleAsciiOfOneTo255Characters) {
  EXPECT_TRUE(IsValidIdempotencyKey("a"));
  EXPECT_TRUE(IsValidIdempotencyKey("8e0f3c1a-55b4-4c1e-9d7e-3f2b1a0c9d8e"));
  EXPECT_TRUE(IsValidIdempotencyKey("!~{}\"'"));
  EXPECT_TRUE(IsValidIdempotencyKey(std::string(255, 'k')));
  EXPECT_FALSE(IsValidIdempotencyKey(""));
  EXPECT_FALSE(IsValidIdempotencyKey(std::string(256, 'k')));
  EXPECT_FALSE(IsValidIdempotencyKey("two words"));
  EXPECT_FALSE(IsValidIdempotencyKey("tab\there"));
  EXPECT_FALSE(IsValidIdempotencyKey("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidIdempotencyKey(std::string_view("nul\0", 4)));
}

TEST(RequestHashTest, IsTheSha256OfTheCanonicalLines) {
  // SHA-256 of the empty string.
  EXPECT_EQ(RequestHash({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::vector<LineRequest> two{{std::string(kA), 2}, {std::string(kB), 10}};
  EXPECT_EQ(RequestHash(two),  // "<kA>=2\n<kB>=10\n"
            "05929d46005c7edf3ec7ccde3cede9cc65c058574ecf958e72f4fabc94ae92d7");
  const std::vector<LineRequest> one{{std::string(kA), 2}};
  const std::string hash = RequestHash(one);
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(hash, RequestHash(std::vector<LineRequest>{{std::string(kA), 3}}));
  EXPECT_NE(hash, RequestHash(std::vector<LineRequest>{{std::string(kB), 2}}));
}

TEST(RequestHashTest, TheOrderOfTheLinesInTheBodyDoesNotMatter) {
  const auto ab =
      Read(R"({"lines":[{"item_id":")" + std::string(kA) + R"(","quantity":1},{"item_id":")" +
           std::string(kB) + R"(","quantity":2}]})");
  const auto ba =
      Read(R"({"lines":[{"item_id":")" + std::string(kB) + R"(","quantity":2},{"item_id":")" +
           std::string(kA) + R"(","quantity":1}]})");
  EXPECT_EQ(RequestHash(ab), RequestHash(ba));
}

TEST(FormatTimestampTest, Rfc3339InUtcWithMilliseconds) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimestamp(1'795'871'110'123), "2026-11-28T13:05:10.123Z");
  EXPECT_EQ(FormatTimestamp(951'782'400'007), "2000-02-29T00:00:00.007Z");
  EXPECT_EQ(FormatTimestamp(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
}

TEST(OrderJsonTest, HasTheDocumentedShape) {
  Order order;
  order.id = "0193a1c2d3e4f5a6b7c8d9e0f1a2";
  order.user_id = "u1";
  order.status = "confirmed";
  order.total_cents = 2750;
  order.created_at_ms = 0;
  order.lines = {{std::string(kA), 2, 1000}, {std::string(kB), 1, 750}};
  const json::value expected = json::parse(R"({
    "id": "0193a1c2d3e4f5a6b7c8d9e0f1a2", "status": "confirmed", "total_cents": 2750,
    "lines": [{"item_id": "0193a1c2d3e4aaaaaaaaaaaaaaaa", "quantity": 2, "price_cents": 1000},
              {"item_id": "0193a1c2d3e4bbbbbbbbbbbbbbbb", "quantity": 1, "price_cents": 750}],
    "created_at": "1970-01-01T00:00:00.000Z"})");
  EXPECT_EQ(json::value(OrderJson(order)), expected);
  EXPECT_EQ(OrderJson(order).if_contains("user_id"), nullptr) << "the caller knows who they are";
}

}  // namespace
}  // namespace vigil::orders

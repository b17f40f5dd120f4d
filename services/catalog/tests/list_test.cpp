// Listing items: pages in id order with an opaque cursor, name-prefix search, the
// category filter, their combination, and the refusals of bad parameters.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vigil/service/base64url.hpp>

#include "catalog_test_server.hpp"

namespace vigil::catalog {
namespace {

using testing::CatalogServer;
using testing::Detail;
using testing::ItemBody;
using testing::Json;

// Ids order by creation time to the millisecond; within one the order is random, so the
// expected listing is the ids sorted, not the order of creation.
std::vector<std::string> Sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

class ListTest : public ::testing::Test {
 protected:
  std::string Create(std::string_view name, std::string_view category) {
    const auto res =
        server_.Call("POST", "/items", ItemBody(name, category, 100, 1), server_.UserIdentity());
    EXPECT_EQ(res.result_int(), 201u) << res.body();
    return std::string(Json(res).at("id").as_string());
  }

  struct Page {
    std::vector<std::string> ids;
    std::vector<std::string> names;
    std::optional<std::string> next;
  };
  Page List(const std::string& query) {
    const auto res = server_.Call("GET", "/items" + query);
    EXPECT_EQ(res.result_int(), 200u) << query << " -> " << res.body();
    Page page;
    const auto body = Json(res).as_object();
    EXPECT_EQ(body.size(), 2u);
    for (const auto& item : body.at("items").as_array()) {
      page.ids.emplace_back(item.at("id").as_string());
      page.names.emplace_back(item.at("name").as_string());
    }
    if (!body.at("next_cursor").is_null())
      page.next = std::string(body.at("next_cursor").as_string());
    return page;
  }

  CatalogServer server_;
};

TEST_F(ListTest, EmptyCatalog) {
  const Page page = List("");
  EXPECT_TRUE(page.ids.empty());
  EXPECT_FALSE(page.next.has_value());
}

TEST_F(ListTest, PagesWithTheCursorVisitEveryItemOnceInIdOrder) {
  std::vector<std::string> created;
  for (int i = 0; i < 23; ++i) created.push_back(Create("item " + std::to_string(i), "tools"));

  std::vector<std::string> seen;
  std::string query = "?limit=5";
  int pages = 0;
  for (;;) {
    const Page page = List(query);
    ++pages;
    ASSERT_LE(page.ids.size(), 5u);
    seen.insert(seen.end(), page.ids.begin(), page.ids.end());
    if (!page.next) break;
    EXPECT_EQ(page.ids.size(), 5u) << "only the last page is short";
    query = "?limit=5&cursor=" + *page.next;
    ASSERT_LT(pages, 10) << "the cursor must move forward";
  }
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(seen, Sorted(created));
  // The cursor is the base64url of the last id, opaque to clients.
  const Page first = List("?limit=5");
  EXPECT_EQ(service::Base64UrlDecode(*first.next), first.ids.back());
}

TEST_F(ListTest, AnExactlyFullLastPageHasNoNextCursor) {
  for (int i = 0; i < 4; ++i) Create("x" + std::to_string(i), "t");
  const Page first = List("?limit=2");
  ASSERT_TRUE(first.next.has_value());
  const Page second = List("?limit=2&cursor=" + *first.next);
  EXPECT_EQ(second.ids.size(), 2u);
  EXPECT_FALSE(second.next.has_value()) << "no empty third page";
}

TEST_F(ListTest, DefaultLimitIsTwenty) {
  for (int i = 0; i < 21; ++i) Create("n" + std::to_string(i), "t");
  const Page page = List("");
  EXPECT_EQ(page.ids.size(), 20u);
  EXPECT_TRUE(page.next.has_value());
  EXPECT_EQ(List("?limit=100").ids.size(), 21u);
}

TEST_F(ListTest, NamePrefixAndCategory) {
  const std::string apple = Create("apple", "fruit");
  const std::string apricot = Create("apricot", "fruit");
  const std::string app_store = Create("app store", "software");
  const std::string banana = Create("banana", "fruit");
  const std::string upper = Create("Apple", "fruit");
  const std::string ap = Create("ap", "fruit");
  Create("aq", "fruit");

  EXPECT_EQ(List("?q=ap").ids, Sorted({apple, apricot, app_store, ap}));
  EXPECT_EQ(List("?q=app").ids, Sorted({apple, app_store}));
  EXPECT_EQ(List("?q=app+s").ids, (std::vector<std::string>{app_store})) << "'+' is a space";
  EXPECT_EQ(List("?q=app%20s").ids, (std::vector<std::string>{app_store}));
  EXPECT_EQ(List("?q=A").ids, (std::vector<std::string>{upper})) << "case-sensitive prefix";
  EXPECT_TRUE(List("?q=zzz").ids.empty());
  EXPECT_EQ(List("?category=fruit").ids.size(), 6u);
  EXPECT_EQ(List("?category=software").ids, (std::vector<std::string>{app_store}));
  EXPECT_TRUE(List("?category=none").ids.empty());
  EXPECT_EQ(List("?q=ap&category=fruit").ids, Sorted({apple, apricot, ap}));
  EXPECT_EQ(List("?q=app&category=fruit&limit=1").ids, std::vector<std::string>{apple});
  // Empty parameters filter nothing.
  EXPECT_EQ(List("?q=&category=").ids.size(), 7u);
  (void)banana;
}

TEST_F(ListTest, PrefixSearchPagesToo) {
  std::vector<std::string> matching;
  for (int i = 0; i < 7; ++i) {
    matching.push_back(Create("pear " + std::to_string(i), "fruit"));
    Create("plum " + std::to_string(i), "fruit");
  }
  std::vector<std::string> seen;
  std::string query = "?q=pea&limit=3";
  for (int guard = 0; guard < 10; ++guard) {
    const Page page = List(query);
    seen.insert(seen.end(), page.ids.begin(), page.ids.end());
    if (!page.next) break;
    query = "?q=pea&limit=3&cursor=" + *page.next;
  }
  EXPECT_EQ(seen, Sorted(matching));
}

TEST_F(ListTest, NonAsciiPrefixes) {
  const std::string cafe = Create("caf\xC3\xA9 noir", "drinks");
  const std::string cafe2 = Create("caf\xC3\xA9s", "drinks");
  Create("cafe", "drinks");
  Create("caf\xC3\xAA", "drinks");
  EXPECT_EQ(List("?q=caf%C3%A9").ids, Sorted({cafe, cafe2}));
}

TEST_F(ListTest, LargePagesAreCompressedWhenTheClientAsks) {
  for (int i = 0; i < 20; ++i) Create("a reasonably long item name " + std::to_string(i), "tools");
  const auto plain = server_.Call("GET", "/items?limit=20");
  ASSERT_GT(plain.body().size(), 1024u);
  EXPECT_EQ(plain["Content-Encoding"], "");
  const auto packed =
      server_.Call("GET", "/items?limit=20", {}, {}, {{"Accept-Encoding", "gzip, br"}});
  EXPECT_EQ(packed.result_int(), 200u);
  EXPECT_EQ(packed["Content-Encoding"], "br");
  EXPECT_EQ(packed["Vary"], "Accept-Encoding");
  EXPECT_LT(packed.body().size(), plain.body().size() / 3);
}

TEST_F(ListTest, BadParametersAreRefused) {
  for (const char* query : {"?limit=0", "?limit=101", "?limit=-1", "?limit=abc",
                            "?limit=", "?limit=1.5", "?limit=1000000000000000000000"}) {
    const auto res = server_.Call("GET", std::string("/items") + query);
    EXPECT_EQ(res.result_int(), 422u) << query;
    EXPECT_EQ(Detail(res).rfind("limit: ", 0), 0u) << query << " " << Detail(res);
  }
  for (const char* query : {"?cursor=!!!", "?cursor=abc", "?cursor=AAAA",
                            "?cursor=MDE5M2ExYzJkM2U0ZjVhNmI3YzhkOWUwZjFhMg%3D%3D"}) {
    const auto res = server_.Call("GET", std::string("/items") + query);
    EXPECT_EQ(res.result_int(), 422u) << query;
    EXPECT_EQ(Detail(res).rfind("cursor: ", 0), 0u) << query << " " << Detail(res);
  }
  // Each parameter once: a second value is refused, not ignored.
  for (const char* name : {"q", "category", "cursor", "limit"}) {
    const auto res = server_.Call("GET", std::string("/items?") + name + "=a&" + name + "=b");
    EXPECT_EQ(res.result_int(), 400u) << name;
    EXPECT_EQ(Detail(res), std::string(name) + ": must be given once");
  }
  for (const char* query : {"?category=Fruit", "?category=a%20b", "?category=a_b"}) {
    const auto res = server_.Call("GET", std::string("/items") + query);
    EXPECT_EQ(res.result_int(), 422u) << query;
    EXPECT_EQ(Detail(res).rfind("category: ", 0), 0u) << query;
  }
  const auto long_q = server_.Call("GET", "/items?q=" + std::string(201, 'a'));
  EXPECT_EQ(long_q.result_int(), 422u);
  EXPECT_EQ(Detail(long_q).rfind("q: ", 0), 0u);
  EXPECT_EQ(server_.Call("GET", "/items?q=" + std::string(200, 'a')).result_int(), 200u);
  for (const char* q : {"%FF", "%C3", "%00", "%ED%A0%80"}) {
    const auto res = server_.Call("GET", std::string("/items?q=") + q);
    EXPECT_EQ(res.result_int(), 422u) << q;
  }
  const auto malformed = server_.Call("GET", "/items?q=%zz");
  EXPECT_EQ(malformed.result_int(), 400u);
  EXPECT_EQ(Detail(malformed), "q: malformed percent-encoding");
}

TEST(PrefixUpperBoundTest, IncrementsTheLastCodePoint) {
  EXPECT_EQ(PrefixUpperBound("ab"), "ac");
  EXPECT_EQ(PrefixUpperBound("a"), "b");
  EXPECT_EQ(PrefixUpperBound("a\x7F"), "a\xC2\x80") << "U+007F -> U+0080";
  EXPECT_EQ(PrefixUpperBound("\xC3\xA9"), "\xC3\xAA") << "é -> ê";
  EXPECT_EQ(PrefixUpperBound("\xC2\xBF"), "\xC3\x80") << "stays valid UTF-8";
  EXPECT_EQ(PrefixUpperBound("\xDF\xBF"), "\xE0\xA0\x80") << "U+07FF -> U+0800";
  EXPECT_EQ(PrefixUpperBound("\xED\x9F\xBF"), "\xEE\x80\x80") << "skips the surrogates";
  EXPECT_EQ(PrefixUpperBound("\xEF\xBF\xBF"), "\xF0\x90\x80\x80");
  EXPECT_EQ(PrefixUpperBound("a\xF4\x8F\xBF\xBF"), "b") << "U+10FFFF carries";
  EXPECT_EQ(PrefixUpperBound("\xF4\x8F\xBF\xBF"), std::nullopt);
  EXPECT_EQ(PrefixUpperBound(""), std::nullopt);
  // Every string with the prefix sorts below the bound, bytewise.
  const std::string bound = *PrefixUpperBound("caf\xC3\xA9");
  for (const std::string s : {"caf\xC3\xA9", "caf\xC3\xA9\xF4\x8F\xBF\xBF", "caf\xC3\xA9zzz"}) {
    EXPECT_LT(s, bound);
  }
  EXPECT_GE(std::string("caf\xC3\xAA"), bound);
}

}  // namespace
}  // namespace vigil::catalog

// Items over HTTP: create, read, replace, delete; who may write; the validation table;
// ETags and 304; the read cache and its invalidation, as its metrics show.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vigil/http/etag.hpp>
#include <vigil/service/ids.hpp>

#include "catalog_test_server.hpp"

namespace vigil::catalog {
namespace {

using testing::CatalogServer;
using testing::Detail;
using testing::ItemBody;
using testing::Json;

class ItemsTest : public ::testing::Test {
 protected:
  // Creates an item and returns its id.
  std::string Create(std::string_view name = "Widget", std::string_view category = "tools",
                     std::int64_t price = 1999, std::int64_t stock = 10) {
    const auto res = server_.Call("POST", "/items", ItemBody(name, category, price, stock),
                                  server_.UserIdentity());
    EXPECT_EQ(res.result_int(), 201u) << res.body();
    return std::string(Json(res).at("id").as_string());
  }

  CatalogServer server_;
};

TEST_F(ItemsTest, CreateReadReplaceDelete) {
  const auto created =
      server_.Call("POST", "/items", ItemBody("Widget", "tools", 1999, 10), server_.UserIdentity());
  ASSERT_EQ(created.result_int(), 201u) << created.body();
  EXPECT_EQ(created["Content-Type"], "application/json");
  const auto item = Json(created).as_object();
  const std::string id(item.at("id").as_string());
  EXPECT_TRUE(service::IsValidId(id)) << id;
  EXPECT_EQ(item.at("name"), "Widget");
  EXPECT_EQ(item.at("category"), "tools");
  EXPECT_EQ(item.at("price_cents"), 1999);
  EXPECT_EQ(item.at("stock"), 10);
  EXPECT_EQ(item.size(), 5u) << "exactly id, name, category, price_cents, stock";

  const auto read = server_.Call("GET", "/items/" + id);
  ASSERT_EQ(read.result_int(), 200u);
  EXPECT_EQ(read.body(), created.body()) << "the same representation";

  const auto replaced = server_.Call("PUT", "/items/" + id, ItemBody("Gadget", "toys", 2500, 3),
                                     server_.UserIdentity());
  ASSERT_EQ(replaced.result_int(), 200u) << replaced.body();
  EXPECT_EQ(Json(replaced).at("name"), "Gadget");
  EXPECT_EQ(testing::Str(Json(replaced).at("id")), id);
  const auto reread = server_.Call("GET", "/items/" + id);
  EXPECT_EQ(Json(reread).at("category"), "toys");
  EXPECT_EQ(Json(reread).at("price_cents"), 2500);
  EXPECT_EQ(Json(reread).at("stock"), 3);

  const auto deleted = server_.Call("DELETE", "/items/" + id, {}, server_.UserIdentity());
  EXPECT_EQ(deleted.result_int(), 204u);
  EXPECT_TRUE(deleted.body().empty());
  EXPECT_EQ(deleted["Content-Type"], "");
  EXPECT_EQ(server_.Call("GET", "/items/" + id).result_int(), 404u);
  EXPECT_EQ(server_.Call("DELETE", "/items/" + id, {}, server_.UserIdentity()).result_int(), 404u);
  EXPECT_EQ(server_.Call("PUT", "/items/" + id, ItemBody("x", "y", 1, 1), server_.UserIdentity())
                .result_int(),
            404u);
}

TEST_F(ItemsTest, EachCreateGetsANewTimeOrderedId) {
  const std::string a = Create("A");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // ids order by the millisecond
  const std::string b = Create("B");
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
}

TEST_F(ItemsTest, MalformedOrUnknownIdsAreNotFound) {
  for (const char* id : {"nope", "0193A1C2D3E4F5A6B7C8D9E0F1A2", "0193a1c2d3e4f5a6b7c8d9e0f1a",
                         "0193a1c2d3e4f5a6b7c8d9e0f1a2b", "%30193a1c2d3e4f5a6b7c8d9e0f1a",
                         "0193a1c2d3e4f5a6b7c8d9e0f1a2"}) {
    const auto res = server_.Call("GET", std::string("/items/") + id);
    EXPECT_EQ(res.result_int(), 404u) << id;
    EXPECT_EQ(res["Content-Type"], "application/problem+json");
  }
  EXPECT_EQ(server_.Call("DELETE", "/items/bad", {}, server_.UserIdentity()).result_int(), 404u);
}

TEST_F(ItemsTest, WritesNeedAUser) {
  const std::string body = ItemBody("Widget", "tools", 1, 1);
  EXPECT_EQ(server_.Call("POST", "/items", body).result_int(), 401u);
  EXPECT_EQ(server_.Call("POST", "/items", body, "v1.user:u1.99999999999.forged").result_int(),
            401u);
  EXPECT_EQ(server_.Call("POST", "/items", body, server_.OrdersIdentity()).result_int(), 403u);
  const std::string id = Create();
  EXPECT_EQ(server_.Call("PUT", "/items/" + id, body).result_int(), 401u);
  EXPECT_EQ(server_.Call("DELETE", "/items/" + id).result_int(), 401u);
  // Reading needs no identity.
  EXPECT_EQ(server_.Call("GET", "/items/" + id).result_int(), 200u);
}

struct BadBody {
  const char* body;
  unsigned status;
  const char* field;  // the detail starts with "<field>:"; nullptr: not checked
};

class ItemValidationTest : public ItemsTest, public ::testing::WithParamInterface<BadBody> {};

TEST_P(ItemValidationTest, RefusedNamingTheField) {
  const BadBody& c = GetParam();
  for (const char* method : {"POST", "PUT"}) {
    const std::string target =
        std::string(method) == "POST" ? "/items" : "/items/0193a1c2d3e4f5a6b7c8d9e0f1a2";
    const auto res = server_.Call(method, target, c.body, server_.UserIdentity());
    EXPECT_EQ(res.result_int(), c.status) << method << " " << c.body << " -> " << res.body();
    EXPECT_EQ(res["Content-Type"], "application/problem+json");
    if (c.field != nullptr) {
      EXPECT_EQ(Detail(res).rfind(std::string(c.field) + ": ", 0), 0u)
          << c.body << " -> " << Detail(res);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ItemValidationTest,
    ::testing::Values(
        BadBody{R"({"name":"","category":"tools","price_cents":1,"stock":1})", 422, "name"},
        BadBody{R"({"category":"tools","price_cents":1,"stock":1})", 422, "name"},
        BadBody{R"({"name":7,"category":"tools","price_cents":1,"stock":1})", 422, "name"},
        BadBody{R"({"name":null,"category":"tools","price_cents":1,"stock":1})", 422, "name"},
        BadBody{R"({"name":"W","category":"Tools","price_cents":1,"stock":1})", 422, "category"},
        BadBody{R"({"name":"W","category":"to ols","price_cents":1,"stock":1})", 422, "category"},
        BadBody{R"({"name":"W","category":"to_ols","price_cents":1,"stock":1})", 422, "category"},
        BadBody{R"({"name":"W","category":"","price_cents":1,"stock":1})", 422, "category"},
        BadBody{R"({"name":"W","price_cents":1,"stock":1})", 422, "category"},
        BadBody{R"({"name":"W","category":"t","price_cents":-1,"stock":1})", 422, "price_cents"},
        BadBody{R"({"name":"W","category":"t","price_cents":1000000001,"stock":1})", 422,
                "price_cents"},
        BadBody{R"({"name":"W","category":"t","price_cents":1.5,"stock":1})", 422, "price_cents"},
        BadBody{R"({"name":"W","category":"t","price_cents":"10","stock":1})", 422, "price_cents"},
        BadBody{R"({"name":"W","category":"t","price_cents":18446744073709551615,"stock":1})", 422,
                "price_cents"},
        BadBody{R"({"name":"W","category":"t","stock":1})", 422, "price_cents"},
        BadBody{R"({"name":"W","category":"t","price_cents":1,"stock":-1})", 422, "stock"},
        BadBody{R"({"name":"W","category":"t","price_cents":1,"stock":1000000001})", 422, "stock"},
        BadBody{R"({"name":"W","category":"t","price_cents":1,"stock":true})", 422, "stock"},
        BadBody{R"({"name":"W","category":"t","price_cents":1})", 422, "stock"},
        BadBody{R"({"name":"W","category":"t","price_cents":1,"stock":1,"color":"red"})", 422,
                "color"},
        BadBody{R"({"name":"W","category":"t","price_cents":1,"stock":1,"id":"x"})", 422, "id"},
        // U+0000 is stored by neither database; bytes that are not UTF-8 are not JSON.
        BadBody{R"({"name":"W\u0000","category":"t","price_cents":1,"stock":1})", 422, "name"},
        BadBody{"{\"name\":\"W\xFF\",\"category\":\"t\",\"price_cents\":1,\"stock\":1}", 400,
                "name"},
        // Not JSON, or not an object: 400.
        BadBody{R"({"name":"W",)", 400, nullptr}, BadBody{"[1,2]", 400, nullptr},
        BadBody{"\"text\"", 400, nullptr}, BadBody{"", 400, nullptr},
        BadBody{R"({"name":"W"} trailing)", 400, nullptr}));

TEST_F(ItemsTest, LengthBoundsAreInclusive) {
  const std::string name200(200, 'n');
  const std::string category64(64, 'c');
  EXPECT_EQ(
      server_.Call("POST", "/items", ItemBody(name200, category64, 0, 0), server_.UserIdentity())
          .result_int(),
      201u);
  EXPECT_EQ(server_
                .Call("POST", "/items", ItemBody("W", "t", 1'000'000'000, 1'000'000'000),
                      server_.UserIdentity())
                .result_int(),
            201u);
  // 200 characters, not bytes: "é" is two bytes.
  std::string accented;
  for (int i = 0; i < 200; ++i) accented += "\xC3\xA9";
  EXPECT_EQ(server_.Call("POST", "/items", ItemBody(accented, "t", 1, 1), server_.UserIdentity())
                .result_int(),
            201u);
  const auto long_name = server_.Call("POST", "/items", ItemBody(std::string(201, 'n'), "t", 1, 1),
                                      server_.UserIdentity());
  EXPECT_EQ(long_name.result_int(), 422u);
  EXPECT_EQ(Detail(long_name).rfind("name: ", 0), 0u);
  const auto long_category = server_.Call(
      "POST", "/items", ItemBody("W", std::string(65, 'c'), 1, 1), server_.UserIdentity());
  EXPECT_EQ(long_category.result_int(), 422u);
  EXPECT_EQ(Detail(long_category).rfind("category: ", 0), 0u);
}

TEST_F(ItemsTest, NonJsonContentTypeIsRefused) {
  const auto res = server_.Call("POST", "/items", ItemBody("W", "t", 1, 1), server_.UserIdentity(),
                                {{"Content-Type", "text/plain"}});
  EXPECT_EQ(res.result_int(), 415u);
  // The media type is compared without case, parameters or surrounding whitespace, and
  // any +json structured syntax is JSON.
  int n = 0;
  for (const char* type : {"Application/JSON; charset=utf-8", "application/json \t;q=1",
                           "application/merge-patch+JSON"}) {
    const auto ok = server_.Call("POST", "/items", ItemBody("W" + std::to_string(n++), "t", 1, 1),
                                 server_.UserIdentity(), {{"Content-Type", type}});
    EXPECT_EQ(ok.result_int(), 201u) << type;
  }
}

TEST_F(ItemsTest, NamesRoundTripExactly) {
  const std::string name = "Caf\xC3\xA9 \"quoted\" \\ back\\slash \xF0\x9F\x98\x80 <tag>";
  const std::string id = Create(name);
  const auto res = server_.Call("GET", "/items/" + id);
  EXPECT_EQ(Json(res).at("name").as_string(), name);
}

TEST_F(ItemsTest, EtagAndConditionalGet) {
  const std::string id = Create();
  const auto first = server_.Call("GET", "/items/" + id);
  ASSERT_EQ(first.result_int(), 200u);
  const std::string etag(first["ETag"]);
  EXPECT_EQ(etag, http::StrongEtag(first.body()));
  EXPECT_EQ(first["Cache-Control"], "no-cache");
  EXPECT_EQ(first["Vary"], "Accept-Encoding");

  const auto not_modified = server_.Call("GET", "/items/" + id, {}, {}, {{"If-None-Match", etag}});
  EXPECT_EQ(not_modified.result_int(), 304u);
  EXPECT_TRUE(not_modified.body().empty());
  EXPECT_EQ(not_modified["ETag"], etag);
  EXPECT_EQ(not_modified["Cache-Control"], "no-cache");
  EXPECT_EQ(not_modified["Content-Type"], "");
  EXPECT_EQ(not_modified["Vary"], "Accept-Encoding") << "as its 200 says";
  // Weak comparison, lists and "*".
  EXPECT_EQ(
      server_.Call("GET", "/items/" + id, {}, {}, {{"If-None-Match", "W/" + etag}}).result_int(),
      304u);
  EXPECT_EQ(server_.Call("GET", "/items/" + id, {}, {}, {{"If-None-Match", "\"x\", " + etag}})
                .result_int(),
            304u);
  EXPECT_EQ(server_.Call("GET", "/items/" + id, {}, {}, {{"If-None-Match", "*"}}).result_int(),
            304u);
  EXPECT_EQ(
      server_.Call("GET", "/items/" + id, {}, {}, {{"If-None-Match", "\"other\""}}).result_int(),
      200u);

  // A change gives a new tag; the old one no longer matches.
  ASSERT_EQ(
      server_
          .Call("PUT", "/items/" + id, ItemBody("Widget", "tools", 1999, 9), server_.UserIdentity())
          .result_int(),
      200u);
  const auto changed = server_.Call("GET", "/items/" + id, {}, {}, {{"If-None-Match", etag}});
  EXPECT_EQ(changed.result_int(), 200u);
  EXPECT_NE(changed["ETag"], etag);
  EXPECT_EQ(Json(changed).at("stock"), 9);
  // A missing item is 404 whatever the condition.
  EXPECT_EQ(
      server_.Call("GET", "/items/0193a1c2d3e4f5a6b7c8d9e0f1a2", {}, {}, {{"If-None-Match", "*"}})
          .result_int(),
      404u);
}

TEST_F(ItemsTest, CacheHitsThenPutInvalidates) {
  const std::string id = Create("Widget", "tools", 100, 5);
  const double hits0 = server_.CacheRequests("hit");
  const double misses0 = server_.CacheRequests("miss");

  EXPECT_EQ(Json(server_.Call("GET", "/items/" + id)).at("stock"), 5);
  EXPECT_EQ(server_.CacheRequests("miss"), misses0 + 1) << "first read goes to the database";
  EXPECT_EQ(server_.CacheRequests("hit"), hits0);
  EXPECT_EQ(Json(server_.Call("GET", "/items/" + id)).at("stock"), 5);
  EXPECT_EQ(server_.CacheRequests("hit"), hits0 + 1) << "second read from the cache";

  ASSERT_EQ(
      server_
          .Call("PUT", "/items/" + id, ItemBody("Widget", "tools", 100, 6), server_.UserIdentity())
          .result_int(),
      200u);
  EXPECT_EQ(Json(server_.Call("GET", "/items/" + id)).at("stock"), 6) << "never the stale copy";
  EXPECT_EQ(server_.CacheRequests("miss"), misses0 + 2);
  EXPECT_EQ(Json(server_.Call("GET", "/items/" + id)).at("stock"), 6);
  EXPECT_EQ(server_.CacheRequests("hit"), hits0 + 2);

  ASSERT_EQ(server_.Call("DELETE", "/items/" + id, {}, server_.UserIdentity()).result_int(), 204u);
  EXPECT_EQ(server_.Call("GET", "/items/" + id).result_int(), 404u) << "deleted, not cached";

  // The metrics endpoint's view of the same counters.
  const std::string text =
      server_.telemetry().metrics().Expose(telemetry::ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find("vigil_cache_requests_total{cache=\"items\",result=\"hit\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_cache_requests_total{cache=\"items\",result=\"miss\"} 3"),
            std::string::npos);
}

TEST(ItemCacheRace, AReadThatRacedAnInvalidationIsNotKept) {
  telemetry::Registry registry;
  ItemCache cache(10, registry);
  const std::string id = "0193a1c2d3e4f5a6b7c8d9e0f1a2";
  // A reader stamps, a writer commits and invalidates, then the reader fills: dropped.
  const std::uint64_t stamp = cache.Stamp(id);
  cache.Invalidate(id);
  cache.Fill(id, {"{\"old\":1}", "\"o\""}, stamp);
  EXPECT_FALSE(cache.Get(id).has_value());
  // A fresh read fills.
  cache.Fill(id, {"{\"new\":1}", "\"n\""}, cache.Stamp(id));
  ASSERT_TRUE(cache.Get(id).has_value());
  EXPECT_EQ(cache.Get(id)->etag, "\"n\"");
}

TEST(ItemCacheOff, ZeroSizeStillServes) {
  CatalogOptions options;
  options.cache_size = 0;
  CatalogServer server(options);
  const auto created =
      server.Call("POST", "/items", ItemBody("W", "t", 1, 1), server.UserIdentity());
  const std::string id(Json(created).at("id").as_string());
  EXPECT_EQ(server.Call("GET", "/items/" + id).result_int(), 200u);
  EXPECT_EQ(server.Call("GET", "/items/" + id).result_int(), 200u);
  EXPECT_EQ(server.CacheRequests("hit"), 0);
  EXPECT_EQ(server.CacheRequests("miss"), 2);
}

TEST(CatalogOptionsTest, FromEnv) {
  ::setenv("VIGIL_CATALOG_CACHE_SIZE", "123", 1);
  EXPECT_EQ(CatalogOptions::FromEnv().cache_size, 123u);
  ::setenv("VIGIL_CATALOG_CACHE_SIZE", "lots", 1);
  EXPECT_THROW(CatalogOptions::FromEnv(), telemetry::ConfigError);
  ::unsetenv("VIGIL_CATALOG_CACHE_SIZE");
  EXPECT_EQ(CatalogOptions::FromEnv().cache_size, 10000u);
}

TEST(Validation, Categories) {
  EXPECT_TRUE(IsValidCategory("tools"));
  EXPECT_TRUE(IsValidCategory("a-1"));
  EXPECT_TRUE(IsValidCategory(std::string(64, 'z')));
  EXPECT_FALSE(IsValidCategory(""));
  EXPECT_FALSE(IsValidCategory(std::string(65, 'z')));
  EXPECT_FALSE(IsValidCategory("A"));
  EXPECT_FALSE(IsValidCategory("a b"));
  EXPECT_FALSE(IsValidCategory("a_b"));
  EXPECT_FALSE(IsValidCategory("caf\xC3\xA9"));
}

}  // namespace
}  // namespace vigil::catalog

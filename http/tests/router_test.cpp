// Route templates: matching rules, precedence and backtracking, 404 versus 405, template
// validation, stability of the views a Match holds, and no allocation in Find().
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>
#include <vigil/testing/count_allocations.hpp>

#include "vigil/http/router.hpp"

using vigil::test_support::AllocationsDuring;

namespace vigil::http {
namespace {

using Result = Router::Match::Result;

static_assert(noexcept(std::declval<const Router&>().Find("GET", "/")));

// The kind of table a service of the platform registers.
Router PlatformRouter() {
  Router r;
  r.Add("POST", "/login");                 // 0
  r.Add("POST", "/register");              // 1
  r.Add("POST", "/refresh");               // 2
  r.Add("POST", "/logout");                // 3
  r.Add("GET", "/me");                     // 4
  r.Add("GET", "/.well-known/jwks.json");  // 5
  r.Add("GET", "/items");                  // 6
  r.Add("POST", "/items");                 // 7
  r.Add("GET", "/items/{id}");             // 8
  r.Add("PUT", "/items/{id}");             // 9
  r.Add("DELETE", "/items/{id}");          // 10
  r.Add("POST", "/items/{id}/reserve");    // 11
  r.Add("POST", "/items/{id}/release");    // 12
  r.Add("GET", "/orders");                 // 13
  r.Add("POST", "/orders");                // 14
  r.Add("GET", "/orders/{id}");            // 15
  r.Add("*", "/api/auth/*");               // 16
  r.Add("*", "/api/catalog/*");            // 17
  r.Add("*", "/api/orders/*");             // 18
  return r;
}

TEST(Router, IdsCountFromZeroInOrderOfAddition) {
  Router r;
  EXPECT_EQ(r.Add("GET", "/a"), 0u);
  EXPECT_EQ(r.Add("POST", "/a"), 1u);
  EXPECT_EQ(r.Add("GET", "/b/{x}"), 2u);
  EXPECT_EQ(r.Add("*", "/c/*"), 3u);
}

TEST(Router, HeaderExample) {
  Router router;
  const auto get_item = router.Add("GET", "/items/{id}");
  const Router::Match m = router.Find("GET", "/items/42");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, get_item);
  EXPECT_EQ(m.Param("id"), "42");
  EXPECT_EQ(m.route, "/items/{id}");
}

TEST(Router, LiteralRoutes) {
  const Router r = PlatformRouter();
  auto m = r.Find("POST", "/login");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, 0u);
  EXPECT_EQ(m.route, "/login");
  EXPECT_EQ(m.param_count, 0u);
  EXPECT_TRUE(m.allow.empty());

  m = r.Find("GET", "/.well-known/jwks.json");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, 5u);

  EXPECT_EQ(r.Find("GET", "/items").id, 6u);
  EXPECT_EQ(r.Find("POST", "/items").id, 7u);
  EXPECT_EQ(r.Find("POST", "/orders").id, 14u);
}

TEST(Router, LiteralsMatchWholeSegmentsOnly) {
  const Router r = PlatformRouter();
  EXPECT_EQ(r.Find("POST", "/logi").result, Result::kNotFound);
  EXPECT_EQ(r.Find("POST", "/loginx").result, Result::kNotFound);
  EXPECT_EQ(r.Find("POST", "/login/x").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/item").result, Result::kNotFound);
}

TEST(Router, ManyLiteralSiblings) {
  // Enough siblings to leave the short-list scan for the binary search, with names of
  // equal and of different lengths.
  Router r;
  std::vector<std::size_t> ids;
  for (int i = 0; i < 60; ++i) {
    ids.push_back(r.Add("GET", "/s" + std::to_string(i * 7) + "/x"));
  }
  const auto param = r.Add("GET", "/{any}/x");
  for (int i = 0; i < 60; ++i) {
    const std::string path = "/s" + std::to_string(i * 7) + "/x";
    const auto m = r.Find("GET", path);
    ASSERT_TRUE(m.found()) << path;
    EXPECT_EQ(m.id, ids[static_cast<std::size_t>(i)]) << path;
    EXPECT_EQ(m.param_count, 0u);
  }
  EXPECT_EQ(r.Find("GET", "/s8/x").id, param);
  EXPECT_EQ(r.Find("GET", "/s/x").id, param);
  EXPECT_EQ(r.Find("GET", "/s4200/x").id, param);
  EXPECT_EQ(r.Find("GET", "/s7/y").result, Result::kNotFound);
}

TEST(Router, ParamCapturesOneSegment) {
  const Router r = PlatformRouter();
  auto m = r.Find("GET", "/items/42");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, 8u);
  EXPECT_EQ(m.route, "/items/{id}");
  ASSERT_EQ(m.param_count, 1u);
  EXPECT_EQ(m.params[0].name, "id");
  EXPECT_EQ(m.params[0].value, "42");
  EXPECT_EQ(m.Param("id"), "42");
  EXPECT_EQ(m.Param("other"), "");

  m = r.Find("POST", "/items/abc-1/reserve");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, 11u);
  EXPECT_EQ(m.Param("id"), "abc-1");

  m = r.Find("POST", "/items/7/release");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, 12u);

  EXPECT_EQ(r.Find("GET", "/items/42/extra").result, Result::kNotFound);
}

TEST(Router, ParamValueIsRawAndAViewIntoThePath) {
  Router r;
  r.Add("GET", "/files/{name}");
  const std::string path = "/files/a%2Fb%20c";
  const auto m = r.Find("GET", path);
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.Param("name"), "a%2Fb%20c");
  EXPECT_EQ(m.Param("name").data(), path.data() + 7);
}

TEST(Router, SeveralParamsWithTheirNames) {
  Router r;
  const auto id = r.Add("GET", "/orgs/{org}/repos/{repo}/issues/{number}");
  const auto m = r.Find("GET", "/orgs/acme/repos/vigil/issues/17");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, id);
  ASSERT_EQ(m.param_count, 3u);
  EXPECT_EQ(m.params[0].name, "org");
  EXPECT_EQ(m.params[0].value, "acme");
  EXPECT_EQ(m.params[1].name, "repo");
  EXPECT_EQ(m.params[1].value, "vigil");
  EXPECT_EQ(m.params[2].name, "number");
  EXPECT_EQ(m.params[2].value, "17");
  EXPECT_EQ(m.Param("repo"), "vigil");
}

TEST(Router, EightParamsAreAllowed) {
  Router r;
  r.Add("GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}");
  const auto m = r.Find("GET", "/1/2/3/4/5/6/7/8");
  ASSERT_TRUE(m.found());
  ASSERT_EQ(m.param_count, 8u);
  EXPECT_EQ(m.Param("a"), "1");
  EXPECT_EQ(m.Param("h"), "8");
  EXPECT_EQ(r.Find("GET", "/1/2/3/4/5/6/7/8/9").result, Result::kNotFound);
}

TEST(Router, EmptySegmentNeverMatchesAParam) {
  Router r;
  r.Add("GET", "/items/{id}");
  r.Add("GET", "/items/{id}/reserve");
  EXPECT_EQ(r.Find("GET", "/items/").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/items//reserve").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "//").result, Result::kNotFound);
}

TEST(Router, TrailingSlashIsSignificant) {
  Router r;
  const auto items = r.Add("GET", "/items");
  EXPECT_TRUE(r.Find("GET", "/items").found());
  EXPECT_EQ(r.Find("GET", "/items/").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/items//").result, Result::kNotFound);

  const auto items_slash = r.Add("GET", "/items/");
  EXPECT_EQ(r.Find("GET", "/items").id, items);
  auto m = r.Find("GET", "/items/");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, items_slash);
  EXPECT_EQ(m.route, "/items/");
}

TEST(Router, Root) {
  Router r;
  EXPECT_EQ(r.Find("GET", "/").result, Result::kNotFound);
  const auto root = r.Add("GET", "/");
  EXPECT_EQ(r.Find("GET", "/").id, root);
  EXPECT_TRUE(r.Find("GET", "/").found());
  EXPECT_EQ(r.Find("GET", "//").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/x").result, Result::kNotFound);
}

TEST(Router, PathsNotStartingWithSlashNeverMatch) {
  Router r;
  r.Add("*", "/*");
  EXPECT_TRUE(r.Find("GET", "/").found());
  EXPECT_EQ(r.Find("GET", "").result, Result::kNotFound);
  EXPECT_EQ(r.Find("OPTIONS", "*").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "http://example.com/").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "items").result, Result::kNotFound);
}

TEST(Router, WildcardMatchesThePrefixAndBelowOnWholeSegments) {
  const Router r = PlatformRouter();
  for (const std::string_view path :
       {"/api/auth", "/api/auth/", "/api/auth/x", "/api/auth/x/y", "/api/auth//", "/api/auth/x/"}) {
    const auto m = r.Find("GET", path);
    ASSERT_TRUE(m.found()) << path;
    EXPECT_EQ(m.id, 16u) << path;
    EXPECT_EQ(m.route, "/api/auth/*") << path;
    EXPECT_EQ(m.param_count, 0u);
  }
  EXPECT_EQ(r.Find("GET", "/api/authx").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/api/auth2/x").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/api").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/api/").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/api/orders/1/lines").id, 18u);
  EXPECT_EQ(r.Find("GET", "/api/catalog").id, 17u);
}

TEST(Router, RootWildcardMatchesEverything) {
  Router r;
  const auto all = r.Add("*", "/*");
  for (const std::string_view path : {"/", "/x", "/x/y/z", "//", "/a/"}) {
    EXPECT_EQ(r.Find("GET", path).id, all) << path;
  }
}

TEST(Router, LongestWildcardPrefixWins) {
  Router r;
  const auto api = r.Add("*", "/api/*");
  const auto auth = r.Add("*", "/api/auth/*");
  const auto keys = r.Add("*", "/api/auth/keys/*");
  const auto all = r.Add("*", "/*");
  EXPECT_EQ(r.Find("GET", "/api/auth/keys/1").id, keys);
  EXPECT_EQ(r.Find("GET", "/api/auth/keys").id, keys);
  EXPECT_EQ(r.Find("GET", "/api/auth/key").id, auth);
  EXPECT_EQ(r.Find("GET", "/api/auth").id, auth);
  EXPECT_EQ(r.Find("GET", "/api/authx").id, api);
  EXPECT_EQ(r.Find("GET", "/api").id, api);
  EXPECT_EQ(r.Find("GET", "/apix").id, all);
  EXPECT_EQ(r.Find("GET", "/").id, all);
}

TEST(Router, LiteralBeatsParamBeatsWildcard) {
  Router r;
  const auto wild = r.Add("GET", "/items/*");
  const auto param = r.Add("GET", "/items/{id}");
  const auto literal = r.Add("GET", "/items/new");
  EXPECT_EQ(r.Find("GET", "/items/new").id, literal);
  EXPECT_EQ(r.Find("GET", "/items/42").id, param);
  EXPECT_EQ(r.Find("GET", "/items/42/x").id, wild);
  EXPECT_EQ(r.Find("GET", "/items").id, wild);
  EXPECT_EQ(r.Find("GET", "/items/").id, wild);  // empty segment: not for {id}
  EXPECT_EQ(r.Find("GET", "/items/new/x").id, wild);
}

TEST(Router, PrecedenceDoesNotDependOnOrderOfAddition) {
  Router r;
  const auto literal = r.Add("GET", "/items/new");
  const auto param = r.Add("GET", "/items/{id}");
  const auto wild = r.Add("GET", "/items/*");
  EXPECT_EQ(r.Find("GET", "/items/new").id, literal);
  EXPECT_EQ(r.Find("GET", "/items/42").id, param);
  EXPECT_EQ(r.Find("GET", "/items/42/x").id, wild);
}

TEST(Router, ExactTemplateBeatsWildcardAtTheSamePrefix) {
  Router r;
  const auto wild = r.Add("*", "/api/auth/*");
  const auto exact = r.Add("GET", "/api/auth");
  EXPECT_EQ(r.Find("GET", "/api/auth").id, exact);
  EXPECT_EQ(r.Find("POST", "/api/auth").id, wild);
  EXPECT_EQ(r.Find("GET", "/api/auth/").id, wild);
}

TEST(Router, BacktracksFromALiteralToAParam) {
  Router r;
  const auto abc = r.Add("GET", "/a/b/c");
  const auto axd = r.Add("GET", "/a/{x}/d");
  EXPECT_EQ(r.Find("GET", "/a/b/c").id, abc);
  const auto m = r.Find("GET", "/a/b/d");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, axd);
  EXPECT_EQ(m.route, "/a/{x}/d");
  EXPECT_EQ(m.Param("x"), "b");
  EXPECT_EQ(r.Find("GET", "/a/b/e").result, Result::kNotFound);
}

TEST(Router, BacktracksToAShorterWildcard) {
  Router r;
  const auto wild = r.Add("GET", "/a/*");
  const auto deep = r.Add("GET", "/a/b/c/d");
  EXPECT_EQ(r.Find("GET", "/a/b/c/d").id, deep);
  EXPECT_EQ(r.Find("GET", "/a/b/c").id, wild);
  EXPECT_EQ(r.Find("GET", "/a/b/c/e").id, wild);
  EXPECT_EQ(r.Find("GET", "/a/b/c/d/e").id, wild);
}

TEST(Router, BacktrackingClearsCapturesOfAbandonedBranches) {
  Router r;
  r.Add("GET", "/a/{x}/{y}/z");
  const auto axw = r.Add("GET", "/a/{x}/w");
  const auto m = r.Find("GET", "/a/1/w");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, axw);
  ASSERT_EQ(m.param_count, 1u);
  EXPECT_EQ(m.Param("x"), "1");
  EXPECT_EQ(m.Param("y"), "");
}

TEST(Router, BacktracksAcrossSeveralLevels) {
  Router r;
  const auto lit = r.Add("GET", "/{a}/x/y/z");
  const auto param = r.Add("GET", "/{a}/{b}/{c}/q");
  const auto m = r.Find("GET", "/1/x/y/q");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, param);
  EXPECT_EQ(m.Param("a"), "1");
  EXPECT_EQ(m.Param("b"), "x");
  EXPECT_EQ(m.Param("c"), "y");
  EXPECT_EQ(r.Find("GET", "/1/x/y/z").id, lit);
}

TEST(Router, WildcardAfterAParamCapturesIt) {
  Router r;
  const auto id = r.Add("*", "/users/{user}/files/*");
  const auto m = r.Find("GET", "/users/ada/files/a/b.txt");
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.id, id);
  EXPECT_EQ(m.Param("user"), "ada");
  EXPECT_EQ(r.Find("GET", "/users/ada/files").id, id);
  EXPECT_EQ(r.Find("GET", "/users//files").result, Result::kNotFound);
}

TEST(Router, MethodsAreCaseSensitive) {
  Router r;
  r.Add("GET", "/items");
  EXPECT_TRUE(r.Find("GET", "/items").found());
  const auto m = r.Find("get", "/items");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD");
}

// RFC 9110 section 9.3.2: HEAD is answered wherever GET is.
TEST(Router, HeadIsServedByGetUnlessItHasItsOwnRoute) {
  Router r;
  const auto get = r.Add("GET", "/items");
  r.Add("POST", "/orders");
  const auto any = r.Add("*", "/proxy/*");
  const auto proxy_get = r.Add("GET", "/proxy/*");
  const auto own_get = r.Add("GET", "/own");
  const auto own_head = r.Add("HEAD", "/own");
  EXPECT_EQ(r.Find("HEAD", "/items").id, get);
  EXPECT_TRUE(r.Find("HEAD", "/items").found());
  EXPECT_EQ(r.Find("HEAD", "/orders").result, Result::kMethodNotAllowed);
  EXPECT_EQ(r.Find("HEAD", "/orders").allow, "POST");
  EXPECT_EQ(r.Find("HEAD", "/proxy/x").id, proxy_get);
  EXPECT_EQ(r.Find("POST", "/proxy/x").id, any);
  EXPECT_EQ(r.Find("HEAD", "/own").id, own_head);
  EXPECT_EQ(r.Find("GET", "/own").id, own_get);
  EXPECT_EQ(r.Find("PUT", "/own").allow, "GET, HEAD");
  EXPECT_EQ(r.Find("PUT", "/items").allow, "GET, HEAD");
}

TEST(Router, AnyMethodAcceptsEveryMethod) {
  const Router r = PlatformRouter();
  for (const std::string_view method : {"GET", "POST", "DELETE", "PATCH", "OPTIONS", "FOO"}) {
    const auto m = r.Find(method, "/api/catalog/items/1");
    ASSERT_TRUE(m.found()) << method;
    EXPECT_EQ(m.id, 17u);
  }
}

TEST(Router, SpecificMethodWinsOverAnyOnTheSameTemplate) {
  Router r;
  const auto any = r.Add("*", "/items");
  const auto get = r.Add("GET", "/items");
  EXPECT_EQ(r.Find("GET", "/items").id, get);
  EXPECT_EQ(r.Find("POST", "/items").id, any);
}

TEST(Router, NotFound) {
  const Router r = PlatformRouter();
  const auto m = r.Find("GET", "/nothing/here");
  EXPECT_EQ(m.result, Result::kNotFound);
  EXPECT_FALSE(m.found());
  EXPECT_TRUE(m.route.empty());
  EXPECT_TRUE(m.allow.empty());
  EXPECT_EQ(m.param_count, 0u);
}

TEST(Router, EmptyRouterFindsNothing) {
  const Router r;
  EXPECT_EQ(r.Find("GET", "/").result, Result::kNotFound);
  EXPECT_EQ(r.Find("GET", "/x").result, Result::kNotFound);
}

TEST(Router, MethodNotAllowedListsTheTemplatesMethodsSorted) {
  const Router r = PlatformRouter();
  auto m = r.Find("PATCH", "/items/42");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_FALSE(m.found());
  EXPECT_EQ(m.route, "/items/{id}");
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD, PUT");
  EXPECT_EQ(m.Param("id"), "42");

  m = r.Find("GET", "/login");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.route, "/login");
  EXPECT_EQ(m.allow, "POST");

  m = r.Find("DELETE", "/items");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD, POST");

  m = r.Find("GET", "/items/1/reserve");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.route, "/items/{id}/reserve");
  EXPECT_EQ(m.allow, "POST");
}

TEST(Router, MethodNotAllowedUsesTheBestRankedTemplate) {
  Router r;
  r.Add("GET", "/items/*");
  r.Add("POST", "/items/*");
  r.Add("PUT", "/items/{id}");
  r.Add("PATCH", "/items/{id}");
  r.Add("DELETE", "/items/new");
  auto m = r.Find("OPTIONS", "/items/new");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.route, "/items/new");
  EXPECT_EQ(m.allow, "DELETE");

  m = r.Find("OPTIONS", "/items/42");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.route, "/items/{id}");
  EXPECT_EQ(m.allow, "PATCH, PUT");

  m = r.Find("OPTIONS", "/items/42/x");
  EXPECT_EQ(m.result, Result::kMethodNotAllowed);
  EXPECT_EQ(m.route, "/items/*");
  EXPECT_EQ(m.allow, "GET, HEAD, POST");
}

TEST(Router, ALowerRankedTemplateForTheMethodBeatsMethodNotAllowed) {
  Router r;
  r.Add("DELETE", "/items/new");
  const auto param = r.Add("GET", "/items/{id}");
  const auto wild = r.Add("POST", "/items/*");
  EXPECT_EQ(r.Find("GET", "/items/new").id, param);
  EXPECT_EQ(r.Find("POST", "/items/new").id, wild);
  EXPECT_EQ(r.Find("PUT", "/items/new").result, Result::kMethodNotAllowed);
  EXPECT_EQ(r.Find("PUT", "/items/new").allow, "DELETE");
}

TEST(Router, DuplicatesAreRejected) {
  Router r;
  r.Add("GET", "/items/{id}");
  r.Add("*", "/api/*");
  EXPECT_THROW(r.Add("GET", "/items/{id}"), std::invalid_argument);
  EXPECT_THROW(r.Add("*", "/api/*"), std::invalid_argument);
  // Same template, another method: fine, and "*" next to a specific method too.
  EXPECT_NO_THROW(r.Add("PUT", "/items/{id}"));
  EXPECT_NO_THROW(r.Add("*", "/items/{id}"));
  EXPECT_NO_THROW(r.Add("GET", "/api/*"));
  EXPECT_NO_THROW(r.Add("GET", "/api"));
  try {
    r.Add("PUT", "/items/{id}");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("/items/{id}"), std::string::npos) << e.what();
  }
}

TEST(Router, ConflictingParamNamesAreRejected) {
  Router r;
  r.Add("GET", "/items/{id}");
  EXPECT_THROW(r.Add("GET", "/items/{name}"), std::invalid_argument);
  EXPECT_THROW(r.Add("GET", "/items/{item}/reserve"), std::invalid_argument);
  EXPECT_THROW(r.Add("*", "/items/{item}/*"), std::invalid_argument);
  EXPECT_NO_THROW(r.Add("GET", "/items/{id}/reserve"));
  EXPECT_NO_THROW(r.Add("GET", "/orders/{name}"));  // another position
}

TEST(Router, MalformedTemplatesAreRejectedNamingTheTemplate) {
  for (const std::string_view bad : {
           "",                                        // not starting with '/'
           "items",                                   //
           "*",                                       //
           "/items/{",                                // unterminated
           "/items/{id",                              //
           "/items/{}",                               // empty
           "/items/{}/x",                             //
           "/items/{id}x",                            // a param is a whole segment
           "/items/x{id}",                            //
           "/items/{a}{b}",                           //
           "/items/id}",                              //
           "/items/{i{d}",                            //
           "/items/{i d}",                            // spaces
           "/items/{i/d}",                            // unterminated then stray '}'
           "/*/items",                                // '*' only as the whole last segment
           "/items/*/",                               //
           "/items/x*",                               //
           "/items/*x",                               //
           "/items/**",                               //
           "/ite*ms",                                 //
           "/a/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",  // more than 8 params
           "/a/{x}/b/{x}",                            // one name twice
           "/items?x=1",                              // never a path
           "/items#top",                              //
           "/items x",                                //
       }) {
    Router r;
    try {
      r.Add("GET", bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const std::invalid_argument& e) {
      if (!bad.empty()) {
        EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Router, MalformedMethodsAreRejected) {
  Router r;
  EXPECT_THROW(r.Add("", "/x"), std::invalid_argument);
  EXPECT_THROW(r.Add("get", "/x"), std::invalid_argument);
  EXPECT_THROW(r.Add("GE T", "/x"), std::invalid_argument);
  EXPECT_THROW(r.Add("GET/", "/x"), std::invalid_argument);
  EXPECT_NO_THROW(r.Add("PROPFIND", "/x"));
  EXPECT_NO_THROW(r.Add("M-SEARCH", "/x"));
}

TEST(Router, ValidTemplatesAccepted) {
  Router r;
  EXPECT_NO_THROW(r.Add("GET", "/"));
  EXPECT_NO_THROW(r.Add("GET", "/*"));
  EXPECT_NO_THROW(r.Add("GET", "/a//b"));
  EXPECT_NO_THROW(r.Add("GET", "/{item_id}/{v-2}"));
  EXPECT_NO_THROW(r.Add("GET", "/a.b/c~d/e%20f"));
  EXPECT_TRUE(r.Find("GET", "/a//b").found());
  EXPECT_TRUE(r.Find("GET", "/a.b/c~d/e%20f").found());
}

TEST(Router, ARejectedTemplateLeavesTheRouterUnchanged) {
  Router r;
  const auto first = r.Add("GET", "/items/{id}");
  EXPECT_THROW(r.Add("GET", "/items/{name}/x/y"), std::invalid_argument);
  EXPECT_THROW(r.Add("GET", "/items/{id}"), std::invalid_argument);
  EXPECT_EQ(r.Find("GET", "/items/1/x/y").result, Result::kNotFound);
  EXPECT_EQ(r.Add("POST", "/items/{id}"), first + 1);  // no id consumed by failures
}

TEST(Router, ViewsStayValidAfterLaterAdds) {
  Router r;
  r.Add("GET", "/i/{id}");  // short: would sit in a std::string's inline buffer
  r.Add("GET", "/a/long/template/that/is/not/inline/{name}");
  const auto short_match = r.Find("GET", "/i/1");
  const auto long_match = r.Find("GET", "/a/long/template/that/is/not/inline/x");
  const auto not_allowed = r.Find("POST", "/i/1");
  ASSERT_TRUE(short_match.found());
  ASSERT_TRUE(long_match.found());
  ASSERT_EQ(not_allowed.result, Result::kMethodNotAllowed);
  const std::string_view route = short_match.route;
  const std::string_view name = short_match.params[0].name;
  const std::string_view allow = not_allowed.allow;

  for (int i = 0; i < 500; ++i) {
    r.Add("GET", "/grow/" + std::to_string(i) + "/{p" + std::to_string(i) + "}");
    r.Add("GET", "/i" + std::to_string(i));
  }
  r.Add("PUT", "/i/{id}");  // a new Allow list for the same template

  EXPECT_EQ(route, "/i/{id}");
  EXPECT_EQ(name, "id");
  EXPECT_EQ(allow, "GET, HEAD");
  EXPECT_EQ(long_match.route, "/a/long/template/that/is/not/inline/{name}");
  EXPECT_EQ(long_match.params[0].name, "name");
  EXPECT_EQ(r.Find("GET", "/i/1").route.data(), route.data());
  EXPECT_EQ(r.Find("POST", "/i/1").allow, "GET, HEAD, PUT");
}

TEST(Router, ViewsSurviveMovingTheRouter) {
  Router r;
  r.Add("GET", "/items/{id}");
  const auto m = r.Find("GET", "/items/9");
  Router moved = std::move(r);
  EXPECT_EQ(m.route, "/items/{id}");
  EXPECT_EQ(moved.Find("GET", "/items/9").route.data(), m.route.data());

  Router assigned;
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.Find("GET", "/items/9").found());
  EXPECT_EQ(m.Param("id"), "9");
}

TEST(Router, ConcurrentFinds) {
  const Router r = PlatformRouter();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        const auto m = r.Find("GET", "/items/42");
        if (!m.found() || m.id != 8 || m.Param("id") != "42") {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RouterNoAllocation, CounterIsCountedSoTheHookWorks) {
  EXPECT_GT(AllocationsDuring([] {
              Router r;
              r.Add("GET", "/a/long/enough/template/to/leave/the/inline/buffer");
            }),
            0);
}

TEST(RouterNoAllocation, Find) {
  const Router r = PlatformRouter();
  // Long paths whose segments exceed any inline buffer, so a copy would show.
  const std::string long_id(200, '7');
  const std::string param_path = "/items/" + long_id + "/reserve";
  const std::string deep_404 = "/api" + std::string(300, 'x') + "/a/b/c/d/e/f/g";
  long found = 0;
  long not_allowed = 0;
  long not_found = 0;
  const long n = AllocationsDuring([&] {
    for (int i = 0; i < 1000; ++i) {
      for (const std::string_view path :
           {std::string_view("/login"), std::string_view("/.well-known/jwks.json"),
            std::string_view(param_path), std::string_view("/items/42"),
            std::string_view("/api/orders/12/lines"), std::string_view("/api/auth"),
            std::string_view(deep_404), std::string_view("/nope"), std::string_view("//"),
            std::string_view("")}) {
        for (const std::string_view method : {"GET", "POST", "PATCH"}) {
          const Router::Match m = r.Find(method, path);
          found += m.found() ? 1 : 0;
          not_allowed += m.result == Result::kMethodNotAllowed ? 1 : 0;
          not_found += m.result == Result::kNotFound ? 1 : 0;
          (void)m.Param("id");
        }
      }
    }
  });
  EXPECT_EQ(n, 0);
  EXPECT_GT(found, 0);
  EXPECT_GT(not_allowed, 0);
  EXPECT_GT(not_found, 0);
}

}  // namespace
}  // namespace vigil::http

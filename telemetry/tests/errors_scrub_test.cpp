// What never leaves the process in an error report: sensitive headers, query parameters,
// log fields (the log redaction list, plus the reporter's header names).
#include <gtest/gtest.h>

#include <string>
#include <vigil/telemetry/errors.hpp>

#include "errors/recent_lines.hpp"
#include "errors/scrub.hpp"

namespace vigil::telemetry::internal {
namespace {

TEST(ScrubTest, SensitiveNamesAreTheLogListAndTheExtraNames) {
  for (const char* name : {"Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "x-auth-token",
                           "Proxy-Authorization", "password", "client_secret", "session_id"}) {
    EXPECT_TRUE(IsSensitiveName(name)) << name;
  }
  for (const char* name : {"User-Agent", "Accept", "X-Request-Id", "traceparent", "page"}) {
    EXPECT_FALSE(IsSensitiveName(name)) << name;
  }
  const std::string extra[] = {"x-vigil-identity"};
  EXPECT_TRUE(IsSensitiveName("X-Vigil-Identity", extra));
  EXPECT_FALSE(IsSensitiveName("X-Vigil-Identity"));
}

TEST(ScrubTest, QueryValuesOfSensitiveNamesAreFiltered) {
  EXPECT_EQ(FilterQuery("access_token=abc.def&page=2&password=hunter2&q=lamp"),
            "access_token=[Filtered]&page=2&password=[Filtered]&q=lamp");
  EXPECT_EQ(FilterQuery("api%5Fkey=k1&flag&token="), "api%5Fkey=[Filtered]&flag&token=[Filtered]")
      << "names are read percent-decoded";
  EXPECT_EQ(FilterQuery(""), "");
}

TEST(ScrubTest, RequestDetailsAreFilteredAsTheyAreAdded) {
  RequestInfo r;
  r.AddHeader("Authorization", "Bearer eyJ.secret.token");
  r.AddHeader("Cookie", "sid=abc");
  r.AddHeader("User-Agent", "curl/8");
  ASSERT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers[0].second, "[Filtered]");
  EXPECT_EQ(r.headers[1].second, "[Filtered]");
  EXPECT_EQ(r.headers[2].second, "curl/8");
  r.SetUrl("http", "shop.example", "/orders/7?access_token=xyz&limit=5");
  EXPECT_EQ(r.url, "http://shop.example/orders/7");
  EXPECT_EQ(r.query_string, "access_token=[Filtered]&limit=5");
}

TEST(ScrubTest, RecentLinesKeepFieldsFilteredAndCut) {
  RecentLines lines;
  RequestContext ctx = RequestContext::NewRoot();
  const std::string long_message(500, 'm');
  const Field fields[] = {{"password", "hunter2"}, {"user.id", 42}, {"sentry.event_id", "x"}};
  LogLineView line;
  line.time_unix_nano = 1000;
  line.level = LogLevel::kWarn;
  line.msg = long_message;
  line.has_context = true;
  line.trace_id = ctx.span.trace_id;
  line.request_id = "r-1";
  line.fields = fields;
  lines.Add(line);
  line.request_id = "r-2";
  line.msg = "other request";
  lines.Add(line);
  line.has_context = false;
  line.request_id = "r-1";
  line.msg = "no context: not kept";
  lines.Add(line);

  const auto crumbs = lines.Of("r-1", ctx.span.trace_id, 2000, 10);
  ASSERT_EQ(crumbs.size(), 1u);
  EXPECT_EQ(crumbs[0].message.size(), RecentLines::kMaxMessage);
  EXPECT_EQ(crumbs[0].level, ErrorLevel::kWarning);
  EXPECT_EQ(crumbs[0].category, "log");
  ASSERT_EQ(crumbs[0].data.size(), 2u) << "sentry.* fields are the reporter's own";
  EXPECT_EQ(crumbs[0].data[0], (std::pair<std::string, std::string>{"password", "[Filtered]"}));
  EXPECT_EQ(crumbs[0].data[1], (std::pair<std::string, std::string>{"user.id", "42"}));
  EXPECT_TRUE(lines.Of("r-1", ctx.span.trace_id, 999, 10).empty()) << "later lines are not";
  EXPECT_EQ(lines.Of("", ctx.span.trace_id, 2000, 10).size(), 2u) << "by trace without an id";
}

TEST(ScrubTest, RecentLinesAreBounded) {
  RecentLines lines;
  LogLineView line;
  line.has_context = true;
  line.request_id = "r";
  for (std::size_t i = 0; i < RecentLines::kCapacity + 10; ++i) {
    line.time_unix_nano = static_cast<std::int64_t>(i);
    lines.Add(line);
  }
  const auto all = lines.Of("r", TraceId(), 1'000'000, 100000);
  ASSERT_EQ(all.size(), RecentLines::kCapacity);
  EXPECT_EQ(all.front().time_unix_nano, 10);
  const auto last = lines.Of("r", TraceId(), 1'000'000, 5);
  ASSERT_EQ(last.size(), 5u);
  EXPECT_EQ(last.back().time_unix_nano, static_cast<std::int64_t>(RecentLines::kCapacity + 9));
}

}  // namespace
}  // namespace vigil::telemetry::internal

// The error middleware reporting to a canned Sentry receiver, on a real server with the
// platform's pipeline: an exception a handler did not catch is reported with the stack
// where it was thrown, linked to the request's server span and its caller's, its request
// with secrets filtered and what the handler added; the client still gets only a problem
// with ids; each request counts toward release health; and the admin test endpoint.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/testing/canned_http.hpp>
#include <vigil/testing/envelope.hpp>
#include <vigil/testing/pipeline.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>

namespace vigil::http {
namespace {

namespace json = boost::json;
using test_support::CannedResponse;
using test_support::CannedServer;
using test_support::RunningServer;

constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// The server span the handler ran in, as it saw it.
struct SeenSpan {
  std::mutex mu;
  std::string span_id;
};

[[gnu::noinline]] void FindWidget(std::string_view id) {
  throw std::out_of_range("no widget " + std::string(id) + " (secret detail)");
}

Routes ThrowingRoutes(SeenSpan& seen) {
  Routes routes;
  routes.Add("GET", "/widgets/{id}", [&seen](Exchange& ex) -> asio::awaitable<void> {
    {
      std::lock_guard lock(seen.mu);
      seen.span_id = ex.context().span.span_id.ToHex();
    }
    ex.error_scope().SetTag("widget.id", ex.Param("id"));
    ex.error_scope().AddBreadcrumb({0, telemetry::ErrorLevel::kInfo, "stock", "looked it up", {}});
    FindWidget(ex.Param("id"));
    co_return;
  });
  routes.Add("GET", "/fine", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, "ok", "text/plain");
    co_return;
  });
  routes.Add("GET", "/unavailable", [](Exchange&) -> asio::awaitable<void> {
    throw HttpError(503, "the database is away");
    co_return;
  });
  return routes;
}

std::function<void(telemetry::TelemetryOptions&)> ReportingTo(const CannedServer& receiver) {
  return [url = receiver.url("")](telemetry::TelemetryOptions& o) {
    o.errors.dsn = telemetry::ParseSentryDsn("http://pub@" + url.substr(7) + "/3");
    o.errors.service = "widgets";
    o.errors.version = "9.9";
    o.errors.flush_interval = std::chrono::hours(1);
  };
}

std::vector<json::value> Payloads(CannedServer& receiver, std::string_view type) {
  std::vector<json::value> out;
  for (const std::string& body : receiver.bodies()) {
    const auto envelope = test_support::SplitEnvelope(test_support::Gunzip(body));
    EXPECT_TRUE(envelope);
    if (!envelope) continue;
    for (const auto* item : envelope->Items(type)) out.push_back(json::parse(item->payload));
  }
  return out;
}

std::string Str(const json::value& v) { return std::string(v.as_string()); }

TEST(ErrorReportsTest, AnUnhandledExceptionIsReportedWithItsThrowSiteAndItsTrace) {
  CannedServer receiver({CannedResponse(200)});
  test_support::TestTelemetry telemetry("widgets", ReportingTo(receiver));
  SeenSpan seen;
  {
    RunningServer server(ThrowingRoutes(seen), test_support::PlatformPipeline(*telemetry));
    const auto res = server.RoundTrip(
        "GET /widgets/w-7?access_token=tok-secret-1&page=2 HTTP/1.1\r\nHost: shop.test\r\n"
        "traceparent: " +
        std::string(kTraceparent) +
        "\r\n"
        "Authorization: Bearer tok-secret-2\r\nCookie: sid=tok-secret-3\r\n"
        "X-Vigil-Identity: v1.user:u.1.tok-secret-4\r\nUser-Agent: widget-test\r\n\r\n");
    EXPECT_EQ(res.result_int(), 500u);
    EXPECT_EQ(res.body().find("secret detail"), std::string::npos) << "the client never sees it";
    EXPECT_NE(res.body().find("4bf92f3577b34da6a3ce929d0e0e4736"), std::string::npos);
    EXPECT_EQ(server.RoundTrip("GET /fine HTTP/1.1\r\nHost: t\r\n\r\n").result_int(), 200u);
    EXPECT_EQ(server.RoundTrip("GET /unavailable HTTP/1.1\r\nHost: t\r\n\r\n").result_int(), 503u);
  }
  telemetry->Shutdown();

  const auto events = Payloads(receiver, "event");
  ASSERT_EQ(events.size(), 1u) << "the 503 a handler chose is no report";
  const json::value& e = events[0];
  const json::value& ex = e.at("exception").at("values").at(0);
  EXPECT_EQ(ex.at("type"), "std::out_of_range");
  EXPECT_EQ(ex.at("mechanism").at("type"), "vigil.http");
  EXPECT_EQ(ex.at("mechanism").at("handled"), false);
  EXPECT_EQ(ex.at("mechanism").at("data").at("stack"), "where it was thrown");
  const json::array& frames = ex.at("stacktrace").at("frames").as_array();
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(Str(frames.back().at("function")).find("FindWidget"), std::string::npos)
      << json::serialize(frames.back());
  const json::value& trace = e.at("contexts").at("trace");
  EXPECT_EQ(trace.at("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Str(trace.at("span_id")), seen.span_id) << "the server span of the request";
  EXPECT_EQ(trace.at("parent_span_id"), "00f067aa0ba902b7") << "the caller's span";
  EXPECT_EQ(e.at("tags").at("http.route"), "/widgets/{id}");
  EXPECT_EQ(e.at("tags").at("http.response.status_code"), "500");
  EXPECT_EQ(e.at("tags").at("widget.id"), "w-7");
  EXPECT_EQ(e.at("tags").at("service"), "widgets");
  EXPECT_EQ(e.at("release"), "widgets@9.9");
  const json::value& request = e.at("request");
  EXPECT_EQ(request.at("method"), "GET");
  EXPECT_EQ(request.at("url"), "http://shop.test/widgets/w-7");
  EXPECT_EQ(request.at("query_string"), "access_token=[Filtered]&page=2");
  EXPECT_EQ(request.at("headers").at("User-Agent"), "widget-test");
  const json::array& crumbs = e.at("breadcrumbs").at("values").as_array();
  ASSERT_FALSE(crumbs.empty());
  EXPECT_EQ(crumbs.back().at("message"), "looked it up");
  for (const std::string& body : receiver.bodies()) {
    EXPECT_EQ(test_support::Gunzip(body).find("tok-secret"), std::string::npos);
  }

  // The log line leads to the report.
  const std::string logs = telemetry.Logs();
  EXPECT_NE(logs.find("\"sentry.event_id\":\"" + Str(e.at("event_id")) + "\""), std::string::npos)
      << logs;

  // Release health: the three requests, one of each kind.
  const auto sessions = Payloads(receiver, "sessions");
  std::int64_t exited = 0, errored = 0, crashed = 0;
  for (const auto& s : sessions) {
    for (const auto& m : s.at("aggregates").as_array()) {
      const auto& o = m.as_object();
      if (o.contains("exited")) exited += o.at("exited").as_int64();
      if (o.contains("errored")) errored += o.at("errored").as_int64();
      if (o.contains("crashed")) crashed += o.at("crashed").as_int64();
    }
  }
  EXPECT_EQ(exited, 1);
  EXPECT_EQ(errored, 1);
  EXPECT_EQ(crashed, 1);
}

TEST(ErrorReportsTest, TheAdminTestEndpointReportsATestError) {
  CannedServer receiver({CannedResponse(200)});
  test_support::TestTelemetry telemetry("widgets", ReportingTo(receiver));
  Routes routes;
  routes.Add("POST", "/debug/sentry-test", SentryTestHandler(*telemetry));
  std::string event_id;
  {
    RunningServer server(std::move(routes), Pipeline{});
    const auto res = server.RoundTrip(
        "POST /debug/sentry-test HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
        "traceparent: " +
        std::string(kTraceparent) + "\r\n\r\n");
    ASSERT_EQ(res.result_int(), 202u) << res.body();
    event_id = Str(json::parse(res.body()).at("event_id"));
  }
  ASSERT_TRUE(
      telemetry->errors().Flush(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  const auto events = Payloads(receiver, "event");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(Str(events[0].at("event_id")), event_id);
  EXPECT_NE(Str(events[0].at("exception").at("values").at(0).at("type")).find("SentryTestError"),
            std::string::npos);
  EXPECT_EQ(events[0].at("contexts").at("trace").at("trace_id"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(events[0].at("contexts").at("trace").at("parent_span_id"), "00f067aa0ba902b7");

  test_support::TestTelemetry off("widgets");
  Routes disabled;
  disabled.Add("POST", "/debug/sentry-test", SentryTestHandler(*off));
  RunningServer server(std::move(disabled), Pipeline{});
  EXPECT_EQ(server
                .RoundTrip("POST /debug/sentry-test HTTP/1.1\r\nHost: t\r\n"
                           "Content-Length: 0\r\n\r\n")
                .result_int(),
            503u);
}

}  // namespace
}  // namespace vigil::http

// The reporter against a canned receiver on 127.0.0.1: what an event carries (the throw
// site, the trace, the request with its secrets filtered, breadcrumbs from the request's
// log lines), Sentry's rate limits per category and the client reports that count what
// they held back, session aggregates, log lines and counted failures as events, and a
// receiver that is down or hangs.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>
#include <vigil/telemetry/errors.hpp>
#include <vigil/testing/canned_http.hpp>
#include <vigil/testing/envelope.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/ports.hpp>

namespace vigil::telemetry {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test_support::CannedResponse;
using test_support::CannedServer;

constexpr auto kDeadline = std::chrono::seconds(10);

[[gnu::noinline]] void ThrowForTest() { throw std::runtime_error("the widget broke"); }

ErrorReportingOptions Options(const std::string& base_url) {
  ErrorReportingOptions o;
  o.dsn = ParseSentryDsn("http://pub@" + base_url.substr(7) + "/42");
  o.service = "svc";
  o.version = "1.0";
  o.environment = "test";
  o.flush_interval = milliseconds(3'600'000);  // only Flush sends aggregates here
  o.client_report_delay = milliseconds(3'600'000);
  o.timeout = milliseconds(2000);
  return o;
}

std::string Base(const CannedServer& server) { return server.url(""); }

LoggerOptions QuietLog(int fd) {
  LoggerOptions o;
  o.fd = fd;
  o.handle_signals = false;
  return o;
}

// Every envelope the server got, taken apart.
std::vector<test_support::Envelope> Envelopes(CannedServer& server) {
  std::vector<test_support::Envelope> out;
  for (const std::string& body : server.bodies()) {
    auto envelope = test_support::SplitEnvelope(test_support::Gunzip(body));
    EXPECT_TRUE(envelope);
    if (envelope) out.push_back(std::move(*envelope));
  }
  return out;
}

std::vector<json::value> Payloads(CannedServer& server, std::string_view type) {
  std::vector<json::value> out;
  for (const auto& envelope : Envelopes(server)) {
    for (const auto* item : envelope.Items(type)) out.push_back(json::parse(item->payload));
  }
  return out;
}

// (reason, category) -> quantity over every client report received.
std::map<std::pair<std::string, std::string>, std::int64_t> Discarded(CannedServer& server) {
  std::map<std::pair<std::string, std::string>, std::int64_t> out;
  for (const auto& report : Payloads(server, "client_report")) {
    for (const auto& d : report.at("discarded_events").as_array()) {
      out[{std::string(d.at("reason").as_string()), std::string(d.at("category").as_string())}] +=
          d.at("quantity").as_int64();
    }
  }
  return out;
}

// A reporter that sees a logger's lines, as the SDK wires them.
struct LoggedReporter {
  explicit LoggedReporter(CannedServer& server)
      : log(QuietLog(out.fd())), reporter(Options(Base(server)), &log) {
    log.SetObserver(reporter.log_observer());
  }
  ~LoggedReporter() { log.SetObserver(nullptr); }

  test_support::MemFile out;
  Logger log;
  ErrorReporter reporter;
};

std::string Capture(ErrorReporter& reporter, ErrorEvent event = {}) {
  try {
    ThrowForTest();
  } catch (const std::exception& e) {
    return reporter.CaptureException(e, std::move(event));
  }
  return {};
}

TEST(ErrorReporterTest, WithoutADsnNothingHappens) {
  ErrorReporter reporter(ErrorReportingOptions{}, nullptr);
  EXPECT_FALSE(reporter.enabled());
  EXPECT_EQ(Capture(reporter), "");
  reporter.RecordRequest(RequestOutcome::kCrashed);
  EXPECT_EQ(reporter.log_observer(), nullptr);
  EXPECT_TRUE(reporter.Flush(Clock::now()));
}

TEST(ErrorReporterTest, AnExceptionBecomesAnEventLinkedToItsRequest) {
  CannedServer server({CannedResponse(200)});
  LoggedReporter logged(server);
  Logger& log = logged.log;
  ErrorReporter& reporter = logged.reporter;

  RequestContext ctx = RequestContext::NewRoot();
  ctx.request_id = *RequestId::FromString("req-42");
  log.Info(ctx, "loading the widget", {{"widget.id", 7}, {"password", "hunter2-secret"}});
  log.Info(RequestContext::NewRoot(), "another request's line");
  ErrorEvent event = ErrorEvent::ForRequest(ctx);
  event.parent_span_id = *SpanId::FromHex("b7ad6b7169203331");
  event.logger = "vigil.http";
  event.SetTag("http.route", "/widgets/{id}");
  event.exception.emplace().mechanism = "vigil.http";
  event.exception->handled = false;
  event.request.emplace();
  event.request->method = "GET";
  event.request->SetUrl("http", "shop", "/widgets/7?access_token=tok-secret&x=1");
  event.request->headers = {{"Authorization", "Bearer tok-secret"},
                            {"X-Vigil-Identity", "v1.user:1.9.sig-secret"},
                            {"User-Agent", "ua"}};
  ErrorScope scope;
  scope.SetUser("u-1");
  scope.SetTag("tenant", "t1");
  scope.AddBreadcrumb({0, ErrorLevel::kInfo, "handler", "checked stock", {}});
  scope.ApplyTo(event);

  const std::string id = Capture(reporter, std::move(event));
  ASSERT_EQ(id.size(), 32u);
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));

  ASSERT_EQ(server.requests(), 1u);
  const std::string head = server.heads()[0];
  EXPECT_EQ(head.rfind("POST /api/42/envelope/ HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: application/x-sentry-envelope\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Encoding: gzip\r\n"), std::string::npos);
  EXPECT_NE(head.find("X-Sentry-Auth: Sentry sentry_version=7, sentry_client=vigil.telemetry/"),
            std::string::npos);
  EXPECT_NE(head.find(", sentry_key=pub\r\n"), std::string::npos);

  const auto envelopes = Envelopes(server);
  ASSERT_EQ(envelopes.size(), 1u);
  EXPECT_EQ(json::parse(envelopes[0].header).at("event_id").as_string(), id);
  const auto events = Payloads(server, "event");
  ASSERT_EQ(events.size(), 1u);
  const json::value& e = events[0];
  EXPECT_EQ(e.at("event_id").as_string(), id);
  EXPECT_EQ(e.at("release"), "svc@1.0");
  EXPECT_EQ(e.at("environment"), "test");
  const json::value& ex = e.at("exception").at("values").at(0);
  EXPECT_EQ(ex.at("type"), "std::runtime_error");
  EXPECT_EQ(ex.at("value"), "the widget broke");
  EXPECT_EQ(ex.at("mechanism").at("handled"), false);
  EXPECT_EQ(ex.at("mechanism").at("data").at("stack"), "where it was thrown");
  const json::array& frames = ex.at("stacktrace").at("frames").as_array();
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(std::string(frames.back().at("function").as_string()).find("ThrowForTest"),
            std::string::npos)
      << "the innermost frame is where it was thrown: " << json::serialize(frames);
  EXPECT_EQ(e.at("contexts").at("trace").at("trace_id").as_string(), ctx.span.trace_id.ToHex());
  EXPECT_EQ(e.at("contexts").at("trace").at("span_id").as_string(), ctx.span.span_id.ToHex());
  EXPECT_EQ(e.at("contexts").at("trace").at("parent_span_id"), "b7ad6b7169203331");
  const json::value& tags = e.at("tags");
  EXPECT_EQ(tags.at("service"), "svc");
  EXPECT_EQ(tags.at("version"), "1.0");
  EXPECT_EQ(tags.at("env"), "test");
  EXPECT_EQ(tags.at("http.route"), "/widgets/{id}");
  EXPECT_EQ(tags.at("tenant"), "t1");
  EXPECT_EQ(tags.at("request_id"), "req-42");
  EXPECT_EQ(e.at("user").at("id"), "u-1");
  const json::value& request = e.at("request");
  EXPECT_EQ(request.at("url"), "http://shop/widgets/7");
  EXPECT_EQ(request.at("query_string"), "access_token=[Filtered]&x=1");
  EXPECT_EQ(request.at("headers").at("Authorization"), "[Filtered]");
  EXPECT_EQ(request.at("headers").at("X-Vigil-Identity"), "[Filtered]");
  EXPECT_EQ(request.at("headers").at("User-Agent"), "ua");
  const json::array& crumbs = e.at("breadcrumbs").at("values").as_array();
  ASSERT_EQ(crumbs.size(), 2u) << json::serialize(crumbs);
  EXPECT_EQ(crumbs[0].at("message"), "loading the widget");
  EXPECT_EQ(crumbs[0].at("data").at("widget.id"), "7");
  EXPECT_EQ(crumbs[0].at("data").at("password"), "[Filtered]");
  EXPECT_EQ(crumbs[1].at("message"), "checked stock");
  EXPECT_EQ(e.at("fingerprint").at(0), "std::runtime_error");
  EXPECT_EQ(e.at("fingerprint").at(2), "/widgets/{id}");
  EXPECT_FALSE(e.at("debug_meta").at("images").as_array().empty());
  for (const std::string& body : server.bodies()) {
    const std::string text = test_support::Gunzip(body);
    for (const char* secret : {"tok-secret", "sig-secret", "hunter2-secret"}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << secret;
    }
  }
  EXPECT_EQ(reporter.stats().events_sent, 1u);
}

TEST(ErrorReporterTest, ARateLimitPausesExactlyItsCategoryAndTheClientReportCountsTheDrops) {
  CannedServer server(
      {CannedResponse(429, "X-Sentry-Rate-Limits: 60:error:key\r\n"), CannedResponse(200)});
  ErrorReporter reporter(Options(Base(server)), nullptr);
  EXPECT_FALSE(Capture(reporter).empty());
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  ASSERT_EQ(server.requests(), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Capture(reporter), "") << "paused";
  reporter.RecordRequest(RequestOutcome::kOk);
  reporter.RecordRequest(RequestOutcome::kCrashed);
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));

  ASSERT_EQ(server.requests(), 2u) << "sessions still go";
  EXPECT_EQ(Payloads(server, "event").size(), 1u) << "only the one before the limit";
  const auto sessions = Payloads(server, "sessions");
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("aggregates").at(0).at("exited").as_int64(), 1);
  EXPECT_EQ(sessions[0].at("aggregates").at(0).at("crashed").as_int64(), 1);
  EXPECT_EQ(sessions[0].at("attrs").at("release"), "svc@1.0");
  const auto discarded = Discarded(server);
  EXPECT_EQ(discarded, (std::map<std::pair<std::string, std::string>, std::int64_t>{
                           {{"ratelimit_backoff", "error"}, 3}}));
  EXPECT_EQ(reporter.stats().dropped(DiscardReason::kRateLimitBackoff), 3u);
}

TEST(ErrorReporterTest, ABare429PausesEverythingItsRetryAfterAsks) {
  CannedServer server({CannedResponse(429, "Retry-After: 30\r\n"), CannedResponse(200)});
  ErrorReporter reporter(Options(Base(server)), nullptr);
  EXPECT_FALSE(Capture(reporter).empty());
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  EXPECT_EQ(Capture(reporter), "");
  reporter.RecordRequest(RequestOutcome::kOk);
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  // The client report goes alone: reports are never limited.
  ASSERT_EQ(server.requests(), 2u);
  EXPECT_TRUE(Payloads(server, "sessions").empty());
  EXPECT_EQ(Discarded(server),
            (std::map<std::pair<std::string, std::string>, std::int64_t>{
                {{"ratelimit_backoff", "error"}, 1}, {{"ratelimit_backoff", "session"}, 1}}));
}

TEST(ErrorReporterTest, ARefusedEnvelopeIsASendErrorAndBeforeSendAndSamplingAreCounted) {
  CannedServer server({CannedResponse(400, "", "bad envelope"), CannedResponse(200)});
  auto options = Options(Base(server));
  options.before_send = [](ErrorEvent& event) {
    event.SetTag("seen", "yes");
    return event.message != "drop me";
  };
  ErrorReporter reporter(options, nullptr);
  EXPECT_FALSE(Capture(reporter).empty());
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  ErrorEvent dropped;
  dropped.message = "drop me";
  EXPECT_FALSE(reporter.CaptureEvent(std::move(dropped)).empty());
  ErrorEvent kept;
  kept.message = "keep me";
  EXPECT_FALSE(reporter.CaptureEvent(std::move(kept)).empty());
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  const auto events = Payloads(server, "event");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].at("message").at("formatted"), "keep me");
  EXPECT_EQ(events[1].at("tags").at("seen"), "yes");
  EXPECT_EQ(Discarded(server), (std::map<std::pair<std::string, std::string>, std::int64_t>{
                                   {{"send_error", "error"}, 1}, {{"before_send", "error"}, 1}}));

  CannedServer quiet({CannedResponse(200)});
  auto never = Options(Base(quiet));
  never.sample_rate = 0;
  ErrorReporter sampled(never, nullptr);
  EXPECT_EQ(Capture(sampled), "");
  ASSERT_TRUE(sampled.Flush(Clock::now() + kDeadline));
  EXPECT_EQ(
      Discarded(quiet),
      (std::map<std::pair<std::string, std::string>, std::int64_t>{{{"sample_rate", "error"}, 1}}));
}

TEST(ErrorReporterTest, ErrorLinesBecomeEventsButNotThePipelinesOwnLines) {
  CannedServer server({CannedResponse(200)});
  LoggedReporter logged(server);
  Logger& log = logged.log;
  ErrorReporter& reporter = logged.reporter;
  RequestContext ctx = RequestContext::NewRoot();
  log.Info(ctx, "reserving stock");
  log.Error(ctx, "catalog refused a reservation",
            {{"http.request.header.authorization", "Bearer x-secret"},
             {"http.response.status_code", 401}});
  log.Error(ctx, "request completed", {"http.response.status_code", 500});
  log.Error(ctx, "request failed", {"http.response.status_code", 503});
  log.Error(ctx, "unhandled exception", {"error.type", "std::bad_alloc"});
  log.Error(ctx, "reported already", {"sentry.event_id", "0123"});
  log.Warn(ctx, "only a warning");
  log.Flush();
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  const auto events = Payloads(server, "event");
  ASSERT_EQ(events.size(), 1u);
  const json::value& e = events[0];
  EXPECT_EQ(e.at("message").at("formatted"), "catalog refused a reservation");
  EXPECT_EQ(e.at("logger"), "vigil.log");
  EXPECT_EQ(e.at("level"), "error");
  EXPECT_EQ(e.at("contexts").at("trace").at("trace_id").as_string(), ctx.span.trace_id.ToHex());
  EXPECT_EQ(e.at("extra").at("http.request.header.authorization"), "[Filtered]");
  EXPECT_EQ(e.at("fingerprint").at(1), "catalog refused a reservation");
  const json::array& crumbs = e.at("breadcrumbs").at("values").as_array();
  ASSERT_EQ(crumbs.size(), 1u);
  EXPECT_EQ(crumbs[0].at("message"), "reserving stock");
}

TEST(ErrorReporterTest, CountedFailuresAreOneEventPerSourceAndKind) {
  CannedServer server({CannedResponse(200)});
  ErrorReporter reporter(Options(Base(server)), nullptr);
  RequestContext ctx = RequestContext::NewRoot();
  for (int i = 0; i < 5; ++i) reporter.CountFailure("orders", "timeout", RequestContext::NewRoot());
  reporter.CountFailure("orders", "timeout", ctx);
  reporter.CountFailure("orders", "5xx", ctx);
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  const auto events = Payloads(server, "event");
  ASSERT_EQ(events.size(), 2u);
  std::map<std::string, std::string> messages;
  for (const auto& e : events) {
    messages[std::string(e.at("tags").at("failure.kind").as_string())] =
        std::string(e.at("message").at("formatted").as_string());
    EXPECT_EQ(e.at("tags").at("failure.source"), "orders");
    EXPECT_EQ(e.at("contexts").at("trace").at("trace_id").as_string(), ctx.span.trace_id.ToHex())
        << "the last failing request's trace";
  }
  EXPECT_EQ(messages["timeout"].rfind("timeout from orders: 6 in ", 0), 0u) << messages["timeout"];
  EXPECT_EQ(messages["5xx"].rfind("5xx from orders: 1 in ", 0), 0u);
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  EXPECT_EQ(Payloads(server, "event").size(), 2u) << "counts start again from zero";
}

TEST(ErrorReporterTest, AReceiverThatIsDownCostsNetworkErrorsOnly) {
  const std::uint16_t port = test_support::UnusedPort();
  ErrorReporter reporter(Options("http://127.0.0.1:" + std::to_string(port)), nullptr);
  EXPECT_FALSE(Capture(reporter).empty());
  ASSERT_TRUE(reporter.Flush(Clock::now() + kDeadline));
  EXPECT_EQ(reporter.stats().dropped(DiscardReason::kNetworkError), 1u);
  EXPECT_EQ(reporter.stats().events_sent, 0u);
}

TEST(ErrorReporterTest, AReceiverThatHangsNeverHoldsTheCallerAndTheQueueIsBounded) {
  test_support::SilentListener silent;
  auto options = Options("http://127.0.0.1:" + std::to_string(silent.port()));
  options.queue_size = 3;
  options.timeout = milliseconds(60'000);
  ErrorReporter reporter(options, nullptr);
  int accepted = 0;
  for (int i = 0; i < 50; ++i) {
    const auto start = Clock::now();
    accepted += Capture(reporter).empty() ? 0 : 1;
    EXPECT_LT(Clock::now() - start, milliseconds(100)) << "a capture never waits for the sender";
  }
  // One in flight, three queued at most.
  EXPECT_LE(accepted, 4);
  EXPECT_GE(reporter.stats().dropped(DiscardReason::kQueueOverflow), 46u);
  const auto start = Clock::now();
  reporter.Shutdown(Clock::now() + milliseconds(300));
  EXPECT_LT(Clock::now() - start, milliseconds(3000)) << "shutdown keeps its deadline";
  EXPECT_EQ(Capture(reporter), "") << "nothing after shutdown";
}

}  // namespace
}  // namespace vigil::telemetry

// The tracing middleware against a real server: what a request's trace context and baggage
// headers become in the context a handler sees, including fields sent as several field
// lines (RFC 9110 §5.3), and Exchange's accessors for such fields.
#include <gtest/gtest.h>

#include <string>
#include <vector>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/tracing.hpp>
#include <vigil/testing/server.hpp>

namespace vigil::http {
namespace {

using test_support::RawClient;
using test_support::RunningServer;

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// What the handler saw, one line each: trace id, tracestate and baggage as they would be
// sent onwards.
struct Seen {
  std::string trace_id;
  std::string tracestate;
  std::string baggage;
};

Routes ContextRoutes() {
  Routes r;
  r.Add("GET", "/context", [](Exchange& ex) -> asio::awaitable<void> {
    const auto& ctx = ex.context();
    ex.Respond(200,
               ctx.span.trace_id.ToHex() + "\n" + ctx.span.trace_state.ToHeader() + "\n" +
                   ctx.baggage.ToHeader(),
               "text/plain");
    co_return;
  });
  // Echoes header_list("x-list") and header_count("x-list"), and whether the value was
  // joined into the caller's storage or views the request itself.
  r.Add("GET", "/list", [](Exchange& ex) -> asio::awaitable<void> {
    std::string storage;
    const std::string_view value = ex.header_list("x-list", storage);
    const bool joined = !storage.empty() && value.data() == storage.data();
    ex.Respond(200,
               std::string(value) + "\n" + std::to_string(ex.header_count("x-list")) + "\n" +
                   (joined ? "joined" : "viewed"),
               "text/plain");
    co_return;
  });
  return r;
}

Pipeline TracingPipeline() {
  Pipeline p;
  p.Add<RequestIdMiddleware>();
  p.Add<TracingMiddleware>(telemetry::Tracer());
  return p;
}

std::vector<std::string> Lines(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t nl = body.find('\n', pos);
    out.push_back(body.substr(pos, nl == std::string::npos ? nl : nl - pos));
    if (nl == std::string::npos) return out;
    pos = nl + 1;
  }
}

class TracingTest : public ::testing::Test {
 protected:
  // Sends GET `target` with `fields` (each "Name: value\r\n") and returns the response.
  test_support::ClientResponse Send(std::string_view target, std::string_view fields) {
    RawClient c(server_.port());
    return c.RoundTrip("GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" +
                       std::string(fields) + "\r\n");
  }
  Seen Context(std::string_view fields) {
    const auto res = Send("/context", fields);
    EXPECT_EQ(res.result_int(), 200u);
    const auto lines = Lines(res.body());
    EXPECT_EQ(lines.size(), 3u) << res.body();
    if (lines.size() != 3) return {};
    return {lines[0], lines[1], lines[2]};
  }

  RunningServer server_{ContextRoutes(), TracingPipeline()};
};

TEST_F(TracingTest, OneLineOfEachFieldIsUsedAsIs) {
  const Seen seen = Context("traceparent: " + std::string(kTraceparent) +
                            "\r\ntracestate: rojo=1,congo=2\r\nbaggage: userId=alice\r\n");
  EXPECT_EQ(seen.trace_id, kTraceId);
  EXPECT_EQ(seen.tracestate, "rojo=1,congo=2");
  EXPECT_EQ(seen.baggage, "userId=alice");
}

TEST_F(TracingTest, TracestateLinesAreOneListInOrder) {
  // Another field between the two lines does not end the list.
  const Seen seen = Context("traceparent: " + std::string(kTraceparent) +
                            "\r\ntracestate: rojo=1,congo=2\r\nbaggage: a=1\r\n"
                            "TraceState: baz=3\r\n");
  EXPECT_EQ(seen.trace_id, kTraceId);
  EXPECT_EQ(seen.tracestate, "rojo=1,congo=2,baz=3");
  EXPECT_EQ(seen.baggage, "a=1");
}

TEST_F(TracingTest, ADuplicateKeyAcrossTracestateLinesKeepsTheFirst) {
  const Seen seen = Context("traceparent: " + std::string(kTraceparent) +
                            "\r\ntracestate: rojo=1\r\ntracestate: rojo=2,congo=3\r\n");
  EXPECT_EQ(seen.trace_id, kTraceId);
  EXPECT_EQ(seen.tracestate, "rojo=1,congo=3");
}

TEST_F(TracingTest, TracestateLimitsApplyToTheCombinedList) {
  // Two lines of 20 members each: the first 32 of the 40 are kept.
  std::string first, second, expected;
  for (int i = 0; i < 40; ++i) {
    std::string& line = i < 20 ? first : second;
    const std::string member = "k" + std::to_string(i) + "=v";
    if (!line.empty()) line += ',';
    line += member;
    if (i < 32) expected += (expected.empty() ? "" : ",") + member;
  }
  const Seen seen = Context("traceparent: " + std::string(kTraceparent) +
                            "\r\ntracestate: " + first + "\r\ntracestate: " + second + "\r\n");
  EXPECT_EQ(seen.tracestate, expected);
}

TEST_F(TracingTest, BaggageLinesAreOneList) {
  const Seen seen =
      Context("baggage: userId=alice\r\nx-other: 1\r\nbaggage: serverNode=DF%2028, a=1\r\n");
  EXPECT_EQ(seen.baggage, "userId=alice,serverNode=DF%2028,a=1");
}

TEST_F(TracingTest, AMalformedBaggageMemberCostsOnlyItself) {
  const Seen seen = Context("baggage: a=1,bad key=2\r\nbaggage: b=two words,c=3\r\n");
  EXPECT_EQ(seen.baggage, "a=1,c=3");
}

TEST_F(TracingTest, TwoTraceparentLinesStartANewTrace) {
  // Even two identical valid lines: the field is not a list, so its value is invalid.
  const std::string tp = "traceparent: " + std::string(kTraceparent) + "\r\n";
  const auto res = Send("/context", tp + tp + "tracestate: rojo=1\r\nbaggage: a=1\r\n");
  ASSERT_EQ(res.result_int(), 200u) << "an invalid traceparent never fails the request";
  const auto lines = Lines(res.body());
  ASSERT_EQ(lines.size(), 3u) << res.body();
  EXPECT_NE(lines[0], kTraceId);
  EXPECT_EQ(lines[0].size(), 32u);
  EXPECT_NE(lines[0], std::string(32, '0'));
  EXPECT_EQ(lines[1], "") << "tracestate is not read without a valid traceparent";
  EXPECT_EQ(lines[2], "a=1") << "baggage does not depend on the trace";

  // A second line that is empty is still a second line.
  EXPECT_NE(Context(tp + "traceparent: \r\n").trace_id, kTraceId);
}

TEST_F(TracingTest, HeaderListJoinsLinesOnlyWhenThereAreSeveral) {
  const auto none = Lines(Send("/list", "").body());
  EXPECT_EQ(none, (std::vector<std::string>{"", "0", "viewed"}));

  const auto one = Lines(Send("/list", "X-List: a, b\r\n").body());
  EXPECT_EQ(one, (std::vector<std::string>{"a, b", "1", "viewed"}));

  const auto three =
      Lines(Send("/list", "x-list: a\r\nx-other: z\r\nX-LIST: b, c\r\nx-list: d\r\n").body());
  EXPECT_EQ(three, (std::vector<std::string>{"a, b, c, d", "3", "joined"}));

  // An empty line keeps its place, as RFC 9110 §5.3 combines them.
  const auto empty = Lines(Send("/list", "x-list: a\r\nx-list:\r\n").body());
  EXPECT_EQ(empty, (std::vector<std::string>{"a, ", "2", "joined"}));
}

}  // namespace
}  // namespace vigil::http

// Crashes: a child process that faults or aborts on purpose leaves one envelope in its
// outbox (raw frames, build ids, the request it was serving) and still dies of its
// signal; the next reporter on that outbox names the frames and delivers it, or keeps it
// while the receiver is unreachable. And the handler's formatting on its own.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vigil/telemetry/errors.hpp>
#include <vigil/testing/canned_http.hpp>
#include <vigil/testing/envelope.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/ports.hpp>

#include "errors/crash.hpp"
#include "errors/outbox.hpp"

namespace vigil::telemetry {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using test_support::CannedResponse;
using test_support::CannedServer;
using test_support::TempDir;

constexpr auto kDeadline = std::chrono::seconds(10);

ErrorReportingOptions Options(std::string dsn, const fs::path& outbox) {
  ErrorReportingOptions o;
  o.dsn = ParseSentryDsn(dsn);
  o.service = "svc";
  o.version = "1.0";
  o.environment = "test";
  o.sessions = false;
  o.timeout = std::chrono::milliseconds(2000);
  o.crash_outbox = outbox.string();
  return o;
}

std::string Unreachable() {
  return "http://pub@127.0.0.1:" + std::to_string(test_support::UnusedPort()) + "/42";
}

RequestContext KnownRequest() {
  RequestContext ctx = RequestContext::NewRoot();
  ctx.request_id = RequestId::Generate();
  return ctx;
}

[[gnu::noinline]] void FaultHere() {
  // Not null, which a sanitizer would name before the fault; read back from memory, so
  // that the compiler cannot see where it points.
  volatile std::uintptr_t where = 16;
  *reinterpret_cast<volatile int*>(where) = 1;
  asm volatile("" ::: "memory");
}

// Deeper and deeper until the stack runs out; the work after the call keeps it from
// being a loop.
volatile int g_never = -1;  // a bound the compiler cannot see is never reached

[[gnu::noinline]] int Recurse(int depth) {
  if (depth == g_never) return 0;
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  return Recurse(depth + 1) + frame[0];
}

[[gnu::noinline]] void OverflowHere() {
  volatile int sink = Recurse(0);
  (void)sink;
}

[[gnu::noinline]] void AbortHere() {
  std::abort();
  asm volatile("" ::: "memory");
}

// Runs `crash` in a child with a reporter on `outbox`, serving `ctx`; returns its wait
// status.
int CrashInChild(const fs::path& outbox, const RequestContext& ctx, void (*crash)()) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ErrorReporter reporter(Options(Unreachable(), outbox), nullptr);
    SetCrashRequest(ctx);
    crash();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// The process ended as a SIGSEGV ends it once the report is written.
void ExpectDiedOfSegv(int status) {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizer's own handler, which ours hands over to, ends the process.
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
#else
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
#endif
}

std::vector<fs::path> Envelopes(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path());
  return out;
}

std::string Read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json::object EventOf(const std::string& envelope_text) {
  auto envelope = test_support::SplitEnvelope(envelope_text);
  EXPECT_TRUE(envelope);
  if (!envelope || envelope->Items("event").empty()) return {};
  return json::parse(envelope->Items("event")[0]->payload).as_object();
}

const json::array& FramesOf(const json::object& event) {
  return event.at("exception").at("values").at(0).at("stacktrace").at("frames").as_array();
}

bool AnyFrameNames(const json::array& frames, std::string_view function) {
  for (const json::value& f : frames) {
    const json::value* name = f.as_object().if_contains("function");
    if (name != nullptr &&
        std::string_view(name->as_string()).find(function) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

TEST(CrashTest, AFaultLeavesAnEnvelopeThatTheNextStartNamesAndDelivers) {
  TempDir dir("crash");
  const fs::path outbox = dir.path() / "outbox";
  const RequestContext ctx = KnownRequest();
  ExpectDiedOfSegv(CrashInChild(outbox, ctx, &FaultHere));

  const auto files = Envelopes(outbox);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".envelope");
  const json::object raw = EventOf(Read(files[0]));
  EXPECT_EQ(raw.at("level"), "fatal");
  const json::object& exception = raw.at("exception").at("values").at(0).as_object();
  EXPECT_EQ(exception.at("type"), "SIGSEGV");
  EXPECT_EQ(exception.at("value"), "Segmentation fault (SEGV_MAPERR) at 0x10");
  EXPECT_EQ(exception.at("mechanism").at("handled"), false);
  EXPECT_EQ(exception.at("mechanism").at("meta").at("signal").at("number"), SIGSEGV);
  EXPECT_EQ(raw.at("contexts").at("trace").at("trace_id").as_string(), ctx.span.trace_id.ToHex());
  EXPECT_EQ(raw.at("contexts").at("trace").at("span_id").as_string(), ctx.span.span_id.ToHex());
  EXPECT_EQ(raw.at("tags").at("request_id").as_string(), ctx.request_id.view());
  EXPECT_EQ(raw.at("tags").at("service"), "svc");
  EXPECT_FALSE(raw.at("debug_meta").at("images").as_array().empty());
  // Raw as the handler wrote them: addresses and modules, no names.
  const json::array& raw_frames = FramesOf(raw);
  ASSERT_GE(raw_frames.size(), 2u);
  EXPECT_FALSE(AnyFrameNames(raw_frames, "FaultHere"));
  EXPECT_TRUE(raw_frames.back().as_object().contains("image_addr"));

  // The next start: delivered with named frames, the file gone.
  CannedServer server({CannedResponse(200)});
  ErrorReportingOptions options = Options("http://pub@" + server.url("").substr(7) + "/42", outbox);
  options.sessions = true;
  ErrorReporter reporter(options, nullptr);
  ASSERT_TRUE(reporter.Flush(std::chrono::steady_clock::now() + kDeadline));
  EXPECT_EQ(reporter.stats().crashes_sent, 1u);
  // The crash, then the flush's sessions: the request it served counts as crashed.
  ASSERT_EQ(server.bodies().size(), 2u);
  const json::object sent = EventOf(test_support::Gunzip(server.bodies()[0]));
  auto sessions = test_support::SplitEnvelope(test_support::Gunzip(server.bodies()[1]));
  ASSERT_TRUE(sessions);
  ASSERT_EQ(sessions->Items("sessions").size(), 1u);
  const json::value aggregates = json::parse(sessions->Items("sessions")[0]->payload);
  EXPECT_EQ(aggregates.at("aggregates").at(0).at("crashed"), 1);
  EXPECT_EQ(sent.at("event_id"), raw.at("event_id"));
  const json::array& frames = FramesOf(sent);
  // The innermost frame is the faulting function itself.
  ASSERT_TRUE(frames.back().as_object().contains("function"));
  EXPECT_NE(std::string_view(frames.back().at("function").as_string()).find("FaultHere"),
            std::string_view::npos)
      << json::serialize(frames);
  EXPECT_TRUE(AnyFrameNames(frames, "CrashInChild"));
  EXPECT_TRUE(Envelopes(outbox).empty());
}

TEST(CrashTest, AnAbortEndsTheProcessByItsSignalAfterItsReportIsWritten) {
  TempDir dir("crash");
  const fs::path outbox = dir.path() / "outbox";
  const int status = CrashInChild(outbox, KnownRequest(), &AbortHere);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGABRT);
  const auto files = Envelopes(outbox);
  ASSERT_EQ(files.size(), 1u);
  const json::object raw = EventOf(Read(files[0]));
  EXPECT_EQ(raw.at("exception").at("values").at(0).at("type"), "SIGABRT");
}

TEST(CrashTest, AStackOverflowOnARequestThreadIsReportedFromTheAlternateStack) {
  TempDir dir("crash");
  const fs::path outbox = dir.path() / "outbox";
  ExpectDiedOfSegv(CrashInChild(outbox, KnownRequest(), &OverflowHere));
  const auto files = Envelopes(outbox);
  ASSERT_EQ(files.size(), 1u);
  const json::object raw = EventOf(Read(files[0]));
  EXPECT_EQ(raw.at("exception").at("values").at(0).at("type"), "SIGSEGV");
  // The unwinder stops at its frame limit: deep in the recursion.
  EXPECT_GE(FramesOf(raw).size(), 32u);
}

TEST(CrashTest, AReportWaitsInTheOutboxWhileTheReceiverIsUnreachable) {
  TempDir dir("crash");
  const fs::path outbox = dir.path() / "outbox";
  ASSERT_TRUE(WIFSIGNALED(CrashInChild(outbox, KnownRequest(), &AbortHere)));
  {
    ErrorReporter reporter(Options(Unreachable(), outbox), nullptr);
    reporter.Flush(std::chrono::steady_clock::now() + kDeadline);
    EXPECT_EQ(reporter.stats().crashes_sent, 0u);
  }
  EXPECT_EQ(Envelopes(outbox).size(), 1u);
}

TEST(CrashTest, WhatIsNotACrashEnvelopeIsRemovedAndAnOldInterruptedWriteToo) {
  TempDir dir("crash");
  const fs::path outbox = dir.path() / "outbox";
  fs::create_directories(outbox);
  std::ofstream(outbox / "garbage.envelope") << "not an envelope";
  std::ofstream(outbox / ".0123.tmp") << "{\"event_id\":";
  std::ofstream(outbox / ".4567.tmp") << "{\"event_id\":";
  fs::last_write_time(outbox / ".0123.tmp",
                      fs::file_time_type::clock::now() - std::chrono::minutes(2));
  CannedServer server({CannedResponse(200)});
  ErrorReporter reporter(Options("http://pub@" + server.url("").substr(7) + "/42", outbox),
                         nullptr);
  ASSERT_TRUE(reporter.Flush(std::chrono::steady_clock::now() + kDeadline));
  // The recent temporary file may be another process's write under way.
  EXPECT_EQ(Envelopes(outbox), std::vector<fs::path>{outbox / ".4567.tmp"});
  EXPECT_EQ(reporter.stats().dropped(DiscardReason::kSendError), 1u);
}

TEST(CrashTest, TheEnvelopeIsCutOffRatherThanOverflowed) {
  internal::CrashAttributes attributes{
      std::string(32, 'a'), "", "svc@1", "test", "host", "1", "svc", "1"};
  const std::uintptr_t frames[] = {0x1000, 0x2000};
  char small[64];
  EXPECT_EQ(internal::FormatCrashEnvelope(attributes, {}, SIGSEGV, SEGV_MAPERR, 0x10, frames, {}, 0,
                                          small, sizeof small),
            0u);
  std::string big(internal::kMaxCrashEnvelope, '\0');
  const std::size_t n = internal::FormatCrashEnvelope(attributes, {}, SIGFPE, FPE_INTDIV, 0x1234,
                                                      frames, {}, 0, big.data(), big.size());
  ASSERT_GT(n, 0u);
  const json::object event = EventOf(big.substr(0, n));
  EXPECT_EQ(event.at("exception").at("values").at(0).at("value"),
            "Floating-point exception (FPE_INTDIV) at 0x1234");
  // Outermost first; the innermost is not a return address.
  const json::object& stack = event.at("exception").at("values").at(0).at("stacktrace").as_object();
  EXPECT_EQ(stack.at("frames").at(0).at("instruction_addr"), "0x2000");
  EXPECT_EQ(stack.at("instruction_addr_adjustment"), "all_but_first");
  EXPECT_FALSE(event.contains("contexts"));  // no request on this thread
}

}  // namespace
}  // namespace vigil::telemetry

// What an error report costs the request that fails, and what every throw pays while a
// reporter is on (the __cxa_throw hook records the thrower's stack).
// Target: capturing an exception on the request path <= 20 us median for the caller
// (BM_CaptureException: the event built as the error middleware builds it, then
// CaptureException; symbolising, serialising and sending happen on the reporter's
// thread, which here sends to a port that refuses, as fast as it can).
// BM_ThrowCatch/0 and /1: one throw and catch with the hook off and on.
//
//   errors_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>
#include <vigil/telemetry/errors.hpp>

#include "errors/throw_stack.hpp"

namespace vt = vigil::telemetry;

namespace {

using Clock = std::chrono::steady_clock;

// A loopback port nothing listens on (taken from the kernel and given back).
int RefusingPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

vt::ErrorReportingOptions Options() {
  vt::ErrorReportingOptions o;
  o.dsn = vt::ParseSentryDsn("http://key@127.0.0.1:" + std::to_string(RefusingPort()) + "/1");
  o.service = "bench";
  o.version = "1";
  o.queue_size = 1'000'000;  // every capture is queued: none returns early
  o.sessions = false;
  return o;
}

// A handler a few calls deep, as in a service.
[[gnu::noinline]] void Lookup(int depth) {
  if (depth > 0) {
    Lookup(depth - 1);
    asm volatile("" ::: "memory");
    return;
  }
  throw std::out_of_range("no item 42 in the catalog");
}

// What the error middleware puts into a request's event (http::ErrorEventOf).
vt::ErrorEvent RequestEvent(const vt::RequestContext& ctx) {
  vt::ErrorEvent event = vt::ErrorEvent::ForRequest(ctx);
  event.logger = "vigil.http";
  event.SetTag("http.route", "/items/{id}");
  event.SetTag("http.response.status_code", "500");
  vt::RequestInfo& request = event.request.emplace();
  request.method = "GET";
  request.SetUrl("http", "shop.example", "/items/42?expand=price");
  const std::pair<const char*, const char*> headers[] = {
      {"Host", "shop.example"},
      {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
      {"Accept", "application/json"},
      {"Accept-Encoding", "gzip, br"},
      {"Authorization", "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln"},
      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"X-Request-Id", "01HZX4J5K6M7N8P9Q0R1S2T3V4"},
      {"X-Forwarded-For", "203.0.113.7"}};
  for (const auto& [name, value] : headers) request.AddHeader(name, value);
  vt::ExceptionInfo& info = event.exception.emplace();
  info.mechanism = "vigil.http";
  info.handled = false;
  return event;
}

void BM_CaptureException(benchmark::State& state) {
  vt::ErrorReporter reporter(Options(), nullptr);
  vt::RequestContext ctx = vt::RequestContext::NewRoot();
  std::vector<double> ns;
  ns.reserve(1 << 16);
  for (auto _ : state) {
    try {
      Lookup(8);
    } catch (const std::exception& e) {
      const auto start = Clock::now();
      std::string id = reporter.CaptureException(e, RequestEvent(ctx));
      const auto took = Clock::now() - start;
      benchmark::DoNotOptimize(id);
      state.SetIterationTime(std::chrono::duration<double>(took).count());
      ns.push_back(static_cast<double>(std::chrono::nanoseconds(took).count()));
    }
  }
  std::sort(ns.begin(), ns.end());
  if (!ns.empty()) {
    state.counters["median_ns"] = ns[ns.size() / 2];
    state.counters["p99_ns"] = ns[ns.size() * 99 / 100];
  }
  const auto stats = reporter.stats();
  state.counters["dropped"] = static_cast<double>(stats.dropped(vt::DiscardReason::kQueueOverflow));
  reporter.Shutdown(Clock::now());
}
BENCHMARK(BM_CaptureException)->UseManualTime()->Iterations(20000);

void BM_ThrowCatch(benchmark::State& state) {
  const bool hook = state.range(0) != 0;
  if (hook) vt::internal::EnableThrowStacks();
  for (auto _ : state) {
    try {
      Lookup(8);
    } catch (const std::exception& e) {
      benchmark::DoNotOptimize(&e);
    }
  }
  if (hook) vt::internal::DisableThrowStacks();
}
BENCHMARK(BM_ThrowCatch)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();

// Trace-context propagation costs: what every request pays to extract the incoming
// headers and inject the outgoing ones. Target: extract + inject <= 100 ns.
#include <benchmark/benchmark.h>

#include <string>
#include <vigil/telemetry/context.hpp>

#include "context/w3c_text.hpp"

namespace vt = vigil::telemetry;

namespace {

constexpr std::string_view kTraceparent =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view kTracestate = "rojo=00f067aa0ba902b7";
constexpr std::string_view kBaggage = "userId=alice,serverNode=DF%2028,isProduction=false";

void BM_ParseTraceparent(benchmark::State& state) {
  std::string_view header = kTraceparent;
  for (auto _ : state) {
    benchmark::DoNotOptimize(header);
    auto r = vt::ParseTraceparent(header);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseTraceparent);

void BM_FormatTraceparent(benchmark::State& state) {
  const vt::SpanContext ctx = *vt::ParseTraceparent(kTraceparent).value;
  char buf[vt::kTraceparentSize];
  for (auto _ : state) {
    vt::FormatTraceparent(ctx, buf);
    benchmark::DoNotOptimize(buf);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_FormatTraceparent);

// A server hop: extract both headers, then inject them into an outgoing request whose
// header buffers are reused from one request to the next.
void BM_ExtractInject(benchmark::State& state) {
  char traceparent_out[vt::kTraceparentSize];
  std::string tracestate_out;
  tracestate_out.reserve(512);
  for (auto _ : state) {
    auto ctx = vt::ExtractTraceContext(kTraceparent, kTracestate);
    vt::FormatTraceparent(*ctx.value, traceparent_out);
    tracestate_out.clear();
    vt::w3c::AppendTraceStateHeader(ctx.value->trace_state, tracestate_out);
    benchmark::DoNotOptimize(traceparent_out);
    benchmark::DoNotOptimize(tracestate_out.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_ExtractInject);

void BM_ParseBaggage(benchmark::State& state) {
  for (auto _ : state) {
    auto r = vt::ParseBaggage(kBaggage);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseBaggage);

void BM_TraceIdRandom(benchmark::State& state) {
  for (auto _ : state) {
    auto id = vt::TraceId::Random();
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_TraceIdRandom);

void BM_SpanIdRandom(benchmark::State& state) {
  for (auto _ : state) {
    auto id = vt::SpanId::Random();
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_SpanIdRandom);

}  // namespace

BENCHMARK_MAIN();

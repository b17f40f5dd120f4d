// Hot paths of the metrics module: updates (single and two threads on one metric),
// label lookup and exposition.
//
//   ./metrics_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {
namespace {

Registry& SharedRegistry() {
  static Registry registry;
  return registry;
}

// Log-uniform over 1 ms .. 20 s, so every duration bucket (and +Inf) gets traffic and the
// bucket search cannot be branch-predicted.
const std::array<double, 1024>& SpreadValues() {
  static const std::array<double, 1024> values = [] {
    std::array<double, 1024> v{};
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (double& d : v) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const double u = static_cast<double>(x >> 11) / 9007199254740992.0;
      d = 0.001 * std::pow(20000.0, u);
    }
    return v;
  }();
  return values;
}

void BM_CounterInc(benchmark::State& state) {
  static Counter& counter = SharedRegistry().AddCounter("bench_counter_total", "Bench.");
  for (auto _ : state) {
    counter.Inc();
  }
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2);

void BM_GaugeSet(benchmark::State& state) {
  static Gauge& gauge = SharedRegistry().AddGauge("bench_gauge", "Bench.");
  double v = 0;
  for (auto _ : state) {
    gauge.Set(v += 1);
  }
}
BENCHMARK(BM_GaugeSet);

void BM_HistogramObserve(benchmark::State& state) {
  static Histogram& histogram = SharedRegistry().AddHistogram("bench_seconds", "Bench.");
  const auto& values = SpreadValues();
  std::size_t i = 0;
  for (auto _ : state) {
    histogram.Observe(values[i++ & 1023]);
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

void BM_HistogramObserveWithExemplar(benchmark::State& state) {
  static Histogram& histogram = SharedRegistry().AddHistogram("bench_exemplar_seconds", "Bench.");
  const RequestContext ctx = RequestContext::NewRoot(true);
  const auto& values = SpreadValues();
  std::size_t i = 0;
  for (auto _ : state) {
    histogram.Observe(values[i++ & 1023], ctx.span);
  }
}
BENCHMARK(BM_HistogramObserveWithExemplar);

void BM_WithLabels3(benchmark::State& state) {
  static Family<Histogram>& family = SharedRegistry().HistogramFamily(
      "bench_http_server_request_duration_seconds", "Bench.",
      {"http_request_method", "http_route", "http_response_status_code"});
  static const bool populated = [] {
    for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
      for (int route = 0; route < 10; ++route) {
        for (const char* status : {"200", "404", "500"}) {
          family.WithLabels({method, "/api/route/" + std::to_string(route), status});
        }
      }
    }
    return true;
  }();
  benchmark::DoNotOptimize(populated);
  for (auto _ : state) {
    Histogram& h = family.WithLabels({"POST", "/api/route/7", "200"});
    benchmark::DoNotOptimize(&h);
  }
}
BENCHMARK(BM_WithLabels3);

void BM_Expose100Histograms(benchmark::State& state) {
  const auto format = static_cast<ExpositionFormat>(state.range(0));
  Registry registry;
  auto& family =
      registry.HistogramFamily("bench_http_server_request_duration_seconds", "Bench.",
                               {"http_request_method", "http_route", "http_response_status_code"});
  const auto& values = SpreadValues();
  for (int s = 0; s < 100; ++s) {
    Histogram& h = family.WithLabels(
        {s % 2 == 0 ? "GET" : "POST", "/api/route/" + std::to_string(s / 2), "200"});
    for (int i = 0; i < 100; ++i) {
      h.Observe(values[static_cast<std::size_t>(s * 100 + i) & 1023]);
    }
  }
  std::string out;
  for (auto _ : state) {
    out.clear();  // keeps the capacity, as a server reusing its buffer would
    registry.Expose(format, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Expose100Histograms)
    ->Arg(static_cast<int>(ExpositionFormat::kPrometheusText))
    ->Arg(static_cast<int>(ExpositionFormat::kOpenMetrics))
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vigil::telemetry

BENCHMARK_MAIN();

// What a traced request pays for its spans, on the caller's side, with the batch span
// processor and an exporter that discards (so only the pipeline is measured).
// Targets: sampled span + 4 attributes + end <= 150 ns; unsampled span <= 15 ns
// (opentelemetry-cpp: about 3,375 ns). BM_SampledServerSpan9Attrs is an HTTP server
// span's attribute set. BM_ProducerFullSpeed reports the throughput of
// one thread creating spans as fast as it can and how many of them the processor
// dropped (the target is none); BM_ProducerFullSpeedQueue32k does the same with a larger
// queue, and BM_CpuOutage measures how long this machine takes a CPU away from a
// running thread, which is what a full-speed producer's drops depend on.
//
//   trace_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/telemetry/trace.hpp>
#include <vigil/telemetry/trace_processor.hpp>

namespace vt = vigil::telemetry;

namespace {

class DiscardExporter : public vt::SpanExporter {
 public:
  vt::ExportOutcome Export(std::span<const vt::SpanData* const> batch) noexcept override {
    return {batch.size(), 0, {}};
  }
  void Shutdown(std::chrono::steady_clock::time_point) noexcept override {}
};

// Encodes every batch as the OTLP/HTTP exporter would, then discards the bytes: the worker
// reads every line of every record, so the records come back to the producing thread from
// another core's cache, as they do in a service.
class EncodingExporter : public vt::SpanExporter {
 public:
  vt::ExportOutcome Export(std::span<const vt::SpanData* const> batch) noexcept override {
    try {
      body_.clear();
      vt::EncodeTracesProtobuf(resource_, scope_, batch, body_);
    } catch (...) {
      return {0, batch.size(), {}};
    }
    return {batch.size(), 0, {}};
  }
  void Shutdown(std::chrono::steady_clock::time_point) noexcept override {}

 private:
  vt::Resource resource_{{{"service.name", "bench"}}};
  vt::InstrumentationScope scope_;
  std::string body_;
};

vt::SpanContext Parent(bool sampled) {
  vt::SpanContext parent;
  parent.trace_id = vt::TraceId::Random();
  parent.span_id = vt::SpanId::Random();
  parent.flags.bits =
      static_cast<std::uint8_t>(vt::TraceFlags::kRandom | (sampled ? vt::TraceFlags::kSampled : 0));
  return parent;
}

void ReportDrops(benchmark::State& state, vt::BatchSpanProcessor& processor) {
  processor.Shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  const auto all = processor.stats();
  const auto& stats = all.exporters().front();
  state.counters["dropped"] = static_cast<double>(stats.dropped());
  state.counters["exported"] = static_cast<double>(stats.exported);
}

// Starts, fills (`fill(span)`) and ends one sampled child span per iteration.
template <typename Fill>
void SampledSpans(benchmark::State& state, std::string_view name, vt::SpanKind kind, Fill fill) {
  vt::BatchSpanProcessor processor(std::make_unique<DiscardExporter>());
  const vt::Tracer tracer(vt::Sampler(), &processor);
  const vt::SpanContext parent = Parent(true);
  for (auto _ : state) {
    vt::Span span = tracer.StartSpan(name, parent, kind);
    fill(span);
    span.End();
  }
  state.SetItemsProcessed(state.iterations());
  ReportDrops(state, processor);
}

void BM_SampledSpan4Attrs(benchmark::State& state) {
  SampledSpans(state, "GET /items/{id}", vt::SpanKind::kServer, [](vt::Span& span) {
    span.SetAttribute("http.request.method", "GET");
    span.SetAttribute("http.response.status_code", 200);
    span.SetAttribute("sampling.weight", 0.25);
    span.SetAttribute("cache.hit", true);
  });
}
BENCHMARK(BM_SampledSpan4Attrs);

// The attributes the HTTP tracing middleware sets on a server span: the per-key
// duplicate check is what grows with their number.
void FillServerSpan(vt::Span& span) {
  span.SetAttribute("http.request.method", "GET");
  span.SetAttribute("http.route", "/items/{id}");
  span.SetAttribute("url.path", "/items/42");
  span.SetAttribute("url.scheme", "http");
  span.SetAttribute("network.protocol.version", "1.1");
  span.SetAttribute("client.address", "127.0.0.1");
  span.SetAttribute("user_agent.original", "wrk");
  span.SetAttribute("http.response.status_code", 200);
  span.SetAttribute("server.address", "catalog");
}

void BM_SampledServerSpan9Attrs(benchmark::State& state) {
  SampledSpans(state, "GET /items/{id}", vt::SpanKind::kServer, FillServerSpan);
}
BENCHMARK(BM_SampledServerSpan9Attrs);

// The same span at a service's pace (one every 10 µs, the time between spans not
// counted) and exported through the protobuf encoder on the processor's thread, so each
// recycled record was last read on the other core: what a request thread pays per span.
// The time column includes two steady_clock reads (about 20 ns each).
void BM_SampledServerSpan9AttrsPacedEncoded(benchmark::State& state) {
  vt::BatchSpanProcessor processor(std::make_unique<EncodingExporter>());
  const vt::Tracer tracer(vt::Sampler(), &processor);
  const vt::SpanContext parent = Parent(true);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    vt::Span span = tracer.StartSpan("GET /items/{id}", parent, vt::SpanKind::kServer);
    FillServerSpan(span);
    span.End();
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
    while (std::chrono::steady_clock::now() - end < std::chrono::microseconds(10)) {
    }
  }
  state.SetItemsProcessed(state.iterations());
  ReportDrops(state, processor);
}
BENCHMARK(BM_SampledServerSpan9AttrsPacedEncoded)->UseManualTime()->Iterations(200000);

// A span with 32 attributes whose keys all have the same length (application.field.10
// to .41), the worst case for the duplicate-key check of each SetAttribute.
void BM_SampledSpan32Attrs(benchmark::State& state) {
  std::vector<std::string> keys;
  for (int i = 0; i < 32; ++i) {
    keys.push_back("application.field." + std::to_string(10 + i));
  }
  SampledSpans(state, "batch", vt::SpanKind::kInternal, [&keys](vt::Span& span) {
    std::int64_t v = 0;
    for (const std::string& k : keys) span.SetAttribute(k, ++v);
  });
}
BENCHMARK(BM_SampledSpan32Attrs);

void BM_UnsampledSpan(benchmark::State& state) {
  vt::BatchSpanProcessor processor(std::make_unique<DiscardExporter>());
  const vt::Tracer tracer(vt::Sampler(), &processor);
  const vt::SpanContext parent = Parent(false);
  for (auto _ : state) {
    vt::Span span = tracer.StartSpan("GET /items/{id}", parent, vt::SpanKind::kServer);
    span.SetAttribute("http.request.method", "GET");
    benchmark::DoNotOptimize(span.context().span_id);
    span.End();
  }
  ReportDrops(state, processor);
}
BENCHMARK(BM_UnsampledSpan);

void BM_RootSpan(benchmark::State& state) {
  vt::BatchSpanProcessor processor(std::make_unique<DiscardExporter>());
  const vt::Tracer tracer(vt::Sampler(), &processor);
  for (auto _ : state) {
    vt::Span span = tracer.StartRootSpan("GET /items/{id}", vt::SpanKind::kServer);
    span.End();
  }
  ReportDrops(state, processor);
}
BENCHMARK(BM_RootSpan);

// One thread ending 2,000,000 sampled spans (4 attributes) back to back with the
// batch settings of `options`; `dropped` should stay 0.
void ProducerFullSpeed(benchmark::State& state, const vt::BatchOptions& options) {
  constexpr int kSpans = 2'000'000;
  std::uint64_t dropped = 0;
  for (auto _ : state) {
    vt::BatchSpanProcessor processor(std::make_unique<DiscardExporter>(), options);
    const vt::Tracer tracer(vt::Sampler(), &processor);
    const vt::SpanContext parent = Parent(true);
    for (int i = 0; i < kSpans; ++i) {
      vt::Span span = tracer.StartSpan("GET /items/{id}", parent, vt::SpanKind::kServer);
      span.SetAttribute("http.request.method", "GET");
      span.SetAttribute("http.response.status_code", i);
      span.SetAttribute("sampling.weight", 0.25);
      span.SetAttribute("cache.hit", true);
    }
    state.PauseTiming();
    processor.Shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    const auto stats = processor.stats();
    dropped += stats.exporters().front().dropped();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kSpans);
  state.counters["dropped"] = static_cast<double>(dropped);
}

// The default settings (a 2,048-span queue).
void BM_ProducerFullSpeed(benchmark::State& state) { ProducerFullSpeed(state, {}); }
BENCHMARK(BM_ProducerFullSpeed)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// The same with OTEL_BSP_MAX_QUEUE_SIZE=32768: a queue that outlasts the machine's
// longest CPU outages (BM_CpuOutage) shows whether the worker keeps up on average.
void BM_ProducerFullSpeedQueue32k(benchmark::State& state) {
  ProducerFullSpeed(state, vt::BatchOptions{.max_queue_size = 32768});
}
BENCHMARK(BM_ProducerFullSpeedQueue32k)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// The machine, not the SDK: one thread per CPU spins for a second reading the clock;
// `max_outage_us` is the longest time any of them was off its CPU (preempted by another
// task, an interrupt or the hypervisor). A span worker can lose its CPU as long; at full
// speed the producer fills the default queue in about 200 us.
void BM_CpuOutage(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::int64_t worst = 0;
  std::int64_t over_200us = 0;
  for (auto _ : state) {
    std::vector<std::int64_t> longest(threads, 0);
    std::vector<std::int64_t> over(threads, 0);
    std::vector<std::thread> spinners;
    for (unsigned t = 0; t < threads; ++t) {
      spinners.emplace_back([&, t] {
        const auto end = Clock::now() + std::chrono::seconds(1);
        auto last = Clock::now();
        for (auto now = last; now < end; last = now) {
          now = Clock::now();
          const auto gap =
              std::chrono::duration_cast<std::chrono::microseconds>(now - last).count();
          longest[t] = std::max<std::int64_t>(longest[t], gap);
          over[t] += gap > 200 ? 1 : 0;
        }
      });
    }
    for (auto& spinner : spinners) spinner.join();
    worst = std::max(worst, *std::max_element(longest.begin(), longest.end()));
    for (const auto n : over) over_200us += n;
  }
  state.counters["max_outage_us"] = static_cast<double>(worst);
  state.counters["outages_over_200us"] = static_cast<double>(over_200us);
}
BENCHMARK(BM_CpuOutage)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();

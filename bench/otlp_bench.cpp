// OTLP encoding costs: what the export thread pays per batch before anything reaches the
// network. A batch is 512 typical server spans (8 attributes, one event). Target:
// >= 2 M spans/s for protobuf (items_per_second is spans/s).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>
#include <vigil/telemetry/otlp.hpp>

#include "otlp/gzip.hpp"

namespace vt = vigil::telemetry;

namespace {

constexpr int kBatch = 512;

vt::SpanData TypicalSpan(int i) {
  vt::SpanData s;
  s.trace_id = vt::TraceId::Random();
  s.span_id = vt::SpanId::Random();
  s.parent_span_id = vt::SpanId::Random();
  s.parent_is_remote = true;
  s.flags.bits = vt::TraceFlags::kSampled;
  s.name = "GET /api/catalog/items/{id}";
  s.kind = vt::SpanKind::kServer;
  s.start_unix_nano = 1700000000000000000ULL + static_cast<std::uint64_t>(i) * 1000;
  s.end_unix_nano = s.start_unix_nano + 2345678;
  s.attributes = {{"http.request.method", "GET"},
                  {"http.route", "/api/catalog/items/{id}"},
                  {"http.response.status_code", 200},
                  {"url.path", "/api/catalog/items/" + std::to_string(1000 + i)},
                  {"url.scheme", "http"},
                  {"server.address", "catalog"},
                  {"server.port", 8082},
                  {"user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) vigil-load/1.0"}};
  s.events = {
      {"cache.miss", s.start_unix_nano + 1000, {{"cache.key", "item:" + std::to_string(i)}}}};
  return s;
}

struct Batch {
  std::vector<vt::SpanData> spans;
  std::vector<const vt::SpanData*> pointers;
  vt::Resource resource{{{"service.name", "catalog"},
                         {"service.version", "0.3.0"},
                         {"deployment.environment.name", "prod"},
                         {"service.instance.id", "catalog-7d9f8b6c5-x2x9q"}}};
  vt::InstrumentationScope scope{"vigil", "0.1.0"};

  Batch() {
    for (int i = 0; i < kBatch; ++i) {
      spans.push_back(TypicalSpan(i));
    }
    for (const auto& s : spans) {
      pointers.push_back(&s);
    }
  }
};

void BM_EncodeProtobuf(benchmark::State& state) {
  const Batch batch;
  std::string out;
  for (auto _ : state) {
    out.clear();
    vt::EncodeTracesProtobuf(batch.resource, batch.scope, batch.pointers, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
  state.counters["bytes_per_span"] = static_cast<double>(out.size()) / kBatch;
}
BENCHMARK(BM_EncodeProtobuf);

#if defined(__x86_64__)
// Evicts every cache line of a span record (the record, its attribute and event arrays, and
// every string kept outside its object) from every cache of the machine.
void EvictSpan(const vt::SpanData& s) {
  const auto evict = [](const void* p, std::size_t n) {
    const auto* c = static_cast<const char*>(p);
    for (std::size_t off = 0; off < n; off += 64) __builtin_ia32_clflush(c + off);
    if (n != 0) __builtin_ia32_clflush(c + n - 1);
  };
  const auto evict_string = [&](const std::string& str) { evict(str.data(), str.size()); };
  evict(&s, sizeof s);
  evict_string(s.name);
  evict(s.attributes.data(), s.attributes.size() * sizeof(vt::Attribute));
  for (const auto& a : s.attributes) {
    evict_string(a.key);
    if (const auto* v = std::get_if<std::string>(&a.value.v)) evict_string(*v);
  }
  evict(s.events.data(), s.events.size() * sizeof(vt::SpanEvent));
}

// The export thread's usual case: the records were last written on another core, so none of
// their lines is in this core's caches. Every line of the batch is flushed to memory before
// each encoding (not timed), and the records are visited in a shuffled order, as a pool
// shared by several request threads hands them over.
template <typename Encoder>
void EncodeColdRecords(benchmark::State& state, Encoder encode) {
  Batch batch;
  std::shuffle(batch.pointers.begin(), batch.pointers.end(), std::mt19937(42));
  std::string out;
  for (auto _ : state) {
    state.PauseTiming();
    for (const vt::SpanData* s : batch.pointers) EvictSpan(*s);
    __builtin_ia32_mfence();
    out.clear();
    state.ResumeTiming();
    encode(batch.resource, batch.scope, batch.pointers, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_EncodeProtobufColdRecords(benchmark::State& state) {
  EncodeColdRecords(state, vt::EncodeTracesProtobuf);
}
BENCHMARK(BM_EncodeProtobufColdRecords);

void BM_EncodeJsonColdRecords(benchmark::State& state) {
  EncodeColdRecords(state, vt::EncodeTracesJson);
}
BENCHMARK(BM_EncodeJsonColdRecords);
#endif  // __x86_64__: CLFLUSH

void BM_EncodeJson(benchmark::State& state) {
  const Batch batch;
  std::string out;
  for (auto _ : state) {
    out.clear();
    vt::EncodeTracesJson(batch.resource, batch.scope, batch.pointers, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
  state.counters["bytes_per_span"] = static_cast<double>(out.size()) / kBatch;
}
BENCHMARK(BM_EncodeJson);

// What OTEL_EXPORTER_OTLP_COMPRESSION=gzip adds on top of protobuf encoding.
void BM_GzipProtobufBatch(benchmark::State& state) {
  const Batch batch;
  std::string body, compressed;
  vt::EncodeTracesProtobuf(batch.resource, batch.scope, batch.pointers, body);
  vigil::telemetry::otlp::GzipCompressor gzip;
  for (auto _ : state) {
    gzip.Compress(body, compressed);
    benchmark::DoNotOptimize(compressed.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["ratio"] =
      static_cast<double>(body.size()) / static_cast<double>(compressed.size());
}
BENCHMARK(BM_GzipProtobufBatch);

}  // namespace

BENCHMARK_MAIN();

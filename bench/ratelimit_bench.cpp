// Rate-limit decisions in the memory store: what every limited request pays when the
// limits are kept in the process. Targets: <= 50 ns per decision on one thread, <= 100 ns
// per decision with two threads deciding on different keys.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>
#include <vigil/ratelimit/gcra.hpp>
#include <vigil/ratelimit/memory_store.hpp>

namespace rl = vigil::ratelimit;

namespace {

// A quota no benchmark exhausts: every decision is an allowed one that stores its TAT.
const rl::Rate kRate = rl::Rate::Of(1'000'000'000, std::chrono::seconds(1), 1'000'000'000);

// The pure arithmetic.
void BM_GcraDecide(benchmark::State& state) {
  std::int64_t tat = 0;
  std::int64_t now = rl::NowMicros();
  for (auto _ : state) {
    const rl::Decision d = rl::Decide(now, tat, kRate, 1);
    tat = d.tat_us;
    now += 1;
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_GcraDecide);

// One key per thread ("per-address\x1f10.0.0.<n>"), among 10,000 keys already stored, as
// a gateway limiting each client address sees it. Threads share one store.
rl::MemoryStore& SharedStore() {
  static rl::MemoryStore* store = [] {
    auto* s = new rl::MemoryStore();
    const std::int64_t now = rl::NowMicros();
    for (int i = 0; i < 10'000; ++i) {
      s->Decide(
          "per-address\x1f"
          "192.168." +
              std::to_string(i / 256) + "." + std::to_string(i % 256),
          kRate, 1, now);
    }
    return s;
  }();
  return *store;
}

void BM_MemoryStoreDecide(benchmark::State& state) {
  rl::MemoryStore& store = SharedStore();
  const std::string key =
      "per-address\x1f"
      "10.0.0." +
      std::to_string(state.thread_index());
  const std::int64_t now = rl::NowMicros();
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.Decide(key, kRate, 1, now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MemoryStoreDecide)->Threads(1)->Threads(2)->UseRealTime();

// Two threads on one key: the worst case, every decision contends for one shard.
void BM_MemoryStoreDecideOneKey(benchmark::State& state) {
  rl::MemoryStore& store = SharedStore();
  const std::int64_t now = rl::NowMicros();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        store.Decide("per-address\x1f"
                     "10.0.1.1",
                     kRate, 1, now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MemoryStoreDecideOneKey)->Threads(2)->UseRealTime();

// A flood of new keys into a full store (one key per shard, every key busy): each
// decision evicts one, which must cost a bounded sample, not a scan of the shard.
void BM_MemoryStoreNewKeysWhenFull(benchmark::State& state) {
  rl::MemoryStore store(64 * 1024);
  const rl::Rate busy = rl::Rate::Of(1, std::chrono::seconds(3600), 1);
  const std::int64_t now = rl::NowMicros();
  std::uint64_t n = 0;
  std::string key;
  for (int i = 0; i < 64 * 1024; ++i) store.Decide("fill" + std::to_string(i), busy, 1, now);
  for (auto _ : state) {
    key = "new" + std::to_string(n++);
    benchmark::DoNotOptimize(store.Decide(key, busy, 1, now));
  }
  state.counters["evictions"] = static_cast<double>(store.evictions());
}
BENCHMARK(BM_MemoryStoreNewKeysWhenFull);

// The clock a decision reads.
void BM_NowMicros(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(rl::NowMicros());
}
BENCHMARK(BM_NowMicros);

}  // namespace

BENCHMARK_MAIN();

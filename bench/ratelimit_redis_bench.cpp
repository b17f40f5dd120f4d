// Rate-limit decisions through Redis: what a limited request waits when the limits are
// shared by replicas (VIGIL_REDIS_URL). A real redis-server on loopback (started by the
// benchmark, nothing saved to disk) and a RedisStore on 1 or 2 threads of one execution
// context each, as a service's HTTP workers run it; the store's default 20 ms timeout.
//
// Each benchmark keeps `in_flight` decisions going, spread over the threads: each lane is a
// coroutine that starts its next decision when the last one completes. Every decision's
// latency (from calling Decide to resuming with its answer) is recorded; p50 and p99 are
// over every decision of the benchmark, the first ones included. Target: p99 <= 1 ms with
// 64 in flight.
//
// Redis's own counters tell how the decisions reached it: `commands_per_decision` (EVALSHA
// and EVAL calls, from INFO commandstats: one a decision, none for retries or round trips
// of its own), `reads_per_decision` (the reads Redis made on client sockets: below 1 when
// pipelined decisions share a read), `bytes_per_decision` (what it received) and
// `redis_cpu_us_per_decision` (its user + system CPU: what bounds decisions/s), beside
// `client_cpu_us_per_decision` (the store's side, this process).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/testing/redis.hpp>

namespace asio = boost::asio;
namespace rl = vigil::ratelimit;
namespace tel = vigil::telemetry;
using Clock = std::chrono::steady_clock;

namespace {

// A quota no benchmark exhausts: every decision is an allowed one that stores its TAT.
const rl::Rate kRate = rl::Rate::Of(1'000'000'000, std::chrono::seconds(60), 1'000'000'000);
// Decisions per benchmark iteration, shared among the lanes.
constexpr std::size_t kBatch = 16'384;
// Keys per lane, so that Redis holds a few thousand keys as for a gateway's clients.
constexpr std::size_t kKeysPerLane = 64;

// Stopped when the program exits.
vigil::test_support::RedisServer& Server() {
  static vigil::test_support::RedisServer server;
  return server;
}

// Telemetry exporting nothing; the store's log lines (none while Redis is up) go to stderr.
tel::Telemetry& Telemetry() {
  static auto* telemetry = [] {
    tel::TelemetryOptions options;
    options.service.name = "ratelimit-redis-bench";
    options.log.service = "ratelimit-redis-bench";
    options.log.fd = 2;
    options.log.handle_signals = false;
    return new tel::Telemetry(std::move(options));
  }();
  return *telemetry;
}

// The store's workers: execution contexts of one thread each, as a service's HTTP workers
// are (each connection of the store lives on one of them).
class Workers {
 public:
  explicit Workers(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      pools_.push_back(std::make_unique<asio::thread_pool>(1));
  }
  // Waits until every worker is out of work (the store stopped), then ends the threads.
  void Join() {
    for (auto& pool : pools_) pool->join();
  }
  asio::any_io_executor executor(std::size_t i) const { return pools_.at(i)->get_executor(); }
  std::vector<asio::any_io_executor> executors() const {
    std::vector<asio::any_io_executor> out;
    for (const auto& pool : pools_) out.push_back(pool->get_executor());
    return out;
  }

 private:
  std::vector<std::unique_ptr<asio::thread_pool>> pools_;
};

// One field of an INFO section ("total_reads_processed:123"), summed over the lines that
// start with `prefix` (cmdstat_evalsha:calls=5,... for prefix "cmdstat_evalsha:calls=").
std::int64_t InfoField(const std::string& info, const std::string& prefix) {
  std::int64_t total = 0;
  for (std::size_t at = info.find(prefix); at != std::string::npos;
       at = info.find(prefix, at + 1)) {
    if (at != 0 && info[at - 1] != '\n') continue;
    total += std::stoll(info.substr(at + prefix.size()));
  }
  return total;
}

// A field in seconds ("used_cpu_user:1.234567").
double InfoSeconds(const std::string& info, const std::string& prefix) {
  const std::size_t at = info.find("\n" + prefix);
  return at == std::string::npos ? 0.0 : std::stod(info.substr(at + 1 + prefix.size()));
}

struct RedisCounters {
  std::int64_t scripts = 0;  // EVALSHA + EVAL calls
  std::int64_t commands = 0;
  std::int64_t reads = 0;
  std::int64_t bytes_in = 0;
  double cpu_s = 0;  // the server's user + system CPU

  static RedisCounters Read() {
    const std::string stats = Server().Command({"INFO", "stats"}).text;
    const std::string commands = Server().Command({"INFO", "commandstats"}).text;
    const std::string cpu = Server().Command({"INFO", "cpu"}).text;
    RedisCounters c;
    c.scripts =
        InfoField(commands, "cmdstat_evalsha:calls=") + InfoField(commands, "cmdstat_eval:calls=");
    c.commands = InfoField(stats, "total_commands_processed:");
    c.reads = InfoField(stats, "total_reads_processed:");
    c.bytes_in = InfoField(stats, "total_net_input_bytes:");
    c.cpu_s = InfoSeconds(cpu, "used_cpu_sys:") + InfoSeconds(cpu, "used_cpu_user:");
    return c;
  }
  RedisCounters operator-(const RedisCounters& o) const {
    return {scripts - o.scripts, commands - o.commands, reads - o.reads, bytes_in - o.bytes_in,
            cpu_s - o.cpu_s};
  }
};

// One lane: `count` decisions one after the other, each latency in `latencies_ns`.
asio::awaitable<void> Lane(rl::RedisStore& store, std::size_t worker, std::size_t lane,
                           std::size_t count, std::int64_t* latencies_ns, std::size_t& errors) {
  std::vector<std::string> keys;
  for (std::size_t k = 0; k < kKeysPerLane; ++k) {
    keys.push_back(
        "bench-per-address\x1f"
        "10." +
        std::to_string(lane) + ".0." + std::to_string(k));
  }
  for (std::size_t i = 0; i < count; ++i) {
    const Clock::time_point start = Clock::now();
    const rl::SharedDecision d = co_await store.Decide(worker, keys[i % kKeysPerLane], kRate, 1);
    latencies_ns[i] =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    if (d.error != rl::StoreError::kNone || !d.decision.allowed) ++errors;
  }
}

// This process's user + system CPU (the store's threads; the main thread only waits).
double ProcessCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double Percentile(std::vector<std::int64_t>& sorted, double p) {
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[rank]);
}

// Args: worker threads, decisions in flight (a multiple of the threads).
void BM_RedisDecide(benchmark::State& state) {
  const auto threads = static_cast<std::size_t>(state.range(0));
  const auto in_flight = static_cast<std::size_t>(state.range(1));
  const std::size_t per_lane = kBatch / in_flight;

  try {
    Server();
  } catch (const std::exception& e) {  // redis-server missing, or not ready in time
    state.SkipWithError(e.what());
    return;
  }
  rl::RedisOptions options = rl::RedisOptions::FromUrl(Server().url(), "redis-server");
  Workers workers(threads);
  auto store = std::make_unique<rl::RedisStore>(workers.executors(), options, Telemetry());
  store->Start();
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(10);
  while (!store->up() && Clock::now() < give_up) std::this_thread::yield();
  if (!store->up()) {
    state.SkipWithError("the store did not connect to redis-server within 10 s");
    return;
  }

  std::vector<std::int64_t> all;
  std::vector<std::int64_t> batch(per_lane * in_flight);
  std::vector<std::size_t> errors(in_flight);
  // What two INFO reads add to Redis's counters by themselves, taken off the figures.
  const RedisCounters idle = RedisCounters::Read();
  const RedisCounters probe = RedisCounters::Read() - idle;
  const RedisCounters before = RedisCounters::Read();
  const double cpu_before = ProcessCpuSeconds();
  for (auto _ : state) {
    std::latch done(static_cast<std::ptrdiff_t>(in_flight));
    std::mutex failure_mu;
    std::exception_ptr failure;
    for (std::size_t lane = 0; lane < in_flight; ++lane) {
      const std::size_t worker = lane % threads;
      asio::co_spawn(
          workers.executor(worker),
          Lane(*store, worker, lane, per_lane, batch.data() + lane * per_lane, errors[lane]),
          [&done, &failure, &failure_mu](std::exception_ptr e) {
            if (e) {
              std::lock_guard lock(failure_mu);
              failure = e;
            }
            done.count_down();
          });
    }
    done.wait();
    if (failure) std::rethrow_exception(failure);
    all.insert(all.end(), batch.begin(), batch.end());
  }
  const double cpu_used = ProcessCpuSeconds() - cpu_before;
  const RedisCounters used = RedisCounters::Read() - before - probe;
  store->Stop();
  workers.Join();

  std::sort(all.begin(), all.end());
  std::size_t failed = 0;
  for (const std::size_t e : errors) failed += e;
  const auto decisions = static_cast<double>(all.size());
  state.SetItemsProcessed(static_cast<std::int64_t>(all.size()));
  state.counters["p50_us"] = Percentile(all, 0.50) / 1e3;
  state.counters["p99_us"] = Percentile(all, 0.99) / 1e3;
  state.counters["max_us"] = static_cast<double>(all.back()) / 1e3;
  state.counters["failed"] = static_cast<double>(failed);
  state.counters["commands_per_decision"] = static_cast<double>(used.scripts) / decisions;
  state.counters["redis_commands_per_decision"] = static_cast<double>(used.commands) / decisions;
  state.counters["reads_per_decision"] = static_cast<double>(used.reads) / decisions;
  state.counters["bytes_per_decision"] = static_cast<double>(used.bytes_in) / decisions;
  state.counters["redis_cpu_us_per_decision"] = used.cpu_s * 1e6 / decisions;
  state.counters["client_cpu_us_per_decision"] = cpu_used * 1e6 / decisions;
}
BENCHMARK(BM_RedisDecide)
    ->ArgNames({"threads", "in_flight"})
    ->Args({1, 1})
    ->Args({1, 64})
    ->Args({2, 64})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

// Cost of a log call in the caller, and end-to-end throughput, for Vigil's logger and
// for spdlog (the anchor library) in the same run. Every line goes to /dev/null.
//
// The line: a message, a RequestContext (trace id, span id, request id) and three fields
// (string, int, double). spdlog formats the same content as JSON with fmt; its ids are
// rendered to hex once, outside the loop, which favours spdlog slightly.
//
// Caller-time benchmarks (BM_VigilLogCall, BM_SpdlogAsyncLogCall) pause the timer every
// kBatch lines to let the backend catch up, so the queue never fills and the figure is
// the caller's own cost, not the backend's. Vigil runs with the default 1 MiB ring and
// OverflowPolicy::kDrop; the `dropped` counter shows that no line was lost. Besides the
// mean per call (the Time column), `median_ns` is the median over batches.
// BM_VigilLogCallBusyCaller spins through the pauses instead of sleeping in Flush(), so
// that the caller's CPU never goes idle between batches.
// Throughput benchmarks log kLines lines and wait until all are written; items/s is
// lines per second end to end (real time).
//
//   ./build/release/bench/log_bench --benchmark_repetitions=5 \
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <vigil/telemetry/log.hpp>

#include "log/clock.hpp"

namespace {

using vigil::telemetry::Logger;
using vigil::telemetry::LoggerOptions;
using vigil::telemetry::OverflowPolicy;
using vigil::telemetry::RequestContext;
using vigil::telemetry::RequestId;

constexpr int kBatch = 2048;
constexpr int kLines = 200'000;

class DevNull {
 public:
  DevNull() : fd_(open("/dev/null", O_WRONLY | O_CLOEXEC)) {}
  ~DevNull() { close(fd_); }
  DevNull(const DevNull&) = delete;
  DevNull& operator=(const DevNull&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

RequestContext BenchContext() {
  RequestContext ctx = RequestContext::NewRoot();
  ctx.request_id = RequestId::Generate();
  return ctx;
}

LoggerOptions VigilOptions(int fd, OverflowPolicy policy) {
  LoggerOptions o;
  o.service = "bench";
  o.version = "0.1.0";
  o.fd = fd;
  o.overflow = policy;
  o.handle_signals = false;
  return o;
}

// --- clocks: what a timestamp costs the caller ------------------------------------------

void BM_ClockRealtime(benchmark::State& state) {
  for (auto _ : state) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_ClockRealtime);

void BM_LogStamp(benchmark::State& state) {
  vigil::telemetry::internal::ClockSetup();
  for (auto _ : state) {
    benchmark::DoNotOptimize(vigil::telemetry::internal::ReadStamp());
  }
  state.SetLabel(vigil::telemetry::internal::g_stamp_is_tsc.load() ? "rdtsc" : "clock_gettime");
}
BENCHMARK(BM_LogStamp);

// --- Vigil ----------------------------------------------------------------------------

// Times each batch of kBatch calls on its own as well: the median batch, divided by
// kBatch, is the typical cost of a call without the preemptions and noisy neighbours
// that the mean over the whole run also contains. Reported as the `median_ns` counter.
class BatchClock {
 public:
  void Start() { start_ = std::chrono::steady_clock::now(); }
  void Stop() {
    per_call_.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start_)
            .count() /
        kBatch);
  }
  double Median() {
    if (per_call_.empty()) {
      return 0;
    }
    std::sort(per_call_.begin(), per_call_.end());
    return per_call_[per_call_.size() / 2];
  }

 private:
  std::chrono::steady_clock::time_point start_;
  std::vector<double> per_call_;
};

// Flush() on a helper thread while the calling thread spins until it returns, so that
// the caller's CPU never goes idle during the pause. On a virtual machine an idle vCPU
// halts, and the first calls after the pause then pay for caches and predictors that
// the host used meanwhile (docs/performance.md, "The log call in the caller"). With two
// CPUs or more, the caller keeps the first CPU it may use and the helper and the
// logger's backend ("vigil-log") share the second, so that neither preempts the caller
// nor makes the scheduler move it; the caller's affinity is restored afterwards.
class SpinningFlush {
 public:
  explicit SpinningFlush(Logger& log) {
    if (sched_getaffinity(0, sizeof saved_, &saved_) == 0 && CPU_COUNT(&saved_) >= 2) {
      int found = 0;
      for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; ++cpu) {
        if (CPU_ISSET(cpu, &saved_)) {
          cpus_[found++] = cpu;
        }
      }
      pinned_ = true;
      PinThread(0, cpus_[0]);
      PinThread(ThreadId("vigil-log"), cpus_[1]);
    }
    thread_ = std::thread([this, &log] { Run(log); });
  }
  ~SpinningFlush() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (pinned_) {
      sched_setaffinity(0, sizeof saved_, &saved_);
    }
  }
  SpinningFlush(const SpinningFlush&) = delete;
  SpinningFlush& operator=(const SpinningFlush&) = delete;

  void operator()() {
    done_.store(false, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      requested_ = true;
    }
    cv_.notify_one();
    while (!done_.load(std::memory_order_acquire)) {
    }
  }

 private:
  // The id of this process's thread called `name`; -1 when there is none.
  static pid_t ThreadId(const std::string& name) {
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", error)) {
      std::ifstream comm(task.path() / "comm");
      std::string line;
      if (std::getline(comm, line) && line == name) {
        return static_cast<pid_t>(std::stol(task.path().filename().string()));
      }
    }
    return -1;
  }
  static void PinThread(pid_t id, int cpu) {
    if (id < 0) {
      return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(id, sizeof set, &set);
  }

  void Run(Logger& log) {
    if (pinned_) {
      PinThread(0, cpus_[1]);
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return requested_ || stop_; });
      if (stop_) {
        return;
      }
      requested_ = false;
      lock.unlock();
      log.Flush();
      done_.store(true, std::memory_order_release);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  bool stop_ = false;
  std::atomic<bool> done_{false};
  cpu_set_t saved_{};
  int cpus_[2] = {0, 0};
  bool pinned_ = false;
  std::thread thread_;
};

// How the caller waits while the timer is paused and the backend catches up.
enum class Pause { kSleep, kSpin };

// Times `call(log)` per iteration, letting the backend catch up every kBatch calls.
template <typename Call>
void VigilLogCalls(benchmark::State& state, Pause pause, Call call) {
  DevNull devnull;
  Logger log(VigilOptions(devnull.fd(), OverflowPolicy::kDrop));
  std::optional<SpinningFlush> spinning;
  if (pause == Pause::kSpin) {
    spinning.emplace(log);
  }
  BatchClock batches;
  int n = 0;
  batches.Start();
  for (auto _ : state) {
    call(log);
    if (++n == kBatch) {
      batches.Stop();
      state.PauseTiming();
      if (spinning) {
        (*spinning)();
      } else {
        log.Flush();
      }
      n = 0;
      state.ResumeTiming();
      batches.Start();
    }
  }
  log.Flush();
  state.counters["dropped"] = static_cast<double>(log.stats().dropped);
  state.counters["median_ns"] = batches.Median();
}

void LogCallWithContext(benchmark::State& state, Pause pause) {
  const RequestContext ctx = BenchContext();
  const std::string route = "/items/{id}";
  VigilLogCalls(state, pause, [&](Logger& log) {
    log.Info(ctx, "request completed",
             {{"http.route", route}, {"http.response.status_code", 200}, {"duration_ms", 12.4}});
  });
}

void BM_VigilLogCall(benchmark::State& state) { LogCallWithContext(state, Pause::kSleep); }
BENCHMARK(BM_VigilLogCall);

// The same, the caller spinning instead of sleeping while the backend catches up.
void BM_VigilLogCallBusyCaller(benchmark::State& state) { LogCallWithContext(state, Pause::kSpin); }
BENCHMARK(BM_VigilLogCallBusyCaller);

// The same line outside a request: no trace id, span id or request id to copy.
void BM_VigilLogCallNoContext(benchmark::State& state) {
  const std::string route = "/items/{id}";
  VigilLogCalls(state, Pause::kSleep, [&](Logger& log) {
    log.Info("request completed",
             {{"http.route", route}, {"http.response.status_code", 200}, {"duration_ms", 12.4}});
  });
}
BENCHMARK(BM_VigilLogCallNoContext);

void BM_VigilLogBelowLevel(benchmark::State& state) {
  DevNull devnull;
  Logger log(VigilOptions(devnull.fd(), OverflowPolicy::kDrop));
  const RequestContext ctx = BenchContext();
  const std::string route = "/items/{id}";
  for (auto _ : state) {
    log.Debug(ctx, "request completed",
              {{"http.route", route}, {"http.response.status_code", 200}, {"duration_ms", 12.4}});
  }
  state.counters["written"] = static_cast<double>(log.stats().written);
}
BENCHMARK(BM_VigilLogBelowLevel);

void BM_VigilThroughput(benchmark::State& state) {
  DevNull devnull;
  Logger log(VigilOptions(devnull.fd(), OverflowPolicy::kBlock));
  const RequestContext ctx = BenchContext();
  const std::string route = "/items/{id}";
  for (auto _ : state) {
    for (int i = 0; i < kLines; ++i) {
      log.Info(ctx, "request completed",
               {{"http.route", route}, {"http.response.status_code", 200}, {"duration_ms", 12.4}});
    }
    log.Flush();
  }
  state.SetItemsProcessed(state.iterations() * kLines);
  state.counters["dropped"] = static_cast<double>(log.stats().dropped);
}
BENCHMARK(BM_VigilThroughput)->Unit(benchmark::kMillisecond)->UseRealTime();

// --- spdlog ---------------------------------------------------------------------------

// A file sink on /dev/null that counts lines, so a benchmark can wait until the async
// worker has written everything.
class CountingNullSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  CountingNullSink() : file_(std::fopen("/dev/null", "wb")) {}
  ~CountingNullSink() override { std::fclose(file_); }
  CountingNullSink(const CountingNullSink&) = delete;
  CountingNullSink& operator=(const CountingNullSink&) = delete;

  std::uint64_t count() const { return count_.load(std::memory_order_acquire); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), file_);
    count_.fetch_add(1, std::memory_order_release);
  }
  void flush_() override { std::fflush(file_); }

 private:
  std::FILE* file_;
  std::atomic<std::uint64_t> count_{0};
};

constexpr const char* kSpdlogPattern = R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})";

struct SpdlogIds {
  std::string trace = BenchContext().span.trace_id.ToHex();
  std::string span = BenchContext().span.span_id.ToHex();
  std::string request = std::string(RequestId::Generate().view());
};

template <typename LoggerPtr>
void SpdlogLine(const LoggerPtr& logger, const SpdlogIds& ids, const std::string& route) {
  logger->info(R"("msg":"request completed","service":"bench","version":"0.1.0","env":"dev",)"
               R"("trace_id":"{}","span_id":"{}","request_id":"{}",)"
               R"("http.route":"{}","http.response.status_code":{},"duration_ms":{})",
               ids.trace, ids.span, ids.request, route, 200, 12.4);
}

struct SpdlogAsync {
  std::shared_ptr<CountingNullSink> sink = std::make_shared<CountingNullSink>();
  std::shared_ptr<spdlog::details::thread_pool> pool =
      std::make_shared<spdlog::details::thread_pool>(8192, 1);
  std::shared_ptr<spdlog::async_logger> logger = std::make_shared<spdlog::async_logger>(
      "bench_async", sink, pool, spdlog::async_overflow_policy::block);

  SpdlogAsync() { logger->set_pattern(kSpdlogPattern, spdlog::pattern_time_type::utc); }

  void WaitFor(std::uint64_t lines) const {
    while (sink->count() < lines) {
      std::this_thread::yield();
    }
  }
};

void BM_SpdlogAsyncLogCall(benchmark::State& state) {
  SpdlogAsync s;
  const SpdlogIds ids;
  const std::string route = "/items/{id}";
  BatchClock batches;
  std::uint64_t total = 0;
  int n = 0;
  batches.Start();
  for (auto _ : state) {
    SpdlogLine(s.logger, ids, route);
    ++total;
    if (++n == kBatch) {
      batches.Stop();
      state.PauseTiming();
      s.WaitFor(total);
      n = 0;
      state.ResumeTiming();
      batches.Start();
    }
  }
  s.WaitFor(total);
  state.counters["overrun"] = static_cast<double>(s.pool->overrun_counter());
  state.counters["median_ns"] = batches.Median();
}
BENCHMARK(BM_SpdlogAsyncLogCall);

void BM_SpdlogAsyncThroughput(benchmark::State& state) {
  SpdlogAsync s;
  const SpdlogIds ids;
  const std::string route = "/items/{id}";
  std::uint64_t total = 0;
  for (auto _ : state) {
    for (int i = 0; i < kLines; ++i) {
      SpdlogLine(s.logger, ids, route);
    }
    total += kLines;
    s.WaitFor(total);
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}
BENCHMARK(BM_SpdlogAsyncThroughput)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SpdlogSyncThroughput(benchmark::State& state) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>("/dev/null");
  auto logger = std::make_shared<spdlog::logger>("bench_sync", sink);
  logger->set_pattern(kSpdlogPattern, spdlog::pattern_time_type::utc);
  const SpdlogIds ids;
  const std::string route = "/items/{id}";
  for (auto _ : state) {
    for (int i = 0; i < kLines; ++i) {
      SpdlogLine(logger, ids, route);
    }
    logger->flush();
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}
BENCHMARK(BM_SpdlogSyncThroughput)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

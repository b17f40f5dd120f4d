// The batch span processor: delivery, batching and timing, drops when full, never
// blocking producers, flush and shutdown deadlines, keeping up at full speed, the record
// pool's bound, and the OTEL_BSP_* variables.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <vigil/telemetry/trace.hpp>
#include <vigil/telemetry/trace_processor.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/scoped_env.hpp>
#include <vigil/testing/threads.hpp>

#include "trace/record_pool.hpp"

namespace vigil::telemetry {
namespace {

using test_support::ScopedEnv;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Counts what it is given; lets a test wait for a number of spans.
class CountingExporter : public SpanExporter {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t spans = 0;
    std::size_t batches = 0;
    std::size_t largest_batch = 0;
    bool shut_down = false;
    std::size_t spans_at_shutdown = 0;
    // What to answer: dropped = batch size - exported_per_batch when set.
    std::optional<std::size_t> exported_per_batch;
    std::string_view drop_reason;
  };

  explicit CountingExporter(State* state) : state_(state) {}

  ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override {
    std::lock_guard lock(state_->mu);
    state_->spans += batch.size();
    ++state_->batches;
    state_->largest_batch = std::max(state_->largest_batch, batch.size());
    state_->cv.notify_all();
    if (state_->exported_per_batch) {
      const std::size_t ok = std::min(*state_->exported_per_batch, batch.size());
      return {ok, batch.size() - ok, state_->drop_reason};
    }
    return {batch.size(), 0, {}};
  }

  void Shutdown(Clock::time_point) noexcept override {
    std::lock_guard lock(state_->mu);
    state_->shut_down = true;
    state_->spans_at_shutdown = state_->spans;
  }

  static bool WaitFor(State& s, std::size_t spans, Clock::duration timeout) {
    std::unique_lock lock(s.mu);
    return s.cv.wait_for(lock, timeout, [&] { return s.spans >= spans; });
  }

 private:
  State* state_;
};

// Holds every Export() until the test opens the gate; optionally also lets Shutdown()
// release it (a well-behaved exporter), or ignores Shutdown() (a broken one).
class GateExporter : public SpanExporter {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    bool honour_shutdown = true;
    bool shut_down = false;
    int entered = 0;
    std::size_t exported = 0;

    void Open() {
      std::lock_guard lock(mu);
      open = true;
      cv.notify_all();
    }
    bool WaitEntered(int n) {
      std::unique_lock lock(mu);
      return cv.wait_for(lock, 10s, [&] { return entered >= n; });
    }
  };

  explicit GateExporter(State* state) : state_(state) {}

  ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override {
    std::unique_lock lock(state_->mu);
    ++state_->entered;
    state_->cv.notify_all();
    state_->cv.wait(lock,
                    [&] { return state_->open || (state_->honour_shutdown && state_->shut_down); });
    if (!state_->open) {
      return {0, batch.size(), "shutdown"};
    }
    state_->exported += batch.size();
    return {batch.size(), 0, {}};
  }

  void Shutdown(Clock::time_point) noexcept override {
    std::lock_guard lock(state_->mu);
    state_->shut_down = true;
    state_->cv.notify_all();
  }

 private:
  State* state_;
};

class DiscardExporter : public SpanExporter {
 public:
  ExportOutcome Export(std::span<const SpanData* const> batch) noexcept override {
    return {batch.size(), 0, {}};
  }
  void Shutdown(Clock::time_point) noexcept override {}
};

BatchOptions Options(std::size_t queue, std::size_t batch, Clock::duration delay) {
  BatchOptions o;
  o.max_queue_size = queue;
  o.max_export_batch_size = batch;
  o.schedule_delay = std::chrono::duration_cast<std::chrono::milliseconds>(delay);
  o.export_timeout = 2s;  // the destructor's deadline; keeps a failing test short
  return o;
}

void EndSpans(const Tracer& tracer, int n) {
  for (int i = 0; i < n; ++i) {
    tracer.StartRootSpan("span").End();
  }
}

using ExporterStats = BatchSpanProcessor::ExporterStats;

// The counts of a processor's one exporter.
ExporterStats Only(const BatchSpanProcessor& p) {
  const auto stats = p.stats();
  EXPECT_EQ(stats.exporters().size(), 1u);
  return stats.exporters().front();
}

std::uint64_t Accounted(const ExporterStats& s) { return s.exported + s.dropped(); }

// The exporter sees a batch before the processor counts its outcome; wait for the count.
bool WaitForExported(const BatchSpanProcessor& p, std::uint64_t n) {
  return test_support::Eventually([&] { return Only(p).exported >= n; });
}

TEST(BatchSpanProcessorTest, ExportsEverythingUnderNormalLoad) {
  // Bursts that fit in the queue, each of two full batches: the worker must deliver
  // every span by waking on its own (no timer in this test, no flush until the end).
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state), Options(2048, 512, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  constexpr int kBursts = 20;
  constexpr int kBurst = 1024;
  for (int b = 0; b < kBursts; ++b) {
    for (int i = 0; i < kBurst; ++i) {
      Span s = tracer.StartRootSpan("op");
      s.SetAttribute("i", i);
    }
    ASSERT_TRUE(CountingExporter::WaitFor(state, static_cast<std::size_t>((b + 1) * kBurst), 10s))
        << "burst " << b;
  }
  ASSERT_TRUE(WaitForExported(processor, kBursts * kBurst));
  const auto stats = Only(processor);
  EXPECT_EQ(stats.exported, static_cast<std::uint64_t>(kBursts * kBurst));
  EXPECT_EQ(stats.dropped(), 0u);
  EXPECT_EQ(processor.stats().queued, 0u);
  std::lock_guard lock(state.mu);
  EXPECT_EQ(state.largest_batch, 512u);
  EXPECT_EQ(state.batches, static_cast<std::size_t>(2 * kBursts));
}

TEST(BatchSpanProcessorTest, PublishesTheWorkersCpuTimeAfterEachExport) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state), Options(2048, 512, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EXPECT_EQ(processor.stats().worker_cpu_ns, 0u) << "no export has run yet";
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1000; ++i) {
      Span s = tracer.StartRootSpan("op");
      s.SetAttribute("i", i);
    }
    ASSERT_TRUE(processor.ForceFlush(std::chrono::steady_clock::now() + 10s));
    const std::uint64_t cpu = processor.stats().worker_cpu_ns;
    EXPECT_GT(cpu, 0u) << "round " << round;
    EXPECT_GE(cpu, last) << "a thread's CPU time only grows";
    last = cpu;
  }
}

TEST(BatchSpanProcessorTest, TheWorkerThreadIsNamed) {
  CountingExporter::State state;
  const long before = test_support::ThreadsNamed("vigil-spans");
  {
    BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state),
                                 Options(2048, 512, 1h));
    EXPECT_EQ(test_support::ThreadsNamed("vigil-spans"), before + 1);
  }
  EXPECT_EQ(test_support::ThreadsNamed("vigil-spans"), before);
}

TEST(BatchSpanProcessorTest, ManyProducerThreads) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state),
                               Options(1 << 20, 512, 5s));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] { EndSpans(tracer, kPerThread); });
  }
  for (auto& t : threads) {
    t.join();
  }
  ASSERT_TRUE(processor.ForceFlush(Clock::now() + 30s));
  const auto stats = Only(processor);
  EXPECT_EQ(stats.exported, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(stats.dropped(), 0u);
}

TEST(BatchSpanProcessorTest, WorkerWakesForAFullBatchWithoutTheTimer) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state), Options(2048, 100, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 250);
  ASSERT_TRUE(CountingExporter::WaitFor(state, 200, 10s));
  std::lock_guard lock(state.mu);
  EXPECT_EQ(state.largest_batch, 100u);
  EXPECT_EQ(state.spans % 100, 0u);  // full batches only; 50 wait for the timer
}

TEST(BatchSpanProcessorTest, ScheduleDelayExportsAPartialBatch) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state),
                               Options(2048, 512, 20ms));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 7);
  ASSERT_TRUE(CountingExporter::WaitFor(state, 7, 10s));
  ASSERT_TRUE(WaitForExported(processor, 7));
  EXPECT_EQ(Only(processor).exported, 7u);
}

TEST(BatchSpanProcessorTest, ZeroDelayExportsAsSoonAsSpansArrive) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state), Options(2048, 512, 0ms));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 3);
  ASSERT_TRUE(CountingExporter::WaitFor(state, 3, 10s));
}

TEST(BatchSpanProcessorTest, DropsAndCountsWhenTheQueueIsFull) {
  GateExporter::State gate;
  BatchSpanProcessor processor(std::make_unique<GateExporter>(&gate), Options(100, 10, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 10);  // one full batch: the worker takes it and blocks in Export
  ASSERT_TRUE(gate.WaitEntered(1));
  EndSpans(tracer, 200);  // 100 fit in the queue, 100 do not
  auto stats = Only(processor);
  EXPECT_EQ(stats.dropped_queue_full, 100u);
  EXPECT_EQ(processor.stats().queued, 100u);
  gate.Open();
  ASSERT_TRUE(processor.ForceFlush(Clock::now() + 10s));
  stats = Only(processor);
  EXPECT_EQ(stats.exported, 110u);
  EXPECT_EQ(stats.dropped_queue_full, 100u);
  EXPECT_EQ(Accounted(stats), 210u);
}

TEST(BatchSpanProcessorTest, NeverBlocksTheProducer) {
  GateExporter::State gate;
  BatchSpanProcessor processor(std::make_unique<GateExporter>(&gate), Options(2048, 512, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  constexpr int kSpans = 200'000;
  // The exporter is stuck for the whole run; the producer must still finish.
  auto producer = std::async(std::launch::async, [&] { EndSpans(tracer, kSpans); });
  const bool finished = producer.wait_for(60s) == std::future_status::ready;
  gate.Open();
  ASSERT_TRUE(finished) << "the producer was blocked";
  ASSERT_TRUE(processor.ForceFlush(Clock::now() + 10s));
  const auto stats = Only(processor);
  EXPECT_EQ(Accounted(stats), static_cast<std::uint64_t>(kSpans));
  EXPECT_GE(stats.dropped_queue_full, static_cast<std::uint64_t>(kSpans - 2048 - 512));
}

TEST(BatchSpanProcessorTest, ForceFlushHonoursItsDeadline) {
  GateExporter::State gate;
  BatchSpanProcessor processor(std::make_unique<GateExporter>(&gate), Options(2048, 512, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 5);
  const auto start = Clock::now();
  EXPECT_FALSE(processor.ForceFlush(start + 100ms));  // the exporter is stuck
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 5s);
  gate.Open();
  EXPECT_TRUE(processor.ForceFlush(Clock::now() + 10s));
  EXPECT_EQ(Only(processor).exported, 5u);
}

TEST(BatchSpanProcessorTest, ShutdownExportsWhatIsQueuedThenStopsTheExporter) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state), Options(2048, 512, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 300);
  EXPECT_TRUE(processor.Shutdown(Clock::now() + 10s));
  {
    std::lock_guard lock(state.mu);
    EXPECT_TRUE(state.shut_down);
    EXPECT_EQ(state.spans_at_shutdown, 300u);  // exported before the exporter stopped
  }
  EndSpans(tracer, 4);  // too late
  const auto stats = Only(processor);
  EXPECT_EQ(stats.exported, 300u);
  EXPECT_EQ(stats.dropped_shutdown, 4u);
  EXPECT_TRUE(processor.Shutdown(Clock::now() + 10s));  // again: same answer
  EXPECT_FALSE(processor.ForceFlush(Clock::now() + 1s));
}

TEST(BatchSpanProcessorTest, ShutdownReturnsByItsDeadlineWhenTheExporterHangs) {
  GateExporter::State gate;  // releases Export() only when shut down
  BatchSpanProcessor processor(std::make_unique<GateExporter>(&gate), Options(2048, 10, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 50);
  ASSERT_TRUE(gate.WaitEntered(1));
  const auto start = Clock::now();
  EXPECT_FALSE(processor.Shutdown(start + 200ms));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2s);
  // A second call waits for the worker to finish; then every span is accounted for.
  EXPECT_FALSE(processor.Shutdown(Clock::now() + 10s));
  const auto stats = Only(processor);
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_EQ(stats.dropped_shutdown, 50u);
  EXPECT_EQ(Accounted(stats), 50u);
}

TEST(BatchSpanProcessorTest, ShutdownReturnsEvenIfTheExporterIgnoresIt) {
  GateExporter::State gate;
  gate.honour_shutdown = false;
  auto processor = std::make_unique<BatchSpanProcessor>(std::make_unique<GateExporter>(&gate),
                                                        Options(2048, 10, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), processor.get());
  EndSpans(tracer, 20);
  ASSERT_TRUE(gate.WaitEntered(1));
  const auto start = Clock::now();
  EXPECT_FALSE(processor->Shutdown(start + 100ms));
  EXPECT_LT(Clock::now() - start, 2s);
  gate.Open();  // the destructor must wait for the worker; let it go
  processor.reset();
}

TEST(BatchSpanProcessorTest, ExportOutcomesAreCountedByReason) {
  for (const auto& [reason, field] :
       std::vector<std::pair<std::string_view, std::uint64_t ExporterStats::*>>{
           {"rejected", &ExporterStats::dropped_rejected},
           {"export_failed", &ExporterStats::dropped_export_failed},
           {"shutdown", &ExporterStats::dropped_shutdown},
           {"something new", &ExporterStats::dropped_export_failed}}) {
    CountingExporter::State state;
    state.exported_per_batch = 3;
    state.drop_reason = reason;
    BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state), Options(2048, 10, 1h));
    const Tracer tracer(Sampler::AlwaysOn(), &processor);
    EndSpans(tracer, 10);
    ASSERT_TRUE(processor.ForceFlush(Clock::now() + 10s));
    const auto stats = Only(processor);
    EXPECT_EQ(stats.exported, 3u) << reason;
    EXPECT_EQ(stats.*field, 7u) << reason;
    EXPECT_EQ(stats.dropped(), 7u) << reason;
  }
}

TEST(BatchSpanProcessorTest, EachExporterIsCreditedWithItsOwnOutcome) {
  // The set-up `./vigil up` runs: a collector that gives up on every batch beside a file
  // that takes them all. The collector's losses must show under its name even though the
  // file delivered the same spans, and the file's deliveries under its own.
  CountingExporter::State failing, working;
  failing.exported_per_batch = 0;
  failing.drop_reason = "export_failed";
  std::vector<NamedSpanExporter> exporters;
  exporters.push_back({"otlp", std::make_unique<CountingExporter>(&failing)});
  exporters.push_back({"file", std::make_unique<CountingExporter>(&working)});
  BatchSpanProcessor processor(std::move(exporters), Options(2048, 10, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 30);
  ASSERT_TRUE(processor.ForceFlush(Clock::now() + 10s));

  const auto stats = processor.stats();
  ASSERT_EQ(stats.exporters().size(), 2u);
  const ExporterStats otlp = stats.exporters()[0];
  const ExporterStats file = stats.exporters()[1];
  EXPECT_EQ(otlp.name, "otlp");
  EXPECT_EQ(otlp.exported, 0u);
  EXPECT_EQ(otlp.dropped_export_failed, 30u);
  EXPECT_EQ(otlp.dropped(), 30u);
  EXPECT_EQ(file.name, "file");
  EXPECT_EQ(file.exported, 30u);
  EXPECT_EQ(file.dropped(), 0u);
  EXPECT_EQ(failing.spans, 30u) << "each exporter sees every span";
  EXPECT_EQ(working.spans, 30u);
}

TEST(BatchSpanProcessorTest, SpansLostBeforeExportCountForEveryExporter) {
  // Nothing drains the queue until the gate opens: what does not fit is lost for both
  // destinations, so each one's exported + dropped still adds up to the spans ended.
  GateExporter::State gate;
  CountingExporter::State counting;
  std::vector<NamedSpanExporter> exporters;
  exporters.push_back({"otlp", std::make_unique<GateExporter>(&gate)});
  exporters.push_back({"file", std::make_unique<CountingExporter>(&counting)});
  BatchSpanProcessor processor(std::move(exporters), Options(100, 10, 1h));
  const Tracer tracer(Sampler::AlwaysOn(), &processor);
  EndSpans(tracer, 10);
  ASSERT_TRUE(gate.WaitEntered(1));  // the worker holds one batch of 10
  EndSpans(tracer, 150);             // 100 fit in the queue, 50 do not
  gate.Open();
  ASSERT_TRUE(processor.ForceFlush(Clock::now() + 10s));
  const auto stats = processor.stats();  // exporters() views into it: keep it alive
  for (const ExporterStats& e : stats.exporters()) {
    EXPECT_EQ(e.dropped_queue_full, 50u) << e.name;
    EXPECT_EQ(e.exported, 110u) << e.name;
    EXPECT_EQ(Accounted(e), 160u) << e.name;
  }
}

TEST(BatchSpanProcessorTest, ExporterNamesMustBeDistinct) {
  const auto make = [](std::vector<std::string> names) {
    std::vector<NamedSpanExporter> exporters;
    for (auto& n : names) exporters.push_back({n, std::make_unique<DiscardExporter>()});
    return exporters;
  };
  EXPECT_THROW(BatchSpanProcessor(make({"otlp", "otlp"})), std::invalid_argument);
  EXPECT_THROW(BatchSpanProcessor(make({""})), std::invalid_argument);
  EXPECT_THROW(BatchSpanProcessor(make({})), std::invalid_argument);
  EXPECT_THROW(BatchSpanProcessor(make({"a", "b", "c", "d", "e"})), std::invalid_argument);
}

TEST(BatchSpanProcessorTest, UnsampledSpansNeverReachTheProcessor) {
  CountingExporter::State state;
  BatchSpanProcessor processor(std::make_unique<CountingExporter>(&state));
  const Tracer tracer(Sampler::AlwaysOff(), &processor);
  EndSpans(tracer, 100);
  ASSERT_TRUE(processor.ForceFlush(Clock::now() + 10s));
  EXPECT_EQ(Accounted(Only(processor)), 0u);
}

TEST(BatchSpanProcessorTest, RecordPoolStaysBounded) {
  constexpr std::size_t kQueue = 2048;
  constexpr std::size_t kBatch = 512;
  {
    BatchSpanProcessor processor(std::make_unique<DiscardExporter>(), Options(kQueue, kBatch, 5s));
    const Tracer tracer(Sampler::AlwaysOn(), &processor);
    for (int round = 0; round < 5; ++round) {
      EndSpans(tracer, 300'000);
      ASSERT_TRUE(processor.ForceFlush(Clock::now() + 30s));
      const auto pool = internal::GetPoolStats();
      // This processor is the only one alive: the shared pool may hold its queue and
      // batch size, this thread's cache twice the refill; nothing else exists.
      EXPECT_EQ(pool.capacity, kQueue + kBatch);
      EXPECT_LE(pool.shared_free, pool.capacity);
      EXPECT_LE(pool.live_records,
                static_cast<std::int64_t>(kQueue + kBatch + 2 * internal::kThreadCacheRefill))
          << "round " << round;
    }
  }
  // With no processor left the shared pool keeps nothing.
  const auto pool = internal::GetPoolStats();
  EXPECT_EQ(pool.capacity, 0u);
  EXPECT_EQ(pool.shared_free, 0u);
  EXPECT_LE(pool.live_records, static_cast<std::int64_t>(2 * internal::kThreadCacheRefill));
}

TEST(BatchSpanProcessorTest, RejectsInvalidOptions) {
  EXPECT_THROW(BatchSpanProcessor(nullptr), std::invalid_argument);
  EXPECT_THROW(BatchSpanProcessor(std::make_unique<DiscardExporter>(), Options(10, 20, 1s)),
               std::invalid_argument);
  EXPECT_THROW(BatchSpanProcessor(std::make_unique<DiscardExporter>(), Options(0, 0, 1s)),
               std::invalid_argument);
}

constexpr const char* kBspVars[] = {"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE",
                                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT"};

TEST(BatchOptionsTest, SpecificationDefaults) {
  ScopedEnv a(kBspVars[0], nullptr);
  ScopedEnv b(kBspVars[1], nullptr);
  ScopedEnv c(kBspVars[2], nullptr);
  ScopedEnv d(kBspVars[3], nullptr);
  const BatchOptions o = BatchOptions::FromEnv();
  EXPECT_EQ(o.schedule_delay, 5000ms);
  EXPECT_EQ(o.max_queue_size, 2048u);
  EXPECT_EQ(o.max_export_batch_size, 512u);
  EXPECT_EQ(o.export_timeout, 30000ms);
}

TEST(BatchOptionsTest, ReadsEveryVariable) {
  ScopedEnv a(kBspVars[0], "250");
  ScopedEnv b(kBspVars[1], " 4096 ");
  ScopedEnv c(kBspVars[2], "1024");
  ScopedEnv d(kBspVars[3], "0");
  const BatchOptions o = BatchOptions::FromEnv();
  EXPECT_EQ(o.schedule_delay, 250ms);
  EXPECT_EQ(o.max_queue_size, 4096u);
  EXPECT_EQ(o.max_export_batch_size, 1024u);
  EXPECT_EQ(o.export_timeout, 0ms);
}

TEST(BatchOptionsTest, SmallQueueLowersTheDefaultBatch) {
  ScopedEnv b(kBspVars[1], "100");
  ScopedEnv c(kBspVars[2], nullptr);
  EXPECT_EQ(BatchOptions::FromEnv().max_export_batch_size, 100u);
}

TEST(BatchOptionsTest, InvalidValuesNameTheVariable) {
  const std::pair<const char*, const char*> cases[] = {
      {"OTEL_BSP_SCHEDULE_DELAY", "-1"},       {"OTEL_BSP_SCHEDULE_DELAY", "5s"},
      {"OTEL_BSP_MAX_QUEUE_SIZE", "0"},        {"OTEL_BSP_MAX_QUEUE_SIZE", "lots"},
      {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"},
      {"OTEL_BSP_EXPORT_TIMEOUT", "1.5"},
  };
  for (const auto& [name, value] : cases) {
    ScopedEnv clear_a(kBspVars[0], nullptr);
    ScopedEnv clear_b(kBspVars[1], nullptr);
    ScopedEnv clear_c(kBspVars[2], nullptr);
    ScopedEnv clear_d(kBspVars[3], nullptr);
    ScopedEnv bad(name, value);
    try {
      BatchOptions::FromEnv();
      ADD_FAILURE() << name << "=" << value << " accepted";
    } catch (const EnvVarError& e) {
      EXPECT_EQ(e.variable(), name) << value;
      EXPECT_NE(std::string(e.what()).find(value), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace vigil::telemetry

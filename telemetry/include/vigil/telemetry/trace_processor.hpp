// The batch span processor: ended spans go into a bounded queue, one background thread
// exports them in batches.
//
// Use one per process, between the Tracer and the SpanExporters. It follows the
// OpenTelemetry batching processor and its variables: OTEL_BSP_SCHEDULE_DELAY (5000 ms),
// OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512),
// OTEL_BSP_EXPORT_TIMEOUT (30000 ms).
//
//   BatchSpanProcessor processor(std::move(exporter), BatchOptions::FromEnv());
//   Tracer tracer(Sampler::FromEnv(), &processor);
//   processor.Shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(5));
//
// What the caller pays: Span::End() puts the record into a lock-free ring (one
// compare-and-swap) and returns. It never waits for the worker or the exporter: when the
// queue is full the span is dropped and counted. The worker is woken only when it
// sleeps and a full batch is waiting, so a busy producer makes no system call per span.
// The worker exports a batch when max_export_batch_size spans are queued, when
// schedule_delay has passed since the last export, on ForceFlush() and on Shutdown();
// then it returns the batch's records to the pool the tracer takes them from.
//
// With several exporters (OTLP and the local traces file) each batch goes to each of
// them in turn, and each one's outcome is counted under its own name: a batch the
// collector never got is dropped for "otlp" even when the file took it.
//
// Keeping up with a producer at full speed (a batch every ~50 us, the default queue full
// in ~200 us) takes a cheap worker that runs promptly. The worker never reads a record
// (records are reset by the thread that takes them next), so its cost per span is a
// ring slot and a pointer copy (about 20 ns against the producer's 100). It asks the
// kernel for short scheduler slices (Linux 6.12+), and the producer that wakes it yields
// its CPU once (one sched_yield per batch, not per span), so that a worker woken on the
// producer's own CPU runs at once instead of after the producer's slice.
//
// Thread-safety: see each class.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <vigil/telemetry/span_exporter.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::telemetry {

namespace internal {
class RecordQueue;
}

// Thread-safety: a value type.
struct BatchOptions {
  // Longest time a span waits for a batch to fill; 0 exports as soon as a span arrives.
  std::chrono::milliseconds schedule_delay{5000};
  std::size_t max_queue_size = 2048;
  // At most max_queue_size.
  std::size_t max_export_batch_size = 512;
  // The deadline of the final flush in the destructor; 0 means none. (The SpanExporter
  // interface takes no per-call deadline; exporters bound each Export() themselves.)
  std::chrono::milliseconds export_timeout{30000};

  // The OTEL_BSP_* variables over the defaults above. Throws EnvVarError naming the
  // variable when a value is not a whole number in range, or when the batch size
  // exceeds the queue size.
  static BatchOptions FromEnv();
};

// A destination for the processor, and the name its spans are counted under
// (vigil_telemetry_*_total{exporter=...}): a short, fixed word such as "otlp" or "file",
// never anything that varies with configuration.
struct NamedSpanExporter {
  std::string name;
  std::unique_ptr<SpanExporter> exporter;
};

// Thread-safety: every member may be called from any thread. The processor must outlive
// every Tracer that points to it and every span those tracers started.
class BatchSpanProcessor {
 public:
  static constexpr std::size_t kMaxExporters = 4;

  // What became of the spans handed to the processor, as one exporter sees it, for
  // vigil_telemetry_exported_total{signal="spans",exporter} and
  // vigil_telemetry_dropped_total{signal="spans",reason,exporter}: each span ends up in
  // exactly one of these fields for every exporter. Spans lost before any exporter saw
  // them (a full queue, a shutdown) are counted for every exporter, since each of them
  // missed those spans.
  struct ExporterStats {
    std::string_view name;                    // as given; valid while the processor lives
    std::uint64_t exported = 0;               // the exporter reported them delivered
    std::uint64_t dropped_queue_full = 0;     // reason="queue_full"
    std::uint64_t dropped_rejected = 0;       // reason="rejected"
    std::uint64_t dropped_export_failed = 0;  // reason="export_failed"
    std::uint64_t dropped_shutdown = 0;       // reason="shutdown"

    std::uint64_t dropped() const noexcept {
      return dropped_queue_full + dropped_rejected + dropped_export_failed + dropped_shutdown;
    }
  };

  // Counters since construction. A fixed array: reading them allocates nothing.
  struct Stats {
    std::array<ExporterStats, kMaxExporters> by_exporter{};
    std::size_t exporter_count = 0;
    std::uint64_t dropped_queue_full = 0;  // the queue was full (lost for every exporter)
    std::uint64_t queued = 0;              // waiting right now (not a counter)
    std::uint64_t worker_cpu_ns = 0;       // CPU time of the worker, as of its last export

    // One entry per exporter, in the order given to the constructor. A view into this
    // Stats: not callable on a temporary, whose array would be gone before the view is
    // used (`for (auto& e : p.stats().exporters())` would read freed stack).
    std::span<const ExporterStats> exporters() const& noexcept {
      return {by_exporter.data(), exporter_count};
    }
    std::span<const ExporterStats> exporters() const&& = delete;
  };

  // Starts the worker thread. Throws std::invalid_argument for no exporter, a null one,
  // more than kMaxExporters, an empty or repeated name, a zero queue or batch size, or a
  // batch larger than the queue.
  BatchSpanProcessor(std::vector<NamedSpanExporter> exporters, BatchOptions options = {});
  // One exporter, counted under the name "custom".
  BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter, BatchOptions options = {});
  // Shutdown(now + export_timeout) if not done yet, then waits for the worker thread
  // (which an exporter that ignores SpanExporter::Shutdown can hold up).
  ~BatchSpanProcessor();
  BatchSpanProcessor(const BatchSpanProcessor&) = delete;
  BatchSpanProcessor& operator=(const BatchSpanProcessor&) = delete;

  // Exports every span ended before the call. Returns true when that finished by
  // `deadline`, false on timeout or after Shutdown().
  bool ForceFlush(std::chrono::steady_clock::time_point deadline) noexcept;

  // Stops accepting spans (later ones are counted as dropped "shutdown"), exports what
  // is queued, then shuts the exporter down. Returns by `deadline` even if the exporter
  // hangs: the exporters are then told to give up (SpanExporter::Shutdown) and whatever
  // was not exported is counted as dropped "shutdown". Returns true when the final
  // export finished in time. Later calls return that answer (a call made while the
  // first is in progress waits for it, up to its own deadline).
  bool Shutdown(std::chrono::steady_clock::time_point deadline) noexcept;

  Stats stats() const noexcept;
  const BatchOptions& options() const noexcept { return options_; }

 private:
  friend class Span;

  // Takes ownership of an ended record; never blocks.
  void OnEnd(internal::PooledRecord* record) noexcept;
  void WakeWorker() noexcept;
  void Run() noexcept;
  std::size_t ExportUpTo(std::uint64_t target) noexcept;
  void ExportBatch(std::size_t count) noexcept;
  void DropRemaining() noexcept;

  // One exporter and the counts of its outcomes (written by the worker only).
  struct ExporterSlot {
    std::string name;
    std::unique_ptr<SpanExporter> exporter;
    std::atomic<std::uint64_t> exported{0};
    std::atomic<std::uint64_t> dropped_rejected{0};
    std::atomic<std::uint64_t> dropped_export_failed{0};
    std::atomic<std::uint64_t> dropped_shutdown{0};
  };

  void CountOutcome(ExporterSlot& slot, const ExportOutcome& outcome, std::size_t count) noexcept;

  const BatchOptions options_;
  const std::vector<std::unique_ptr<ExporterSlot>> exporters_;
  const std::unique_ptr<internal::RecordQueue> queue_;
  const std::uint64_t wake_threshold_;

  // Written by producers only when they drop.
  alignas(64) std::atomic<std::uint64_t> dropped_queue_full_{0};
  std::atomic<std::uint64_t> dropped_shutdown_producer_{0};
  std::atomic<bool> accepting_{true};
  // Set by the worker just before it waits; a producer that sees it (and a full batch)
  // clears it and signals. Read by every End(), written rarely: its own cache line.
  alignas(64) std::atomic<bool> sleeping_{false};

  // Written by the worker only. Spans it drops without exporting (after the shutdown
  // deadline) are lost for every exporter alike.
  alignas(64) std::atomic<std::uint64_t> dropped_shutdown_worker_{0};
  std::atomic<std::uint64_t> worker_cpu_ns_{0};

  // Guards the fields below and the worker's sleep.
  mutable std::mutex mu_;
  std::condition_variable wake_cv_;  // to the worker
  std::condition_variable done_cv_;  // from the worker: flush or shutdown finished
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  bool stop_ = false;
  bool worker_done_ = false;
  bool shutdown_called_ = false;
  std::atomic<bool> abandon_{false};  // the shutdown deadline passed: drop, do not export

  // Reused by the worker for each batch.
  std::unique_ptr<internal::PooledRecord*[]> batch_;
  std::unique_ptr<const SpanData*[]> batch_view_;

  std::thread worker_;
};

}  // namespace vigil::telemetry

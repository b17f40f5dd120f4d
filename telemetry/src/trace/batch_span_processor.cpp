// The batch span processor: producers push into a lock-free ring; one worker exports.
//
// Sleep/wake handshake (the only place producers and the worker synchronise): the
// worker sets `sleeping_` (seq_cst) and then re-reads the queue's tail before it waits;
// a producer claims its slot with a seq_cst compare-and-swap and then reads
// `sleeping_`. In the single total order of those operations one of the two sees the
// other, so the worker never sleeps past a full batch, and a producer touches the mutex
// only when it has seen the worker asleep with a batch waiting: at most once per batch.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <vigil/telemetry/trace_processor.hpp>

#include "thread_cpu.hpp"
#include "trace/env_vars.hpp"
#include "trace/record_pool.hpp"
#include "trace/record_queue.hpp"
#include "trace/span_clock.hpp"

namespace vigil::telemetry {
namespace {

using internal::PooledRecord;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kMaxMillis = 24LL * 3600 * 1000;
// 16 Mi entries: a 256 MiB ring. Far above any sensible queue.
constexpr std::int64_t kMaxQueue = std::int64_t{1} << 24;

const BatchOptions& Validated(const BatchOptions& o) {
  if (o.max_queue_size == 0 || o.max_export_batch_size == 0) {
    throw std::invalid_argument("BatchSpanProcessor: queue and batch sizes must be at least 1");
  }
  if (o.max_queue_size > static_cast<std::size_t>(kMaxQueue)) {
    throw std::invalid_argument("BatchSpanProcessor: max_queue_size above 16777216");
  }
  if (o.max_export_batch_size > o.max_queue_size) {
    throw std::invalid_argument("BatchSpanProcessor: max_export_batch_size exceeds max_queue_size");
  }
  if (o.schedule_delay.count() < 0 || o.export_timeout.count() < 0) {
    throw std::invalid_argument("BatchSpanProcessor: negative delay or timeout");
  }
  return o;
}

template <typename Slot>
std::vector<std::unique_ptr<Slot>> Slots(std::vector<NamedSpanExporter> exporters) {
  if (exporters.empty()) {
    throw std::invalid_argument("BatchSpanProcessor: no exporter");
  }
  if (exporters.size() > BatchSpanProcessor::kMaxExporters) {
    throw std::invalid_argument("BatchSpanProcessor: more than 4 exporters");
  }
  std::vector<std::unique_ptr<Slot>> slots;
  for (auto& e : exporters) {
    if (!e.exporter) {
      throw std::invalid_argument("BatchSpanProcessor: null exporter");
    }
    // The name is a metric label value: two exporters under one name would add up into
    // one series and hide which of them lost spans.
    if (e.name.empty() ||
        std::any_of(slots.begin(), slots.end(), [&](const auto& s) { return s->name == e.name; })) {
      throw std::invalid_argument("BatchSpanProcessor: exporter names must be distinct words");
    }
    auto slot = std::make_unique<Slot>();
    slot->name = std::move(e.name);
    slot->exporter = std::move(e.exporter);
    slots.push_back(std::move(slot));
  }
  return slots;
}

std::vector<NamedSpanExporter> One(std::unique_ptr<SpanExporter> exporter) {
  std::vector<NamedSpanExporter> v;
  v.push_back(NamedSpanExporter{"custom", std::move(exporter)});
  return v;
}

// The worker needs little CPU but needs it promptly: a producer at full speed fills the
// default queue in a few hundred microseconds, less than one default scheduler slice of
// whatever thread runs on the CPU the worker wakes on. Linux 6.12+ (EEVDF) lets a
// SCHED_OTHER thread ask for shorter slices (sched_attr.sched_runtime), and a waking
// thread with a shorter slice may preempt the running one. No privilege is needed; the
// policy and nice value the thread inherited are kept (nothing changes for a real-time
// or batch process), and on older kernels the call fails and nothing changes.
void RequestShortSchedulerSlice() noexcept {
#if defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
  // The kernel's struct sched_attr, first version (48 bytes); glibc 2.36 has no wrapper
  // and <linux/sched/types.h> clashes with <sched.h>.
  struct {
    std::uint32_t size;
    std::uint32_t sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime;
    std::uint64_t sched_deadline;
    std::uint64_t sched_period;
  } attr{};
  static_assert(sizeof attr == 48);
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0 ||
      attr.sched_policy != SCHED_OTHER) {
    return;
  }
  attr.size = sizeof attr;
  attr.sched_flags = 0;
  attr.sched_runtime = 100'000;  // ns: the smallest slice the kernel accepts
  (void)syscall(SYS_sched_setattr, 0, &attr, 0);
#endif
}

}  // namespace

BatchOptions BatchOptions::FromEnv() {
  using internal::ReadInteger;
  BatchOptions o;
  o.schedule_delay = std::chrono::milliseconds(
      ReadInteger("OTEL_BSP_SCHEDULE_DELAY", o.schedule_delay.count(), 0, kMaxMillis));
  o.export_timeout = std::chrono::milliseconds(
      ReadInteger("OTEL_BSP_EXPORT_TIMEOUT", o.export_timeout.count(), 0, kMaxMillis));
  o.max_queue_size = static_cast<std::size_t>(ReadInteger(
      "OTEL_BSP_MAX_QUEUE_SIZE", static_cast<std::int64_t>(o.max_queue_size), 1, kMaxQueue));
  // The batch may not exceed the queue; when only the queue was made smaller than the
  // default batch, the batch follows it rather than failing.
  const auto default_batch =
      static_cast<std::int64_t>(std::min(o.max_export_batch_size, o.max_queue_size));
  o.max_export_batch_size =
      static_cast<std::size_t>(ReadInteger("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default_batch, 1,
                                           static_cast<std::int64_t>(o.max_queue_size)));
  return o;
}

BatchSpanProcessor::BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter, BatchOptions options)
    : BatchSpanProcessor(One(std::move(exporter)), options) {}

BatchSpanProcessor::BatchSpanProcessor(std::vector<NamedSpanExporter> exporters,
                                       BatchOptions options)
    : options_(Validated(options)),
      exporters_(Slots<ExporterSlot>(std::move(exporters))),
      queue_(std::make_unique<internal::RecordQueue>(options_.max_queue_size)),
      wake_threshold_(options_.schedule_delay.count() == 0 ? 1 : options_.max_export_batch_size),
      batch_(new PooledRecord*[options_.max_export_batch_size]),
      batch_view_(new const SpanData*[options_.max_export_batch_size]) {
  // Spans record only through a processor, so this is the one place that needs it.
  internal::CalibrateSpanClock();
  internal::AddPoolCapacity(options_.max_queue_size + options_.max_export_batch_size);
  try {
    worker_ = std::thread([this] { Run(); });
    pthread_setname_np(worker_.native_handle(), "vigil-spans");  // for top -H, perf, gdb
  } catch (...) {
    internal::RemovePoolCapacity(options_.max_queue_size + options_.max_export_batch_size);
    throw;
  }
}

BatchSpanProcessor::~BatchSpanProcessor() {
  // OTEL_BSP_EXPORT_TIMEOUT=0 means no limit: wait (a day at most).
  const auto timeout = options_.export_timeout.count() > 0
                           ? Clock::duration(options_.export_timeout)
                           : Clock::duration(std::chrono::hours(24));
  Shutdown(Clock::now() + timeout);
  if (worker_.joinable()) {
    worker_.join();
  }
  // A producer racing with Shutdown() may have pushed after the worker's last look.
  DropRemaining();
  internal::RemovePoolCapacity(options_.max_queue_size + options_.max_export_batch_size);
}

void BatchSpanProcessor::OnEnd(PooledRecord* record) noexcept {
  if (!accepting_.load(std::memory_order_acquire)) {
    dropped_shutdown_producer_.fetch_add(1, std::memory_order_relaxed);
    internal::ReleaseRecordLocal(record);
    return;
  }
  if (!queue_->TryPush(record)) {
    dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
    internal::ReleaseRecordLocal(record);
    return;
  }
  if (sleeping_.load(std::memory_order_seq_cst)) {
    WakeWorker();
  }
}

void BatchSpanProcessor::WakeWorker() noexcept {
  if (queue_->size() < wake_threshold_) {
    return;
  }
  // Several producers may see the worker asleep; only the one that clears the flag
  // signals.
  if (!sleeping_.exchange(false, std::memory_order_seq_cst)) {
    return;
  }
  // Taking the mutex orders this signal after the worker has started waiting (it holds
  // the mutex from setting the flag until the wait releases it).
  { std::lock_guard lock(mu_); }
  wake_cv_.notify_one();
  // The kernel tends to wake the worker on this very CPU and may then let this thread
  // finish its slice (milliseconds: thousands of spans, more than the queue holds)
  // before the worker runs. Yielding once per batch hands the CPU over at once; with
  // the worker on another CPU it returns immediately.
  sched_yield();
}

void BatchSpanProcessor::Run() noexcept {
  RequestShortSchedulerSlice();
  const auto delay = options_.schedule_delay;
  const std::uint64_t batch = options_.max_export_batch_size;
  auto next_export = Clock::now() + delay;
  std::unique_lock lock(mu_);
  for (;;) {
    const std::uint64_t flush_gen = flush_requested_;
    const bool flush = flush_gen != flush_done_;
    const bool stop = stop_;
    const auto now = Clock::now();
    const std::uint64_t queued = queue_->size();
    const bool timer = now >= next_export;

    if (!flush && !stop && queued < batch && !(timer && queued > 0)) {
      if (timer) {
        next_export = now + delay;  // nothing waited: restart the period
      }
      sleeping_.store(true, std::memory_order_seq_cst);
      if (queue_->size() < wake_threshold_) {
        const auto awake = [this] {
          return !sleeping_.load(std::memory_order_relaxed) || stop_ ||
                 flush_requested_ != flush_done_;
        };
        if (delay.count() > 0) {
          wake_cv_.wait_until(lock, next_export, awake);
        } else {
          wake_cv_.wait(lock, awake);
        }
      }
      sleeping_.store(false, std::memory_order_relaxed);
      continue;
    }

    // Everything claimed up to now if the timer, a flush or the shutdown asks for it;
    // otherwise whole batches only, leaving a partial one for the timer.
    const std::uint64_t head = queue_->head();
    const std::uint64_t tail = queue_->tail();
    const std::uint64_t target =
        (flush || stop || timer) ? tail : head + (tail - head) / batch * batch;
    lock.unlock();
    ExportUpTo(target);
    worker_cpu_ns_.store(internal::ThisThreadCpuNanos(), std::memory_order_relaxed);
    next_export = Clock::now() + delay;
    lock.lock();

    if (flush) {
      flush_done_ = flush_gen;
      done_cv_.notify_all();
    }
    if (abandon_.load(std::memory_order_relaxed) || (stop && queue_->size() == 0)) {
      break;
    }
  }
  lock.unlock();
  DropRemaining();
  worker_cpu_ns_.store(internal::ThisThreadCpuNanos(), std::memory_order_relaxed);
  lock.lock();
  worker_done_ = true;
  done_cv_.notify_all();
}

std::size_t BatchSpanProcessor::ExportUpTo(std::uint64_t target) noexcept {
  const std::size_t batch = options_.max_export_batch_size;
  std::size_t total = 0;
  while (queue_->head() < target) {
    std::size_t n = 0;
    while (n < batch && queue_->head() < target) {
      PooledRecord* r = queue_->TryPop();
      if (r == nullptr) {
        // A producer has claimed this slot and is about to fill it.
        std::this_thread::yield();
        continue;
      }
      batch_[n++] = r;
    }
    ExportBatch(n);
    total += n;
  }
  return total;
}

void BatchSpanProcessor::ExportBatch(std::size_t count) noexcept {
  if (count == 0) {
    return;
  }
  if (abandon_.load(std::memory_order_relaxed)) {
    dropped_shutdown_worker_.fetch_add(count, std::memory_order_relaxed);
    internal::ReleaseRecords(batch_.get(), count);
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    batch_view_[i] = batch_[i];
  }
  const std::span<const SpanData* const> view(batch_view_.get(), count);
  // In turn, each to the end of its own retries: one destination's outage delays the
  // others by up to its export timeout but never changes what they are credited with.
  for (const auto& slot : exporters_) {
    CountOutcome(*slot, slot->exporter->Export(view), count);
  }
  internal::ReleaseRecords(batch_.get(), count);
}

void BatchSpanProcessor::CountOutcome(ExporterSlot& slot, const ExportOutcome& outcome,
                                      std::size_t count) noexcept {
  const std::size_t exported = std::min(outcome.exported, count);
  const std::size_t dropped = count - exported;
  slot.exported.fetch_add(exported, std::memory_order_relaxed);
  if (dropped == 0) {
    return;
  }
  if (outcome.drop_reason == "rejected") {
    slot.dropped_rejected.fetch_add(dropped, std::memory_order_relaxed);
  } else if (outcome.drop_reason == "shutdown") {
    slot.dropped_shutdown.fetch_add(dropped, std::memory_order_relaxed);
  } else {
    slot.dropped_export_failed.fetch_add(dropped, std::memory_order_relaxed);
  }
}

void BatchSpanProcessor::DropRemaining() noexcept {
  std::size_t n = 0;
  std::uint64_t dropped = 0;
  while (PooledRecord* r = queue_->TryPop()) {
    batch_[n++] = r;
    ++dropped;
    if (n == options_.max_export_batch_size) {
      internal::ReleaseRecords(batch_.get(), n);
      n = 0;
    }
  }
  internal::ReleaseRecords(batch_.get(), n);
  dropped_shutdown_worker_.fetch_add(dropped, std::memory_order_relaxed);
}

bool BatchSpanProcessor::ForceFlush(std::chrono::steady_clock::time_point deadline) noexcept {
  std::unique_lock lock(mu_);
  if (stop_) {
    return false;
  }
  const std::uint64_t gen = ++flush_requested_;
  wake_cv_.notify_one();
  done_cv_.wait_until(lock, deadline, [&] { return flush_done_ >= gen || worker_done_; });
  return flush_done_ >= gen;
}

bool BatchSpanProcessor::Shutdown(std::chrono::steady_clock::time_point deadline) noexcept {
  std::unique_lock lock(mu_);
  if (shutdown_called_) {
    // The first call does the work; others see its outcome (waiting at most until
    // their own deadline while it is in progress).
    done_cv_.wait_until(lock, deadline, [this] { return worker_done_; });
    return worker_done_ && !abandon_.load(std::memory_order_relaxed);
  }
  shutdown_called_ = true;
  accepting_.store(false, std::memory_order_seq_cst);
  stop_ = true;
  wake_cv_.notify_one();
  const bool drained = done_cv_.wait_until(lock, deadline, [this] { return worker_done_; });
  // Past the deadline the worker drops instead of exporting; the exporter's Shutdown
  // makes an Export() in progress give up.
  if (!drained) {
    abandon_.store(true, std::memory_order_relaxed);
  }
  lock.unlock();
  for (const auto& slot : exporters_) {
    slot->exporter->Shutdown(deadline);
  }
  if (drained && worker_.joinable()) {
    worker_.join();
  }
  return drained;
}

BatchSpanProcessor::Stats BatchSpanProcessor::stats() const noexcept {
  Stats s;
  s.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  const std::uint64_t shutdown_unexported =
      dropped_shutdown_producer_.load(std::memory_order_relaxed) +
      dropped_shutdown_worker_.load(std::memory_order_relaxed);
  s.exporter_count = exporters_.size();
  for (std::size_t i = 0; i < exporters_.size(); ++i) {
    const ExporterSlot& slot = *exporters_[i];
    ExporterStats& e = s.by_exporter[i];
    e.name = slot.name;
    e.exported = slot.exported.load(std::memory_order_relaxed);
    e.dropped_queue_full = s.dropped_queue_full;
    e.dropped_rejected = slot.dropped_rejected.load(std::memory_order_relaxed);
    e.dropped_export_failed = slot.dropped_export_failed.load(std::memory_order_relaxed);
    e.dropped_shutdown =
        slot.dropped_shutdown.load(std::memory_order_relaxed) + shutdown_unexported;
  }
  s.queued = queue_->size();
  s.worker_cpu_ns = worker_cpu_ns_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace vigil::telemetry

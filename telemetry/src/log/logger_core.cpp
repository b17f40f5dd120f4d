// Backend thread, draining and the flush/reopen handshakes.
#include "log/logger_core.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "log/signals.hpp"
#include "thread_cpu.hpp"

namespace vigil::telemetry::internal {
namespace {

std::int64_t MonotonicNanos() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The backend thread takes no asynchronous signals: process-directed ones (SIGHUP,
// SIGTERM, ...) go to the application's threads, and a SIGPIPE caused by our own write
// becomes EPIPE instead of killing the process. Synchronous fault signals cannot be
// blocked meaningfully and stay enabled.
class BlockAsyncSignals {
 public:
  BlockAsyncSignals() noexcept {
    sigset_t set;
    sigfillset(&set);
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) {
      sigdelset(&set, sig);
    }
    pthread_sigmask(SIG_BLOCK, &set, &saved_);
  }
  ~BlockAsyncSignals() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  BlockAsyncSignals(const BlockAsyncSignals&) = delete;
  BlockAsyncSignals& operator=(const BlockAsyncSignals&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace

LoggerCore::LoggerCore(const LoggerOptions& options, std::uint64_t id,
                       std::atomic<bool>* backend_asleep)
    : id_(id),
      ring_capacity_(Ring::RoundCapacity(options.ring_bytes)),
      overflow_(options.overflow),
      pid_(getpid()),
      sink_(options),
      out_(&sink_, kOutBufferSize),
      formatter_(options),
      backend_asleep_(backend_asleep) {
  if (options.handle_signals) {
    InstallFatalHandlers();
    if (sink_.is_file()) {
      InstallHupHandler();
    }
  }
  {
    // The new thread inherits the blocked mask; the constructing thread gets its own back.
    BlockAsyncSignals block;
    backend_ = std::thread([this] { Run(); });
    pthread_setname_np(backend_.native_handle(), "vigil-log");  // for top -H, perf, gdb
  }
  RegisterLive(this);
}

LoggerCore::~LoggerCore() {
  UnregisterLive(this);
  if (InForkedChild()) {
    // fork() copied the logger but not its backend thread: write what this process
    // logged, then leave the thread handle alone (it names a thread of the parent) and
    // the rings with it.
    DrainNow();
    if (new (std::nothrow) std::thread(std::move(backend_)) == nullptr) {
      backend_.detach();
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_cv_.notify_one();
  backend_.join();
  // No producer may use this logger any more: hand the rings back. A ring whose thread
  // is still alive keeps its control block until that thread notices logger_gone.
  Ring* ring = rings_.load(std::memory_order_acquire);
  while (ring != nullptr) {
    Ring* next = ring->next.load(std::memory_order_relaxed);
    ring->MarkLoggerGone();
    ring->FreeBuffer();
    ring->Release();
    ring = next;
  }
}

void LoggerCore::Register(Ring* ring) noexcept {
  Ring* head = rings_.load(std::memory_order_relaxed);
  do {
    ring->next.store(head, std::memory_order_relaxed);
  } while (!rings_.compare_exchange_weak(head, ring, std::memory_order_release,
                                         std::memory_order_relaxed));
}

void LoggerCore::Wake() noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
    backend_asleep_->store(false, std::memory_order_relaxed);  // one wake-up is enough
  }
  wake_cv_.notify_one();
}

void LoggerCore::Flush() noexcept {
  if (InForkedChild()) {
    DrainNow();
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  const std::uint64_t ticket = ++flush_requested_;
  wake_cv_.notify_one();
  done_cv_.wait(lock, [&] { return flush_done_ >= ticket; });
}

void LoggerCore::Reopen() noexcept {
  if (InForkedChild()) {
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  const std::uint64_t ticket = ++reopen_requested_;
  wake_cv_.notify_one();
  done_cv_.wait(lock, [&] { return reopen_done_ >= ticket; });
}

Logger::Stats LoggerCore::stats() const noexcept {
  std::uint64_t dropped = unattached_dropped_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(unlink_mu_);
    dropped += retired_dropped_.load(std::memory_order_relaxed);
    for (Ring* r = rings_.load(std::memory_order_acquire); r != nullptr;
         r = r->next.load(std::memory_order_acquire)) {
      dropped += r->dropped();
    }
  }
  return Logger::Stats{out_.written(), dropped, out_.lost(),
                       backend_cpu_ns_.load(std::memory_order_relaxed)};
}

void LoggerCore::SetObserver(LogObserver* observer) noexcept {
  LockDrain();
  observer_ = observer;
  UnlockDrain();
}

void LoggerCore::FlushForExit() noexcept {
  if (InForkedChild()) {
    DrainNow();
  } else {
    Flush();
  }
}

void LoggerCore::DrainNow() noexcept {
  if (!TryLockDrain(std::chrono::milliseconds(200))) {
    return;
  }
  DrainPass(/*unlink=*/false);
  out_.WriteOut();
  UnlockDrain();
}

bool LoggerCore::InForkedChild() const noexcept { return getpid() != pid_; }

void LoggerCore::LockDrain() const noexcept {
  for (unsigned spins = 0; drain_locked_.exchange(true, std::memory_order_acquire); ++spins) {
    if (spins > 64) {
      sched_yield();
    }
  }
}

bool LoggerCore::TryLockDrain(std::chrono::milliseconds budget) const noexcept {
  const std::int64_t deadline =
      MonotonicNanos() + std::chrono::duration_cast<std::chrono::nanoseconds>(budget).count();
  while (drain_locked_.exchange(true, std::memory_order_acquire)) {
    if (MonotonicNanos() > deadline) {
      return false;
    }
    sched_yield();
  }
  return true;
}

std::size_t LoggerCore::DrainPass(bool unlink) noexcept {
  std::size_t consumed = 0;
  Ring* prev = nullptr;
  Ring* ring = rings_.load(std::memory_order_acquire);
  while (ring != nullptr) {
    Ring* next = ring->next.load(std::memory_order_acquire);
    // Read before consuming: everything the thread published before it exited is then
    // visible to this pass.
    const bool producer_gone = ring->producer_gone();
    LogObserver* observer = unlink ? observer_ : nullptr;
    consumed += ring->Consume([this, observer](const char* record, std::size_t) {
      formatter_.Format(record, out_);
      if (observer != nullptr) {
        Field fields[LogLineView::kMaxFields];
        LogLineView line;
        formatter_.Decode(record, line, fields);
        observer->OnLine(line);
      }
    });
    if (producer_gone && unlink) {
      {
        std::lock_guard<std::mutex> lock(unlink_mu_);
        Unlink(prev, ring);
        retired_dropped_.fetch_add(ring->dropped(), std::memory_order_relaxed);
      }
      ring->Release();
    } else {
      prev = ring;
    }
    ring = next;
  }
  return consumed;
}

void LoggerCore::Unlink(Ring* prev, Ring* ring) noexcept {
  Ring* next = ring->next.load(std::memory_order_relaxed);
  if (prev != nullptr) {
    prev->next.store(next, std::memory_order_release);
    return;
  }
  Ring* expected = ring;
  if (rings_.compare_exchange_strong(expected, next, std::memory_order_acq_rel)) {
    return;
  }
  // Producers pushed new rings in front of it since the pass started; only this thread
  // changes existing links, so the predecessor is stable.
  Ring* p = rings_.load(std::memory_order_acquire);
  while (p->next.load(std::memory_order_relaxed) != ring) {
    p = p->next.load(std::memory_order_relaxed);
  }
  p->next.store(next, std::memory_order_release);
}

void LoggerCore::Run() noexcept {
  std::uint32_t hup_seen = HupGeneration();
  std::chrono::microseconds idle_for{0};  // since the last pass that found a line
  for (;;) {
    std::uint64_t flush_ticket;
    std::uint64_t reopen_ticket;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      flush_ticket = flush_requested_;
      reopen_ticket = reopen_requested_;
      stopping = stop_;
      wake_ = false;
    }

    LockDrain();
    formatter_.converter().MaybeReanchor();
    const std::size_t consumed = DrainPass(/*unlink=*/true);
    out_.WriteOut();
    backend_cpu_ns_.store(internal::ThisThreadCpuNanos(), std::memory_order_relaxed);
    const std::uint32_t hup = HupGeneration();
    bool reopen_pending;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reopen_pending = reopen_ticket != reopen_done_;
    }
    if (reopen_pending || hup != hup_seen) {
      sink_.Reopen();
      hup_seen = hup;
    }
    UnlockDrain();

    {
      std::lock_guard<std::mutex> lock(mu_);
      if (flush_done_ != flush_ticket || reopen_done_ != reopen_ticket) {
        flush_done_ = flush_ticket;
        reopen_done_ = reopen_ticket;
        done_cv_.notify_all();
      }
    }
    if (stopping && consumed == 0) {
      break;
    }
    // A busy pass is relative to the ring size, so that small rings are not left to fill
    // while the backend naps.
    if (consumed != 0 || stopping) {
      idle_for = std::chrono::microseconds{0};
    }
    if (consumed >= std::min(kBusyPassBytes, ring_capacity_ / 4) || stopping) {
      continue;
    }

    std::unique_lock<std::mutex> lock(mu_);
    const auto work = [this] {
      return wake_ || stop_ || flush_requested_ != flush_done_ || reopen_requested_ != reopen_done_;
    };
    if (!work()) {
      sleeping_.store(true, std::memory_order_relaxed);
      if (idle_for >= kDeepSleepAfter) {
        backend_asleep_->store(true, std::memory_order_relaxed);
        wake_cv_.wait_for(lock, kDeepSleep, work);
        backend_asleep_->store(false, std::memory_order_relaxed);
      } else {
        wake_cv_.wait_for(lock, kIdleSleep, work);
      }
      sleeping_.store(false, std::memory_order_relaxed);
      if (consumed == 0) {
        idle_for += kIdleSleep;
      }
    }
  }
}

}  // namespace vigil::telemetry::internal

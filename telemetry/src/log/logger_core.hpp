// The shared part of a Logger: its rings, its backend thread and its sink.
//
// Producers reach it through Logger::Write (logger.cpp), which finds the calling
// thread's ring and registers new rings here. The backend thread repeatedly takes the
// drain lock, formats everything the rings hold into the OutBuffer and writes the batch.
// It goes straight on while passes find a lot (kBusyPassBytes), otherwise it sleeps
// kIdleSleep, so the backend does not chase a producer line by line (which would bounce
// the cache lines they share) and a steady trickle of lines (an access log) costs it a
// couple of hundred wake-ups a second, not one per line: on a machine whose cores the
// service shares, each wake-up can preempt a request. After kDeepSleepAfter without a line it sleeps kDeepSleep at a time and
// raises the logger's `backend_asleep` flag, which the next log call sees (it shares a
// cache line with the level) and answers with a wake-up: an idle service costs a few
// wake-ups a second, and a lone line after a quiet spell is written at once. Producers
// also wake it when a ring gets more than half full or a blocked producer waits for
// space; Flush() and Reopen() wake it and wait for the pass that covers their call.
//
// A line committed just as the backend decides to sleep deeply can miss its wake-up
// (avoiding that would cost a full fence per call); it is then written within
// kDeepSleep, never lost.
//
//   auto core = std::make_unique<LoggerCore>(options, id);
//   core->Register(ring);   // a producing thread's first line
//   core->Flush();
//
// The drain lock makes the backend the single consumer of every ring, so that a
// fatal-signal handler (DrainNow) can take its place for a last synchronous pass.
//
// Thread-safety: Register, Wake*, Flush, Reopen, stats and DrainNow from any thread;
// the destructor once no other call is in progress.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vigil/telemetry/log.hpp>

#include "log/line_format.hpp"
#include "log/ring.hpp"
#include "log/sink.hpp"

namespace vigil::telemetry::internal {

class LoggerCore {
 public:
  static constexpr std::size_t kOutBufferSize = 256 * 1024;
  // The delay a line may wait for its write, and the backend's wake-ups a second under a
  // steady trickle (200). A 1 MiB ring holds what arrives meanwhile up to ~100 MB/s;
  // beyond that, or with a smaller ring, the producer wakes the backend at half full.
  static constexpr std::chrono::microseconds kIdleSleep{5000};
  static constexpr std::chrono::milliseconds kDeepSleepAfter{50};
  static constexpr std::chrono::milliseconds kDeepSleep{250};
  static constexpr std::size_t kBusyPassBytes = 64 * 1024;

  // `backend_asleep` lives in the Logger, next to its level, and must outlive the core.
  LoggerCore(const LoggerOptions& options, std::uint64_t id, std::atomic<bool>* backend_asleep);
  // Drains every ring, stops the backend, releases the rings.
  ~LoggerCore();
  LoggerCore(const LoggerCore&) = delete;
  LoggerCore& operator=(const LoggerCore&) = delete;

  std::uint64_t id() const noexcept { return id_; }
  std::size_t ring_capacity() const noexcept { return ring_capacity_; }
  OverflowPolicy overflow() const noexcept { return overflow_; }

  // Publishes a new ring to the backend (lock-free push).
  void Register(Ring* ring) noexcept;
  // A line that could not even get a ring (out of memory).
  void CountUnattachedDrop() noexcept {
    unattached_dropped_.fetch_add(1, std::memory_order_relaxed);
  }

  // Wakes the backend if it is sleeping; cheap (one relaxed load) when it is not.
  void WakeIfSleeping() noexcept {
    if (sleeping_.load(std::memory_order_relaxed)) Wake();
  }
  void Wake() noexcept;

  void Flush() noexcept;
  void Reopen() noexcept;
  Logger::Stats stats() const noexcept;
  // Takes the drain lock, so no pass uses the previous observer once it returns.
  void SetObserver(LogObserver* observer) noexcept;

  // exit() hook: Flush(), or DrainNow() in a forked child where the backend thread
  // does not exist.
  void FlushForExit() noexcept;
  // One synchronous pass on the calling thread, waiting at most 200 ms for the drain
  // lock. Async-signal-safe: no allocation, no mutex.
  void DrainNow() noexcept;

  // fork() handlers: no pass is in progress while the address space is copied, so a
  // child finds the rings and the output buffer consistent. In the child the backend
  // thread does not exist; Flush(), a blocked producer and the destructor drain on the
  // calling thread instead.
  void BeforeFork() noexcept { LockDrain(); }
  void AfterFork(bool in_child) noexcept {
    if (in_child) {  // never wait for the backend there
      sleeping_.store(false, std::memory_order_relaxed);
      backend_asleep_->store(false, std::memory_order_relaxed);
    }
    UnlockDrain();
  }
  bool InForkedChild() const noexcept;

 private:
  void Run() noexcept;
  // Formats everything published so far; returns the bytes consumed. With `unlink`,
  // rings whose producer exited are unlinked and released once drained, and the observer
  // sees each line (never from a signal handler: that frees memory, and an observer may
  // allocate).
  std::size_t DrainPass(bool unlink) noexcept;
  void Unlink(Ring* prev, Ring* ring) noexcept;
  void LockDrain() const noexcept;
  bool TryLockDrain(std::chrono::milliseconds budget) const noexcept;
  void UnlockDrain() const noexcept { drain_locked_.store(false, std::memory_order_release); }

  const std::uint64_t id_;
  const std::size_t ring_capacity_;
  const OverflowPolicy overflow_;
  const pid_t pid_;

  Sink sink_;
  OutBuffer out_;
  LineFormatter formatter_;
  LogObserver* observer_ = nullptr;  // read and written under the drain lock

  std::atomic<Ring*> rings_{nullptr};
  // Held by the backend while it unlinks a ring and by stats() while it walks the list,
  // so that stats() never waits for a pass (which can be stuck in write(2)).
  mutable std::mutex unlink_mu_;
  mutable std::atomic<bool> drain_locked_{false};
  std::atomic<std::uint64_t> retired_dropped_{0};
  std::atomic<std::uint64_t> unattached_dropped_{0};
  std::atomic<std::uint64_t> backend_cpu_ns_{0};  // published by the backend after each pass
  std::atomic<bool> sleeping_{false};
  std::atomic<bool>* const backend_asleep_;

  std::mutex mu_;
  std::condition_variable wake_cv_;
  std::condition_variable done_cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  std::uint64_t reopen_requested_ = 0;
  std::uint64_t reopen_done_ = 0;

  std::thread backend_;
};

}  // namespace vigil::telemetry::internal

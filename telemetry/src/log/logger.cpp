// Logger: the caller's side of a log call and the per-thread ring lookup.
#include <atomic>
#include <thread>
#include <vector>
#include <vigil/telemetry/log.hpp>

#include "log/clock.hpp"
#include "log/logger_core.hpp"
#include "log/record.hpp"
#include "log/ring.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace vigil::telemetry {
namespace {

using internal::LoggerCore;
using internal::Ring;

std::atomic<std::uint64_t> g_next_logger_id{1};

// Per-thread cache of (logger id, ring), direct-mapped on the id: a thread that writes
// to a few loggers in turn (an access log and an application log) keeps hitting it.
// Constant-initialised and trivially destructible, so reading it costs one %fs-relative
// load and no guard. An entry whose logger is gone is never used again: ids are unique.
struct CacheEntry {
  std::uint64_t logger_id;
  Ring* ring;
};
constexpr std::size_t kCacheSize = 8;
constinit thread_local CacheEntry t_ring_cache[kCacheSize] = {};

enum class ThreadState : std::uint8_t { kFresh, kLive, kExited };
constinit thread_local ThreadState t_state = ThreadState::kFresh;

// Owns the calling thread's references to its rings; its destructor runs at thread exit
// and hands each ring over to its logger's backend.
class ThreadRings {
 public:
  ThreadRings() noexcept { t_state = ThreadState::kLive; }
  ~ThreadRings() {
    for (Ring* ring : rings_) {
      ring->MarkProducerGone();
      ring->Release();
    }
    for (auto& entry : t_ring_cache) {
      entry = CacheEntry{0, nullptr};
    }
    t_state = ThreadState::kExited;
  }
  ThreadRings(const ThreadRings&) = delete;
  ThreadRings& operator=(const ThreadRings&) = delete;

  // The ring for `logger_id`, releasing on the way the rings of destroyed loggers.
  Ring* Find(std::uint64_t logger_id) noexcept {
    Ring* found = nullptr;
    std::size_t kept = 0;
    for (Ring* ring : rings_) {
      if (ring->logger_gone()) {
        for (auto& entry : t_ring_cache) {
          if (entry.ring == ring) {
            entry = CacheEntry{0, nullptr};
          }
        }
        ring->Release();
        continue;
      }
      if (ring->logger_id() == logger_id) {
        found = ring;
      }
      rings_[kept++] = ring;
    }
    rings_.resize(kept);
    return found;
  }

  bool Add(Ring* ring) noexcept {
    try {
      rings_.push_back(ring);
      return true;
    } catch (...) {
      return false;
    }
  }

 private:
  std::vector<Ring*> rings_;
};

ThreadRings& ThisThreadRings() {
  thread_local ThreadRings rings;
  return rings;
}

// Slow path of the ring lookup: the first line of this thread to this logger, or a
// cache conflict. nullptr once the thread's thread_local objects are being destroyed
// (a destructor that logs) or when memory is exhausted.
Ring* AttachRing(LoggerCore* core) noexcept {
  if (t_state == ThreadState::kExited) {
    return nullptr;
  }
  ThreadRings& rings = ThisThreadRings();
  Ring* ring = rings.Find(core->id());
  if (ring == nullptr) {
    ring = Ring::Create(core->ring_capacity(), core->id());
    if (ring == nullptr) {
      return nullptr;
    }
    if (!rings.Add(ring)) {
      ring->Release();
      ring->Release();
      return nullptr;
    }
    core->Register(ring);
  }
  t_ring_cache[core->id() % kCacheSize] = CacheEntry{core->id(), ring};
  return ring;
}

void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

}  // namespace

Logger::Logger(const LoggerOptions& options)
    : min_level_(static_cast<std::uint8_t>(options.level)),
      id_(g_next_logger_id.fetch_add(1, std::memory_order_relaxed)) {
  internal::ClockSetup();  // before any line is stamped
  core_ = std::make_unique<LoggerCore>(options, id_, &backend_asleep_);
}

Logger::~Logger() = default;

void Logger::Flush() noexcept { core_->Flush(); }
void Logger::Reopen() noexcept { core_->Reopen(); }
Logger::Stats Logger::stats() const noexcept { return core_->stats(); }
void Logger::SetObserver(LogObserver* observer) noexcept { core_->SetObserver(observer); }

void Logger::Write(LogLevel level, const RequestContext* ctx, std::string_view msg,
                   const Field* fields, std::size_t count) noexcept {
  const std::uint64_t stamp = internal::ReadStamp();
  const std::size_t size = internal::AlignRecord(internal::EncodedSize(ctx, msg, fields, count));
  // The common case in straight-line code: the thread's ring is cached and has room
  // before its end and below half full.
  const CacheEntry& cached = t_ring_cache[id_ % kCacheSize];
  if (cached.logger_id == id_) [[likely]] {
    Ring* ring = cached.ring;
    if (char* p = ring->TryReserveFast(size); p != nullptr) [[likely]] {
      internal::Encode(p, size, level, stamp, ctx, msg, fields, count);
      ring->CommitFast(size);
      // The ring is at most half full here (TryReserveFast), so only these two can ask
      // for more; WriteSlow handles a ring over half full.
      if (level == LogLevel::kFatal || backend_asleep_.load(std::memory_order_relaxed))
          [[unlikely]] {
        AfterWrite(level, false);
      }
      return;
    }
  }
  WriteSlow(level, stamp, size, ctx, msg, fields, count);
}

void Logger::AfterWrite(LogLevel level, bool over_half) noexcept {
  if (backend_asleep_.load(std::memory_order_relaxed)) {
    core_->Wake();
  } else if (over_half) {
    core_->WakeIfSleeping();
  }
  if (level == LogLevel::kFatal) {
    core_->Flush();
  }
}

void Logger::WriteSlow(LogLevel level, std::uint64_t stamp, std::size_t size,
                       const RequestContext* ctx, std::string_view msg, const Field* fields,
                       std::size_t count) noexcept {
  const CacheEntry& cached = t_ring_cache[id_ % kCacheSize];
  Ring* ring = cached.logger_id == id_ ? cached.ring : AttachRing(core_.get());

  if (ring == nullptr) {
    if (t_state != ThreadState::kExited) {
      core_->CountUnattachedDrop();
      return;
    }
    // The thread is tearing down its thread_locals: a one-line ring handed straight to
    // the backend, which frees it once written. The backend visits rings in no
    // particular order, so the thread's earlier lines are written out first.
    core_->Flush();
    ring = Ring::Create(2 * size, id_);
    char* p = ring != nullptr && size <= ring->max_record() ? ring->TryReserve(size) : nullptr;
    if (p == nullptr) {
      if (ring != nullptr) {
        ring->Release();
        ring->Release();
      }
      core_->CountUnattachedDrop();
      return;
    }
    internal::Encode(p, size, level, stamp, ctx, msg, fields, count);
    ring->Commit();
    ring->MarkProducerGone();
    core_->Register(ring);
    ring->Release();
    if (level == LogLevel::kFatal) {
      core_->Flush();
    }
    return;
  }

  if (size > ring->max_record()) {
    ring->CountDrop();
    return;
  }
  char* p = ring->TryReserve(size);
  if (p == nullptr) {
    if (core_->overflow() == OverflowPolicy::kDrop) {
      ring->CountDrop();
      core_->WakeIfSleeping();
      return;
    }
    core_->WakeIfSleeping();
    for (unsigned spins = 1; (p = ring->TryReserve(size)) == nullptr; ++spins) {
      if (spins < 64) {
        CpuRelax();
      } else {
        std::this_thread::yield();
        // A wake-up can be missed while the backend is on its way to sleep; ask again now
        // and then rather than waiting out its idle timeout. In a forked child there is
        // no backend: make room by draining here.
        if (spins % 256 == 0) {
          core_->WakeIfSleeping();
        }
        if (spins % 4096 == 0 && core_->InForkedChild()) {
          core_->DrainNow();
        }
      }
    }
  }
  internal::Encode(p, size, level, stamp, ctx, msg, fields, count);
  ring->Commit();
  AfterWrite(level, ring->over_half());
}

}  // namespace vigil::telemetry

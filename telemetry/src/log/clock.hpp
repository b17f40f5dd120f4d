// Timestamps for log lines: cheap to take in the caller, exact to the microsecond when
// written.
//
// The caller stores a raw stamp: the CPU's time-stamp counter when the kernel itself
// uses it as its clocksource (invariant TSC; about 10 ns against about 24 ns for a vDSO
// clock_gettime(CLOCK_REALTIME) on the development machine), otherwise CLOCK_REALTIME
// nanoseconds. The consumer converts with a StampConverter, which anchors the counter to
// CLOCK_REALTIME every 10 ms (so clock steps and slews show up within 10 ms) and refines
// the counter's rate against CLOCK_MONOTONIC_RAW over an ever longer baseline.
//
//   std::uint64_t stamp = ReadStamp();                      // producer
//   std::int64_t ns = converter.ToUnixNanos(stamp);         // consumer
//   time_formatter.Format(ns, out);  // "2026-11-22T13:05:10.123456Z"
//
// Thread-safety: ReadStamp is safe anywhere, including signal handlers. A
// StampConverter or TimeFormatter belongs to one consumer at a time; neither allocates,
// so both may be used from a fatal-signal handler.
#pragma once

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define VIGIL_LOG_HAVE_TSC 1
#else
#define VIGIL_LOG_HAVE_TSC 0
#endif

namespace vigil::telemetry::internal {

// Set once, before the first logger exists (see ClockSetup).
extern std::atomic<bool> g_stamp_is_tsc;

inline std::int64_t RealtimeNanos() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline std::uint64_t ReadStamp() noexcept {
#if VIGIL_LOG_HAVE_TSC
  if (g_stamp_is_tsc.load(std::memory_order_relaxed)) return __rdtsc();
#endif
  return static_cast<std::uint64_t>(RealtimeNanos());
}

// Decides the stamp kind and measures the counter's rate; runs once per process (about
// 2 ms, the first time a logger is created). Returns nanoseconds per tick (1 when stamps
// are nanoseconds).
double ClockSetup() noexcept;

class StampConverter {
 public:
  StampConverter() noexcept;

  // Realtime nanoseconds since the Unix epoch for a stamp from ReadStamp().
  std::int64_t ToUnixNanos(std::uint64_t stamp) const noexcept {
    if (!tsc_) return static_cast<std::int64_t>(stamp);
    // Unsigned difference reinterpreted as signed: stamps a little older than the
    // anchor give a small negative offset.
    const auto ticks = static_cast<std::int64_t>(stamp - anchor_stamp_);
    return anchor_ns_ + static_cast<std::int64_t>(static_cast<double>(ticks) * ns_per_tick_);
  }

  // Takes a new anchor when the last one is older than 10 ms. Cheap to call often.
  void MaybeReanchor() noexcept;

 private:
  void Anchor() noexcept;

  bool tsc_;
  double ns_per_tick_;
  std::uint64_t anchor_stamp_ = 0;
  std::int64_t anchor_ns_ = 0;
  std::int64_t anchor_mono_ = 0;
  // The first anchor, the far end of the baseline used to refine ns_per_tick_.
  std::uint64_t base_stamp_ = 0;
  std::int64_t base_mono_ = 0;
};

// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ": 27 characters. Remembers the last second's prefix.
class TimeFormatter {
 public:
  static constexpr std::size_t kSize = 27;
  void Format(std::int64_t unix_nanos, char* out) noexcept;

 private:
  std::int64_t cached_second_ = std::numeric_limits<std::int64_t>::min();
  char prefix_[20] = {};  // "YYYY-MM-DDTHH:MM:SS."
};

}  // namespace vigil::telemetry::internal

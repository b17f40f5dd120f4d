// Span timestamps: Unix nanoseconds at about half the cost of clock_gettime.
//
// A span takes two timestamps; a vDSO clock_gettime(CLOCK_REALTIME) costs about 25 ns
// on the development machine, reading the CPU's time-stamp counter about 10 ns. When the
// kernel itself trusts the counter (its clocksource is "tsc": invariant and synchronised
// across cores), each thread converts counter readings against its own anchor, a
// (counter, CLOCK_REALTIME) pair taken afresh every millisecond, with a rate measured
// against CLOCK_MONOTONIC_RAW (5 ms at first, then refined about once a second over the
// whole time since). Every pair is the best of several reads (the one not interrupted).
// The error stays within a few nanoseconds of CLOCK_REALTIME and follows its steps and
// slews within a millisecond. Elsewhere, or before calibration, it is plain
// CLOCK_REALTIME.
//
//   CalibrateSpanClock();                  // once, when a processor is created (~5 ms)
//   std::uint64_t t = SpanClockNow();      // any thread, any time
//
// Thread-safety: SpanClockNow uses a per-thread anchor and is safe anywhere;
// CalibrateSpanClock may be called concurrently (it runs once).
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#define VIGIL_TRACE_HAVE_TSC 1
#else
#define VIGIL_TRACE_HAVE_TSC 0
#endif

namespace vigil::telemetry::internal {

inline std::uint64_t RealtimeNanos() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Measures the counter's rate if the kernel's clocksource is the TSC; idempotent.
void CalibrateSpanClock() noexcept;

struct SpanClockState {
  std::atomic<bool> use_tsc{false};
  // Refined about once a second against an ever longer baseline.
  std::atomic<double> ns_per_tick{0};
  std::uint64_t reanchor_ticks = 0;  // one millisecond of counter ticks
  // The calibration's first sample: the baseline for refinements.
  std::uint64_t origin_tsc = 0;
  std::int64_t origin_raw_ns = 0;
  std::atomic<std::int64_t> last_refine_ns{0};
};
extern SpanClockState g_span_clock;

struct ClockAnchor {
  std::uint64_t tsc;
  std::uint64_t ns;
};
// Zero-initialised plain data (constinit): accessed without an initialisation guard.
extern constinit thread_local ClockAnchor t_clock_anchor;

// Takes a new anchor for this thread and returns the current time.
std::uint64_t Reanchor() noexcept;

inline std::uint64_t SpanClockNow() noexcept {
#if VIGIL_TRACE_HAVE_TSC
  if (g_span_clock.use_tsc.load(std::memory_order_acquire)) {
    const std::uint64_t ticks = __rdtsc() - t_clock_anchor.tsc;
    // Also taken when the counter reads below the anchor (unsigned wrap), e.g. right
    // after a migration to a core whose counter is a few ticks behind.
    if (ticks < g_span_clock.reanchor_ticks) [[likely]] {
      // Through int64: a signed conversion is one instruction, and ticks stays small.
      const auto ns =
          static_cast<std::int64_t>(static_cast<double>(static_cast<std::int64_t>(ticks)) *
                                    g_span_clock.ns_per_tick.load(std::memory_order_relaxed));
      return t_clock_anchor.ns + static_cast<std::uint64_t>(ns);
    }
    return Reanchor();
  }
#endif
  return RealtimeNanos();
}

}  // namespace vigil::telemetry::internal

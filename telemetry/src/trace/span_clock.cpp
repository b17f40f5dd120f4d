#include "trace/span_clock.hpp"

#include <fstream>
#include <mutex>
#include <string>

namespace vigil::telemetry::internal {

SpanClockState g_span_clock;
constinit thread_local ClockAnchor t_clock_anchor{};

namespace {

std::int64_t ClockNanos(clockid_t id) noexcept {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool KernelUsesTsc() noexcept {
  try {
    std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string name;
    return static_cast<bool>(f >> name) && name == "tsc";
  } catch (...) {
    return false;
  }
}

#if VIGIL_TRACE_HAVE_TSC
// One (counter, clock) pair: of a few tries, the one whose counter reads around the
// clock read are closest together, i.e. the one not interrupted in between.
void Sample(clockid_t id, std::uint64_t& tsc, std::int64_t& ns) noexcept {
  std::uint64_t best = ~std::uint64_t{0};
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t before = __rdtsc();
    const std::int64_t n = ClockNanos(id);
    const std::uint64_t after = __rdtsc();
    if (after - before < best) {
      best = after - before;
      tsc = before + (after - before) / 2;
      ns = n;
    }
  }
}

// The rate over [origin, now]; false if implausible.
bool RateSince(std::uint64_t tsc0, std::int64_t ns0, std::uint64_t tsc1, std::int64_t ns1,
               double& ns_per_tick) noexcept {
  if (tsc1 <= tsc0 || ns1 <= ns0) {
    return false;
  }
  ns_per_tick = static_cast<double>(ns1 - ns0) / static_cast<double>(tsc1 - tsc0);
  return ns_per_tick > 0.01 && ns_per_tick < 100.0;
}
#endif

void Calibrate() noexcept {
#if VIGIL_TRACE_HAVE_TSC
  if (!KernelUsesTsc()) {
    return;
  }
  std::uint64_t tsc0 = 0;
  std::uint64_t tsc1 = 0;
  std::int64_t ns0 = 0;
  std::int64_t ns1 = 0;
  Sample(CLOCK_MONOTONIC_RAW, tsc0, ns0);
  // 5 ms: the endpoints' uncertainty (tens of ns) is then a rate error of a few ppm.
  do {
    Sample(CLOCK_MONOTONIC_RAW, tsc1, ns1);
  } while (ns1 - ns0 < 5'000'000);
  double ns_per_tick = 0;
  if (!RateSince(tsc0, ns0, tsc1, ns1, ns_per_tick)) {
    return;
  }
  g_span_clock.origin_tsc = tsc0;
  g_span_clock.origin_raw_ns = ns0;
  g_span_clock.ns_per_tick.store(ns_per_tick, std::memory_order_relaxed);
  g_span_clock.reanchor_ticks = static_cast<std::uint64_t>(1'000'000.0 / ns_per_tick);
  g_span_clock.last_refine_ns.store(ClockNanos(CLOCK_REALTIME), std::memory_order_relaxed);
  g_span_clock.use_tsc.store(true, std::memory_order_release);
#endif
}

#if VIGIL_TRACE_HAVE_TSC
// About once a second, one thread re-measures the rate over the whole time since
// calibration; its precision grows with that baseline.
void MaybeRefine(std::int64_t now_ns) noexcept {
  std::int64_t last = g_span_clock.last_refine_ns.load(std::memory_order_relaxed);
  if (now_ns - last < 1'000'000'000 || !g_span_clock.last_refine_ns.compare_exchange_strong(
                                           last, now_ns, std::memory_order_relaxed)) {
    return;
  }
  std::uint64_t tsc = 0;
  std::int64_t raw = 0;
  Sample(CLOCK_MONOTONIC_RAW, tsc, raw);
  double rate = 0;
  if (!RateSince(g_span_clock.origin_tsc, g_span_clock.origin_raw_ns, tsc, raw, rate)) {
    return;
  }
  // The baseline is at least a second: this is the better estimate, whatever the first
  // 5 ms said.
  g_span_clock.ns_per_tick.store(rate, std::memory_order_relaxed);
}
#endif

}  // namespace

void CalibrateSpanClock() noexcept {
  static std::once_flag once;
  try {
    std::call_once(once, Calibrate);
  } catch (...) {
    // call_once only throws if the system cannot create its synchronisation; stay on
    // clock_gettime.
  }
}

std::uint64_t Reanchor() noexcept {
#if VIGIL_TRACE_HAVE_TSC
  std::uint64_t tsc = 0;
  std::int64_t ns = 0;
  Sample(CLOCK_REALTIME, tsc, ns);
  t_clock_anchor = ClockAnchor{tsc, static_cast<std::uint64_t>(ns)};
  MaybeRefine(ns);
  return static_cast<std::uint64_t>(ns);
#else
  return RealtimeNanos();
#endif
}

}  // namespace vigil::telemetry::internal

// The two clocks a service reads, named for what each one is for.
//
// The wall clock (std::chrono::system_clock) is Unix time, the same in every process on
// every machine that keeps time: use it for timestamps that are stored, sent, or compared
// with ones another process wrote (created_at columns, token expiries, ids). It can jump
// when the time is set, so it never measures a duration.
//
// The monotonic clock (std::chrono::steady_clock) never goes back, but its zero is
// arbitrary (usually boot) and differs between processes: use it for durations and for
// spacing attempts inside one process, and never store or send it.
//
//   order.created_at_ms = service::WallClockMillis();
//   if (service::MonotonicMillis() - last_attempt_ms >= 5000) Retry();
//   const service::Stopwatch watch;  Hash();  histogram.Observe(watch.Seconds());
//
// Thread-safety: reads of the standard clocks; safe from any thread. A Stopwatch is a
// value, safe to read from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>

namespace vigil::service {

// Unix time in whole seconds (the wall clock).
inline std::int64_t WallClockSeconds() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Unix time in milliseconds (the wall clock).
inline std::int64_t WallClockMillis() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Milliseconds on the monotonic clock, from an arbitrary zero: only differences between
// two readings in one process mean anything.
inline std::int64_t MonotonicMillis() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A duration measured on the monotonic clock, from construction.
class Stopwatch {
 public:
  Stopwatch() noexcept : start_(std::chrono::steady_clock::now()) {}

  // Seconds since construction.
  double Seconds() const noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace vigil::service

// The CPU time the calling thread has used, for the SDK's threads to publish their own
// cost (vigil_telemetry_thread_cpu_seconds_total): each reads it after a pass of work and
// stores it where stats() finds it, so no other thread ever reads a thread's clock.
//
//   cpu_ns_.store(internal::ThisThreadCpuNanos(), std::memory_order_relaxed);
//
// One clock_gettime(CLOCK_THREAD_CPUTIME_ID) system call (0.55-0.7 us on the 2-vCPU
// development VM; each thread makes a few hundred a second under load, fewer when idle);
// 0 if the clock cannot be read.
//
// Thread-safety: reads only the calling thread's clock.
#pragma once

#include <time.h>

#include <cstdint>

namespace vigil::telemetry::internal {

inline std::uint64_t ThisThreadCpuNanos() noexcept {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace vigil::telemetry::internal

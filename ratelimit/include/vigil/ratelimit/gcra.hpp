// The generic cell rate algorithm (GCRA): one stored number per key, the theoretical
// arrival time (TAT) of the next request were the client to keep exactly to its rate.
//
// A policy of `quota` requests per `window` with a `burst` gives an emission interval
// T = window / quota (the time one unit of quota takes to come back) and a tolerance
// burst * T (how far ahead of now the TAT may run). A request of cost c is allowed when
// max(TAT, now) + c*T - now <= tolerance; it then moves the TAT there. A key whose TAT
// has fallen behind now is a full bucket, the same as a key never seen: an idle key can
// be forgotten at any time without changing a decision.
//
// Decide() is the one place this arithmetic lives: the memory store calls it, and the
// Redis store calls it on the TAT and the time its script read (the script repeats only
// the comparison and the update, in integer microseconds, which a test holds equal).
//
// Thread-safety: pure functions and values.
#pragma once

#include <chrono>
#include <cstdint>

namespace vigil::ratelimit {

// A rate in integer microseconds, the unit both stores compute in (a Unix time in
// microseconds fits the 53 bits a Lua number holds exactly).
struct Rate {
  std::int64_t interval_us = 0;   // T: window / quota, at least 1
  std::int64_t tolerance_us = 0;  // burst * T

  // `quota` (>= 1) requests per `window` (>= 1 ms), up to `burst` (>= 1) at once.
  static Rate Of(std::int64_t quota, std::chrono::milliseconds window, std::int64_t burst) noexcept;
};

struct Decision {
  bool allowed = false;
  // Units of quota left after this request (for a refused one: before it; may be below
  // its cost).
  std::int64_t remaining = 0;
  // Until the quota is whole again (the TAT minus now, after an allowed request).
  std::int64_t reset_us = 0;
  // For a refused request: until it would be allowed. 0 when allowed.
  std::int64_t retry_after_us = 0;
  // The TAT to store after an allowed request; the unchanged one after a refused request.
  std::int64_t tat_us = 0;
};

// The decision for a request of `cost` (>= 0; 0 only asks) at `now_us`, given the
// stored TAT (0 or anything <= now: none).
Decision Decide(std::int64_t now_us, std::int64_t stored_tat_us, const Rate& rate,
                std::int64_t cost) noexcept;

// Whole seconds, rounded up, for the RateLimit and Retry-After fields (0 stays 0).
std::int64_t CeilSeconds(std::int64_t us) noexcept;

}  // namespace vigil::ratelimit

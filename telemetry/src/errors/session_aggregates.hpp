// Release health for a server: Sentry's request-mode session aggregates. Every request
// is a session; they are counted per minute of their start as exited (fine), errored or
// crashed, and sent as `sessions` items (develop.sentry.dev, "Sessions": aggregates are
// additive, so a minute may be sent in several parts).
//
//   aggregates.Record(RequestOutcome::kOk, now_unix_seconds);     // request threads
//   for (const auto& m : aggregates.Take(now_unix_seconds, false)) ...  // the sender
//
// Recording is one relaxed increment in the minute's bucket (buckets are reused every
// kBuckets minutes; a new minute takes a short lock once).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>
#include <vigil/telemetry/errors.hpp>

namespace vigil::telemetry::internal {

class SessionAggregates {
 public:
  static constexpr std::size_t kBuckets = 8;

  struct Minute {
    std::int64_t start_unix_seconds;  // a multiple of 60
    std::uint64_t exited;
    std::uint64_t errored;
    std::uint64_t crashed;
  };

  void Record(RequestOutcome outcome, std::int64_t now_unix_seconds) noexcept;
  // The counts of the minutes before the one of `now_unix_seconds` (all minutes with
  // `all`), oldest first, reset.
  std::vector<Minute> Take(std::int64_t now_unix_seconds, bool all);

 private:
  struct Bucket {
    std::atomic<std::int64_t> minute{-1};
    std::array<std::atomic<std::uint64_t>, 3> counts{};  // exited, errored, crashed
  };

  void Claim(Bucket& bucket, std::int64_t minute) noexcept;
  static bool TakeCounts(Bucket& bucket, Minute& out) noexcept;

  std::array<Bucket, kBuckets> buckets_;
  std::mutex mu_;
  std::vector<Minute> carried_;  // counts of minutes whose bucket a later minute took
};

}  // namespace vigil::telemetry::internal

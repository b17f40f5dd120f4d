#include "errors/session_aggregates.hpp"

#include <algorithm>

namespace vigil::telemetry::internal {

void SessionAggregates::Record(RequestOutcome outcome, std::int64_t now_unix_seconds) noexcept {
  const std::int64_t minute = now_unix_seconds / 60;
  Bucket& bucket = buckets_[static_cast<std::size_t>(minute) % kBuckets];
  if (bucket.minute.load(std::memory_order_acquire) != minute) Claim(bucket, minute);
  bucket.counts[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
}

void SessionAggregates::Claim(Bucket& bucket, std::int64_t minute) noexcept {
  try {
    std::lock_guard lock(mu_);
    if (bucket.minute.load(std::memory_order_relaxed) == minute) return;
    Minute old{};
    if (TakeCounts(bucket, old)) carried_.push_back(old);
    bucket.minute.store(minute, std::memory_order_release);
  } catch (...) {
    // Out of memory for the carried counts: they are lost, the new minute counts on.
    bucket.minute.store(minute, std::memory_order_release);
  }
}

bool SessionAggregates::TakeCounts(Bucket& bucket, Minute& out) noexcept {
  const std::int64_t minute = bucket.minute.load(std::memory_order_acquire);
  if (minute < 0) return false;
  out.start_unix_seconds = minute * 60;
  out.exited = bucket.counts[0].exchange(0);
  out.errored = bucket.counts[1].exchange(0);
  out.crashed = bucket.counts[2].exchange(0);
  return out.exited + out.errored + out.crashed != 0;
}

std::vector<SessionAggregates::Minute> SessionAggregates::Take(std::int64_t now_unix_seconds,
                                                               bool all) {
  const std::int64_t current = now_unix_seconds / 60;
  std::lock_guard lock(mu_);
  std::vector<Minute> out = std::move(carried_);
  carried_.clear();
  for (Bucket& bucket : buckets_) {
    if (!all && bucket.minute.load(std::memory_order_acquire) >= current) continue;
    Minute m{};
    if (TakeCounts(bucket, m)) out.push_back(m);
  }
  std::sort(out.begin(), out.end(), [](const Minute& a, const Minute& b) {
    return a.start_unix_seconds < b.start_unix_seconds;
  });
  return out;
}

}  // namespace vigil::telemetry::internal

// Sentry's rate limits, as its receivers announce them (develop.sentry.dev, "Rate
// Limiting"):
//   X-Sentry-Rate-Limits: <retry_after>:<categories>:<scope>:<reason>:..., ...
// on any answer, a 200 included: for retry_after seconds (integer or fraction) nothing of
// the listed data categories (';'-separated; none listed: every category) may be sent.
// The scope, the reason and later parts are ignored, as are categories the reporter does
// not send. A 429 without that header limits every category for its Retry-After, or 60
// seconds when it has none. Client reports are never limited.
//
//   RateLimits limits;
//   limits.Update(429, post.ResponseHeader("X-Sentry-Rate-Limits"), result.retry_after, now);
//   if (limits.IsLimited(Category::kError, now)) Discard(kRateLimitBackoff);
//
// Thread-safety: Update() from one thread at a time; IsLimited() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vigil::telemetry::internal {

// The data categories of what the reporter sends (client reports are "internal" and are
// never limited).
enum class Category : std::uint8_t { kError, kSession, kCount };
std::string_view CategoryName(Category category) noexcept;

struct QuotaLimit {
  std::chrono::milliseconds retry_after{0};
  std::vector<std::string_view> categories;  // views of the header; empty: all
};

// The quota limits of a header value; malformed ones are skipped.
std::vector<QuotaLimit> ParseRateLimits(std::string_view header);

class RateLimits {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kDefaultRetryAfter{60};

  // Applies one answer: its X-Sentry-Rate-Limits when present (whatever the status),
  // else on a 429 its Retry-After (kDefaultRetryAfter when absent) to every category.
  void Update(long status, std::optional<std::string_view> rate_limits_header,
              std::optional<std::chrono::milliseconds> retry_after, Clock::time_point now);

  bool IsLimited(Category category, Clock::time_point now) const noexcept {
    return now.time_since_epoch().count() < until_[Index(category)].load(std::memory_order_relaxed);
  }
  // Until when `category` is limited (a past time when it is not).
  Clock::time_point LimitedUntil(Category category) const noexcept {
    return Clock::time_point(Clock::duration(until_[Index(category)].load()));
  }

 private:
  static constexpr std::size_t Index(Category c) noexcept { return static_cast<std::size_t>(c); }
  std::atomic<Clock::rep> until_[static_cast<std::size_t>(Category::kCount)] = {};
};

}  // namespace vigil::telemetry::internal

#include "errors/rate_limits.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry::internal {
namespace {

std::string_view Trim(std::string_view s) { return text::TrimOws(s); }

// Seconds as Sentry writes them: "60" or "2.5".
std::optional<std::chrono::milliseconds> ParseSeconds(std::string_view s) {
  double seconds = 0;
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, seconds);
  if (ec != std::errc() || ptr != end || !std::isfinite(seconds) || seconds < 0) {
    return std::nullopt;
  }
  // A year at most, as for Retry-After.
  seconds = std::min(seconds, 365.0 * 24 * 3600);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

}  // namespace

std::string_view CategoryName(Category category) noexcept {
  switch (category) {
    case Category::kError:
      return "error";
    case Category::kSession:
      return "session";
    case Category::kCount:
      break;
  }
  return "default";
}

std::vector<QuotaLimit> ParseRateLimits(std::string_view header) {
  std::vector<QuotaLimit> limits;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view item = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t colon = item.find(':');
    auto seconds = ParseSeconds(Trim(item.substr(0, colon)));
    if (!seconds) continue;
    QuotaLimit limit;
    limit.retry_after = *seconds;
    if (colon != std::string_view::npos) {
      std::string_view categories = item.substr(colon + 1);
      categories = categories.substr(0, categories.find(':'));
      while (!categories.empty()) {
        const std::size_t semi = categories.find(';');
        const std::string_view name = Trim(categories.substr(0, semi));
        if (!name.empty()) limit.categories.push_back(name);
        categories =
            semi == std::string_view::npos ? std::string_view() : categories.substr(semi + 1);
      }
    }
    limits.push_back(std::move(limit));
  }
  return limits;
}

void RateLimits::Update(long status, std::optional<std::string_view> rate_limits_header,
                        std::optional<std::chrono::milliseconds> retry_after,
                        Clock::time_point now) {
  constexpr std::size_t kCategories = static_cast<std::size_t>(Category::kCount);
  if (rate_limits_header) {
    // Several limits may name one category: the longest wins.
    Clock::duration longest[kCategories] = {};
    bool named[kCategories] = {};
    for (const QuotaLimit& limit : ParseRateLimits(*rate_limits_header)) {
      for (std::size_t c = 0; c < kCategories; ++c) {
        const std::string_view name = CategoryName(static_cast<Category>(c));
        const bool applies = limit.categories.empty() ||
                             std::find(limit.categories.begin(), limit.categories.end(), name) !=
                                 limit.categories.end();
        if (applies) {
          named[c] = true;
          longest[c] = std::max<Clock::duration>(longest[c], limit.retry_after);
        }
      }
    }
    for (std::size_t c = 0; c < kCategories; ++c) {
      if (named[c]) until_[c].store((now + longest[c]).time_since_epoch().count());
    }
    return;
  }
  if (status == 429) {
    const Clock::duration wait = retry_after.value_or(kDefaultRetryAfter);
    for (auto& until : until_) until.store((now + wait).time_since_epoch().count());
  }
}

}  // namespace vigil::telemetry::internal

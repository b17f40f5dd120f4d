#include <algorithm>
#include <vigil/ratelimit/gcra.hpp>

namespace vigil::ratelimit {

Rate Rate::Of(std::int64_t quota, std::chrono::milliseconds window, std::int64_t burst) noexcept {
  const std::int64_t window_us = std::max<std::int64_t>(window.count(), 1) * 1000;
  Rate rate;
  rate.interval_us = std::max<std::int64_t>(window_us / std::max<std::int64_t>(quota, 1), 1);
  rate.tolerance_us = rate.interval_us * std::max<std::int64_t>(burst, 1);
  return rate;
}

Decision Decide(std::int64_t now_us, std::int64_t stored_tat_us, const Rate& rate,
                std::int64_t cost) noexcept {
  const std::int64_t tat = std::max(stored_tat_us, now_us);
  const std::int64_t next = tat + cost * rate.interval_us;
  Decision d;
  if (next - now_us > rate.tolerance_us) {
    d.allowed = false;
    d.tat_us = stored_tat_us;
    d.remaining =
        std::max<std::int64_t>((rate.tolerance_us - (tat - now_us)) / rate.interval_us, 0);
    d.reset_us = tat - now_us;
    d.retry_after_us = next - rate.tolerance_us - now_us;
    return d;
  }
  d.allowed = true;
  d.tat_us = next;
  d.remaining = (rate.tolerance_us - (next - now_us)) / rate.interval_us;
  d.reset_us = next - now_us;
  return d;
}

std::int64_t CeilSeconds(std::int64_t us) noexcept {
  return us <= 0 ? 0 : (us + 999'999) / 1'000'000;
}

}  // namespace vigil::ratelimit

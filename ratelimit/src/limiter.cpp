#include <cstdio>
#include <functional>
#include <vigil/ratelimit/limiter.hpp>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::ratelimit {

namespace {

// A key part longer than this is replaced by a digest of it (a header value can be
// kilobytes long; the store needs no more than a few dozen bytes to tell keys apart).
constexpr std::size_t kMaxPart = 96;
constexpr char kSeparator = '\x1f';

}  // namespace

Limiter::Limiter(Limits limits, telemetry::Telemetry& telemetry, RedisStore* shared,
                 std::size_t max_keys)
    : decisions_(telemetry.metrics().CounterFamily(
          "vigil_ratelimit_decisions_total",
          "Rate-limit decisions by policy, decision (allowed, limited) and store (memory, "
          "redis, fallback: made in memory because the shared store could not)",
          {"policy", "decision", "store"})),
      shared_(shared),
      memory_(max_keys,
              &telemetry.metrics().AddCounter(
                  "vigil_ratelimit_evictions_total",
                  "Keys the memory store forgot before their quota was whole again, because it "
                  "held its maximum of keys (those clients got a fresh quota)")) {
  all_.push_back(std::make_unique<const Limits>(std::move(limits)));
  current_.store(all_.back().get(), std::memory_order_release);
}

Limiter::~Limiter() = default;

void Limiter::Reload(Limits limits) {
  std::lock_guard lock(reload_mu_);
  all_.push_back(std::make_unique<const Limits>(std::move(limits)));
  current_.store(all_.back().get(), std::memory_order_release);
}

void Limiter::Count(const Policy& policy, bool allowed, std::string_view store) {
  decisions_.WithLabels({policy.name, allowed ? "allowed" : "limited", store}).Inc();
}

Verdict Limiter::DecideLocal(const Policy& policy, std::string_view key) {
  Verdict v;
  v.decision = memory_.Decide(key, policy.rate, policy.cost, NowMicros());
  Count(policy, v.decision.allowed, "memory");
  return v;
}

boost::asio::awaitable<Verdict> Limiter::Decide(std::size_t worker, const Policy& policy,
                                                std::string_view key) {
  if (shared_ == nullptr) co_return DecideLocal(policy, key);
  const SharedDecision shared = co_await shared_->Decide(worker, key, policy.rate, policy.cost);
  Verdict v;
  if (shared.error == StoreError::kNone) {
    v.decision = shared.decision;
    Count(policy, v.decision.allowed, "redis");
    co_return v;
  }
  if (limits().on_store_failure == OnStoreFailure::kClosed) {
    v.unavailable = true;
    co_return v;
  }
  v.decision = memory_.Decide(key, policy.local_rate, policy.cost, NowMicros());
  Count(policy, v.decision.allowed, "fallback");
  co_return v;
}

void AppendKey(const Policy& policy, std::span<const std::string_view> values, std::string& out) {
  out.append(policy.name);
  for (const std::string_view value : values) {
    out.push_back(kSeparator);
    if (value.size() <= kMaxPart) {
      out.append(value);
      continue;
    }
    // A digest: the length and two differently seeded hashes of the value.
    const std::size_t h1 = std::hash<std::string_view>{}(value);
    const std::size_t h2 = std::hash<std::string_view>{}(value.substr(1)) ^ value.size();
    char digest[48];
    const int n = std::snprintf(digest, sizeof digest, "#%zx.%zx", h1, h2);
    out.append(digest, static_cast<std::size_t>(n));
  }
}

}  // namespace vigil::ratelimit

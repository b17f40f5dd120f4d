// Decisions for policies: in this process, or through a shared store with a fallback.
//
//   ratelimit::Limiter limiter(limits, telemetry, redis.get());  // redis may be null
//   const ratelimit::Limits& now = limiter.limits();
//   for (const ratelimit::Policy& p : now.policies) if (p.Applies(method, path)) ...
//   ratelimit::Verdict v = co_await limiter.Decide(worker, policy, key);
//
// With a shared store, a decision the store cannot make (down, timed out) is made by the
// memory store with the policy's local rate (fail open), or refused as unavailable (fail
// closed), as the limits say. Every decision counts in
// vigil_ratelimit_decisions_total{policy,decision="allowed"|"limited",store}; the store is
// "memory" for a local decision, "redis" for a shared one, "fallback" for a local one the
// shared store could not make.
//
// Reload() swaps in new limits: requests already deciding keep the limits they started
// with (replaced limits are kept for the life of the limiter, a few kilobytes each); a
// policy's counters live under its name, so a policy kept by a reload keeps them.
//
// Thread-safety: every method may be called from any thread; Decide(worker, ...) on the
// shared store's executor `worker`.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/ratelimit/limits.hpp>
#include <vigil/ratelimit/memory_store.hpp>

namespace vigil::telemetry {
class Telemetry;
class Counter;
template <class M>
class Family;
}  // namespace vigil::telemetry

namespace vigil::ratelimit {

class RedisStore;

struct Verdict {
  Decision decision;
  // Fail closed and the shared store could not decide: answer 503.
  bool unavailable = false;
};

class Limiter {
 public:
  // `shared`: the Redis store, or null (decisions in memory only). `max_keys` bounds the
  // memory store. Both must outlive the limiter.
  Limiter(Limits limits, telemetry::Telemetry& telemetry, RedisStore* shared = nullptr,
          std::size_t max_keys = 1'000'000);
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  // The current limits; the reference stays valid for the life of the limiter.
  const Limits& limits() const noexcept { return *current_.load(std::memory_order_acquire); }
  void Reload(Limits limits);

  // True when decisions go through a shared store (and so may wait).
  bool shared() const noexcept { return shared_ != nullptr; }

  // A decision in this process (no shared store, or a program that wants one).
  Verdict DecideLocal(const Policy& policy, std::string_view key);
  // A decision through the shared store when there is one, else in this process.
  boost::asio::awaitable<Verdict> Decide(std::size_t worker, const Policy& policy,
                                         std::string_view key);

  const MemoryStore& memory() const noexcept { return memory_; }

 private:
  void Count(const Policy& policy, bool allowed, std::string_view store);

  telemetry::Family<telemetry::Counter>& decisions_;
  RedisStore* shared_;
  MemoryStore memory_;
  std::atomic<const Limits*> current_;
  std::mutex reload_mu_;
  std::vector<std::unique_ptr<const Limits>> all_;  // every version, for requests in flight
};

// The store key of `policy` for one request: its name and the key parts' values
// (`values`, in the policy's key order), each part bounded in length (a longer value is
// replaced by a digest of it). Appends to `out`.
void AppendKey(const Policy& policy, std::span<const std::string_view> values, std::string& out);

}  // namespace vigil::ratelimit

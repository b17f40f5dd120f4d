#include <array>
#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vigil/http/exchange.hpp>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/rate_limit.hpp>
#include <vigil/service/service.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::service {

namespace rl = vigil::ratelimit;

namespace {

constexpr std::string_view kClientSubject = "client:";
constexpr std::string_view kUserSubject = "user:";

// What the keys of one request are made of, each found once and only when a policy
// needs it (verifying a signed header costs an HMAC).
class Facts {
 public:
  Facts(const http::Exchange& ex, const rl::Limits& limits, const IdentitySigner* identity)
      : ex_(ex), limits_(limits), identity_(identity) {}

  // Empty when the request carries a signed address that does not verify.
  std::string_view Client() {
    if (!client_) client_ = ClientAddress(ex_, limits_, identity_).value_or(std::string());
    return *client_;
  }

  std::optional<std::string_view> User() {
    if (!user_checked_) {
      user_checked_ = true;
      const std::string_view header = ex_.header(kIdentityHeader);
      if (identity_ != nullptr && !header.empty()) {
        std::optional<std::string> subject = identity_->Verify(header);
        if (subject && subject->starts_with(kUserSubject))
          user_ = subject->substr(kUserSubject.size());
      }
    }
    if (!user_) return std::nullopt;
    return std::string_view(*user_);
  }

  // Appends the key of `policy` to `key`; false when the request lacks one of its parts.
  bool Key(const rl::Policy& policy, std::string& key) {
    std::array<std::string_view, rl::kMaxKeyParts> values;
    std::size_t n = 0;
    for (const rl::KeyComponent& c : policy.key) {
      std::string_view value;
      switch (c.part) {
        case rl::KeyPart::kClientAddress:
          value = Client();
          break;
        case rl::KeyPart::kUser: {
          const auto user = User();
          if (!user) return false;
          value = *user;
          break;
        }
        case rl::KeyPart::kRoute:
          value = ex_.route().empty() ? std::string_view("unmatched") : ex_.route();
          break;
        case rl::KeyPart::kHeader:
          value = ex_.header(c.header);
          break;
      }
      if (value.empty()) return false;
      values[n++] = value;
    }
    rl::AppendKey(policy, std::span(values.data(), n), key);
    return true;
  }

 private:
  const http::Exchange& ex_;
  const rl::Limits& limits_;
  const IdentitySigner* identity_;
  std::optional<std::string> client_;
  std::optional<std::string> user_;
  bool user_checked_ = false;
};

// The verdicts of every policy that applied to one request, and the answer they make.
class Tally {
 public:
  void Add(const rl::Policy& policy, const rl::Verdict& verdict) {
    if (!items_.empty()) items_.append(", ");
    items_.append(policy.policy_item);
    if (verdict.unavailable) {
      unavailable_ = true;
      return;
    }
    if (!verdict.decision.allowed) {
      if (refused_ == nullptr) {
        refused_ = &policy;
        refused_decision_ = verdict.decision;
      }
      return;
    }
    // Closest to its limit: the smallest share of its burst left.
    const double left = static_cast<double>(verdict.decision.remaining) /
                        static_cast<double>(std::max<std::int64_t>(policy.burst, 1));
    if (tightest_ == nullptr || left < tightest_left_) {
      tightest_ = &policy;
      tightest_decision_ = verdict.decision;
      tightest_left_ = left;
    }
  }

  // True once a policy refused: the request's other policies are not asked (nor charged).
  bool refused() const noexcept { return refused_ != nullptr || unavailable_; }

  // Answers the exchange when refused; true when the request may go on.
  bool Apply(http::Exchange& ex) const {
    if (items_.empty()) return true;
    auto& response = ex.response();
    if (unavailable_) {
      response.set("Retry-After", "1");
      ex.set_error_type("ratelimit_store_unavailable");
      ex.RespondProblem(503, "Rate limits cannot be checked now: the shared store is unreachable.");
      return false;
    }
    if (refused_ != nullptr) {
      const std::int64_t retry =
          std::max<std::int64_t>(rl::CeilSeconds(refused_decision_.retry_after_us), 1);
      response.set("RateLimit-Policy", refused_->policy_item);
      response.set("RateLimit", Item(*refused_, refused_decision_.remaining, retry));
      response.set("Retry-After", std::to_string(retry));
      ex.set_limited_by(refused_->name);
      ex.span().SetAttribute("vigil.ratelimit.policy", refused_->name);
      ex.span().SetAttribute("vigil.ratelimit.decision", "limited");
      ex.RespondProblem(429,
                        "Quota of policy \"" + refused_->name + "\" exceeded: retry in " +
                            std::to_string(retry) + " s.",
                        kQuotaExceeded);
      return false;
    }
    // A handler's own decision (Admit) adds its policy to those the middleware listed.
    const auto listed = response.find("RateLimit-Policy");
    if (listed != response.end() && !listed->value().empty()) {
      const std::string all = std::string(listed->value()) + ", " + items_;
      response.set("RateLimit-Policy", all);
    } else {
      response.set("RateLimit-Policy", items_);
    }
    response.set("RateLimit", Item(*tightest_, tightest_decision_.remaining,
                                   rl::CeilSeconds(tightest_decision_.reset_us)));
    ex.span().SetAttribute("vigil.ratelimit.policy", tightest_->name);
    ex.span().SetAttribute("vigil.ratelimit.decision", "allowed");
    return true;
  }

 private:
  static std::string Item(const rl::Policy& policy, std::int64_t remaining, std::int64_t reset) {
    return "\"" + policy.name + "\";r=" + std::to_string(remaining) + ";t=" + std::to_string(reset);
  }

  std::string items_;
  bool unavailable_ = false;
  const rl::Policy* refused_ = nullptr;
  rl::Decision refused_decision_;
  const rl::Policy* tightest_ = nullptr;
  rl::Decision tightest_decision_;
  double tightest_left_ = 0;
};

// The key buffer of this thread: keys are built and used within one decision.
std::string& KeyBuffer() {
  thread_local std::string key;
  key.clear();
  return key;
}

}  // namespace

std::optional<std::string> ClientAddress(const http::Exchange& ex, const rl::Limits& limits,
                                         const IdentitySigner* identity) {
  if (identity != nullptr) {
    if (const std::string_view signed_client = ex.header(kClientHeader); !signed_client.empty()) {
      std::optional<std::string> subject = identity->Verify(signed_client);
      if (subject && subject->starts_with(kClientSubject))
        return subject->substr(kClientSubject.size());
      // Sent by a gateway whose signature does not verify here (another secret, a clock
      // far off): the peer would be the gateway, one key for every client behind it.
      return std::nullopt;
    }
  }
  std::string joined;
  return std::string(rl::ClientAddress(limits, ex.peer().address(), ex.peer_address(),
                                       ex.header_list("x-forwarded-for", joined)));
}

void RateLimitMiddleware::Before(http::Exchange& ex) {
  if (ex.responded()) return;
  const rl::Limits& limits = limiter_.limits();
  Facts facts(ex, limits, identity_);
  Tally tally;
  for (const rl::Policy& policy : limits.policies) {
    if (!policy.Applies(ex.method(), ex.path())) continue;
    std::string& key = KeyBuffer();
    if (!facts.Key(policy, key)) continue;
    tally.Add(policy, limiter_.DecideLocal(policy, key));
    if (tally.refused()) break;
  }
  tally.Apply(ex);
}

boost::asio::awaitable<void> RateLimitMiddleware::BeforeAsync(http::Exchange& ex) {
  if (ex.responded()) co_return;
  const rl::Limits& limits = limiter_.limits();
  Facts facts(ex, limits, identity_);
  Tally tally;
  for (const rl::Policy& policy : limits.policies) {
    if (!policy.Applies(ex.method(), ex.path())) continue;
    std::string key;
    if (!facts.Key(policy, key)) continue;
    tally.Add(policy, co_await limiter_.Decide(ex.worker(), policy, key));
    if (tally.refused()) break;
  }
  tally.Apply(ex);
}

boost::asio::awaitable<bool> Admit(http::Exchange& ex, rl::Limiter& limiter,
                                   std::string_view policy_name,
                                   std::span<const std::string_view> values) {
  const rl::Policy* policy = limiter.limits().Find(policy_name);
  if (policy == nullptr) co_return true;
  std::string key;
  rl::AppendKey(*policy, values, key);
  Tally tally;
  tally.Add(*policy, co_await limiter.Decide(ex.worker(), *policy, key));
  co_return tally.Apply(ex);
}

rl::Limits LimitsFromEnv(std::string_view defaults) {
  const std::string path = telemetry::env::String("VIGIL_RATELIMIT_CONFIG", "");
  try {
    if (path.empty()) return rl::ParseLimits(defaults, "embedded rate limits");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw rl::LimitsError(path + ": cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    return rl::ParseLimits(text.str(), path);
  } catch (const rl::LimitsError& e) {
    throw telemetry::ConfigError("VIGIL_RATELIMIT_CONFIG", e.what());
  }
}

rl::Limiter& AddRateLimits(ServiceHost& host, rl::Limits limits) {
  rl::RedisStore* shared = nullptr;
  if (std::optional<rl::RedisOptions> redis = rl::RedisOptions::FromEnv()) {
    std::vector<boost::asio::any_io_executor> executors;
    for (std::size_t i = 0; i < host.runtime().size(); ++i) {
      executors.push_back(host.runtime().context(i).get_executor());
    }
    shared = &host.Make<rl::RedisStore>(std::move(executors), std::move(*redis), host.telemetry());
    if (!host.listing_routes()) shared->Start();
  }
  return host.Make<rl::Limiter>(std::move(limits), host.telemetry(), shared);
}

rl::Limiter& AddRateLimits(ServiceHost& host, std::string_view defaults) {
  rl::Limiter& limiter = AddRateLimits(host, LimitsFromEnv(defaults));
  host.OnReload([&host, &limiter, defaults] {
    try {
      limiter.Reload(LimitsFromEnv(defaults));
      host.telemetry().log().Info("rate limits reloaded",
                                  {{"policies", limiter.limits().policies.size()}});
    } catch (const std::exception& e) {
      host.telemetry().log().Warn("rate limits not reloaded: keeping the running ones",
                                  {{"error", e.what()}});
    }
  });
  return limiter;
}

}  // namespace vigil::service

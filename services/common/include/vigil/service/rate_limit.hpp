// Rate limits on a program's requests: the policies of libvigil_ratelimit applied by one
// middleware, in memory or shared through Redis.
//
//   ratelimit::Limiter& limiter = service::AddRateLimits(host, kDefaultLimits);
//   pipeline.Add<service::RateLimitMiddleware>(limiter, &host.identity());
//
// For each policy that applies to a request (by path prefix and method) the middleware
// builds the key (client address, user, route, header), asks the limiter, and:
//   - allowed by all: the answer carries `RateLimit-Policy` (every policy that applied)
//     and `RateLimit` (the one closest to its limit): draft-ietf-httpapi-ratelimit-headers;
//   - refused by one: 429 problem+json (type kQuotaExceeded) with `Retry-After`, the
//     fields of the refusing policy, the policy on the span and the access-log line;
//   - the shared store down with "on_store_failure": "closed": 503 problem+json.
// The client address is the gateway's signed X-Vigil-Client when `identity` verifies it
// (a service behind the gateway; one that does not verify leaves the address unknown),
// else the socket peer or, from a trusted proxy, its X-Forwarded-For. The user is the subject of a
// valid X-Vigil-Identity.
//
// Thread-safety: as every middleware (per-request state lives in the exchange).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vigil/http/middleware.hpp>
#include <vigil/ratelimit/limiter.hpp>

namespace vigil::service {

class IdentitySigner;
class ServiceHost;

// The problem type of a 429.
inline constexpr std::string_view kQuotaExceeded = "urn:vigil:problem:quota-exceeded";

class RateLimitMiddleware final : public http::Middleware {
 public:
  // `identity`: verifies X-Vigil-Client and X-Vigil-Identity; null where no signed header
  // may be believed (the gateway, which makes them).
  RateLimitMiddleware(ratelimit::Limiter& limiter, const IdentitySigner* identity) noexcept
      : limiter_(limiter), identity_(identity) {}

  bool waits() const noexcept override { return limiter_.shared(); }
  void Before(http::Exchange& exchange) override;
  boost::asio::awaitable<void> BeforeAsync(http::Exchange& exchange) override;
  void After(http::Exchange&) noexcept override {}

 private:
  ratelimit::Limiter& limiter_;
  const IdentitySigner* identity_;
};

// For a decision a handler makes itself, on a policy without "match" (auth's logins per
// account): decides `policy` for the key `values` (one per key part, in order). Allowed:
// sets the RateLimit fields and returns true. Refused: answers as the middleware does
// (429 or 503) and returns false; the handler then returns. A policy not in the limits
// (removed by a reload) allows everything.
boost::asio::awaitable<bool> Admit(http::Exchange& exchange, ratelimit::Limiter& limiter,
                                   std::string_view policy,
                                   std::span<const std::string_view> values);

// The client address the middleware keys on (see above); none when the request carries an
// X-Vigil-Client that does not verify (a policy keyed on the address then does not count
// it, rather than count every client behind that gateway as one).
std::optional<std::string> ClientAddress(const http::Exchange& exchange,
                                         const ratelimit::Limits& limits,
                                         const IdentitySigner* identity);

// A program's limits: the file VIGIL_RATELIMIT_CONFIG (holding what the gateway's file
// has under "rate_limits"), or `defaults` (the same, as JSON text) when it is unset. Throws
// telemetry::ConfigError naming the variable when the file is unusable.
ratelimit::Limits LimitsFromEnv(std::string_view defaults);

// The program's limiter, owned by the host: decisions in memory, or shared through Redis
// when VIGIL_REDIS_URL is set (one connection per worker, started unless the program is
// only listing its routes).
ratelimit::Limiter& AddRateLimits(ServiceHost& host, ratelimit::Limits limits);
// The same with LimitsFromEnv(defaults), read again on SIGHUP (a file that cannot be used
// is logged and the running limits stay).
ratelimit::Limiter& AddRateLimits(ServiceHost& host, std::string_view defaults);

}  // namespace vigil::service

// What is limited: named policies, where they apply, and whom the client address may come
// from. Read from the "rate_limits" object of a configuration file (the gateway's, or a
// service's VIGIL_RATELIMIT_CONFIG):
//
//   {"policies": [
//      {"name": "login-per-address", "key": ["client_address"], "quota": 10, "window_s": 60,
//       "burst": 10, "cost": 1, "match": [{"prefix": "/api/auth/login", "methods": ["POST"]}]},
//      {"name": "api-per-address", "key": ["client_address"], "quota": 600, "window_s": 60,
//       "match": [{"prefix": "/api"}]}],
//    "trusted_proxies": ["10.0.0.0/8"],
//    "on_store_failure": "open",
//    "replicas": 1}
//
// A policy allows `quota` requests per `window_s` seconds per key, up to `burst` (default:
// the quota) at once; a request costs `cost` (default 1) units. Its key is made of
// "client_address", "user" (the authenticated user id), "route", and "header:<Name>"
// parts; a request lacking a part (no user, no such header) is not counted by that policy.
// "match" attaches it to requests by path prefix (whole segments) and methods (none: any);
// a policy without "match" applies only where a program calls it by name. Every policy
// that applies must allow a request.
//
// "trusted_proxies": networks whose X-Forwarded-For is believed (the right-most address
// not in them is the client); from any other peer the socket address is the client.
// "on_store_failure": "open" (default: while the shared store is unreachable each replica
// limits on its own, with each quota and burst divided by "replicas", keeping room for one
// request of the policy's cost) or "closed" (503).
//
// Thread-safety: values built at start-up or on reload, then read-only.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/ratelimit/gcra.hpp>

namespace vigil::ratelimit {

enum class KeyPart : std::uint8_t { kClientAddress, kUser, kRoute, kHeader };
inline constexpr std::size_t kMaxKeyParts = 4;

struct KeyComponent {
  KeyPart part = KeyPart::kClientAddress;
  std::string header;  // for kHeader: the field name
};

struct Match {
  std::string prefix;                // "/api/auth/login": it and what lies below it
  std::vector<std::string> methods;  // upper case; empty: any method; GET covers HEAD
  bool Matches(std::string_view method, std::string_view path) const noexcept;
};

struct Policy {
  std::string name;
  std::vector<KeyComponent> key;
  std::int64_t quota = 0;
  std::chrono::seconds window{0};
  std::int64_t burst = 0;
  std::int64_t cost = 1;
  std::vector<Match> match;
  // Derived: the rate, the rate of a replica limiting alone (quota / replicas; a burst of
  // burst / replicas, never below the cost), and the RateLimit-Policy item
  // ("name";q=burst;w=seconds the burst takes to come back: the quota and the window when
  // the burst is the quota).
  Rate rate;
  Rate local_rate;
  std::string policy_item;
  bool Applies(std::string_view method, std::string_view path) const noexcept;
};

// A network of trusted proxies ("10.0.0.0/8", "::1/128", or one address).
struct Network {
  boost::asio::ip::address_v6 base;  // IPv4 as v4-mapped
  unsigned prefix = 128;
  bool Contains(const boost::asio::ip::address& address) const noexcept;
};

enum class OnStoreFailure : std::uint8_t { kOpen, kClosed };

struct Limits {
  std::vector<Policy> policies;
  std::vector<Network> trusted_proxies;
  OnStoreFailure on_store_failure = OnStoreFailure::kOpen;
  std::int64_t replicas = 1;

  // The policy named `name`, or null.
  const Policy* Find(std::string_view name) const noexcept;
  bool Trusted(const boost::asio::ip::address& peer) const noexcept;
};

// A "rate_limits" object that cannot be used; what() names the source and the entry.
class LimitsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses and validates a "rate_limits" object (`source` names it in errors: "gateway.json:
// rate_limits.policies[1]: ...").
Limits ParseLimits(const boost::json::value& value, std::string_view source);
Limits ParseLimits(std::string_view json, std::string_view source);

// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
// address of `forwarded_for` (X-Forwarded-For, all its lines joined) that is not trusted.
// An unparsable entry ends the search at the last address believed.
std::string_view ClientAddress(const Limits& limits, const boost::asio::ip::address& peer,
                               std::string_view peer_text, std::string_view forwarded_for);

}  // namespace vigil::ratelimit

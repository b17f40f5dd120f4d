// Fuzzes the rate limits' configuration (limits.hpp). The first line of the input is a
// "rate_limits" object for ParseLimits; each further line is a request, "METHOD PATH".
//
// ParseLimits either refuses the object with a LimitsError naming its source, or returns
// limits that hold what the header promises: unique policy names that Find() returns;
// prefixes starting with '/'; methods in upper case; a quota, window and burst of at least
// 1 and a cost from 0 to the burst; a full bucket that allows one request of the policy's
// cost, at the shared rate and at the rate of a replica limiting alone (the store down);
// networks that contain their own address. Match::Matches and Policy::Applies agree with
// their definition (whole segments below the prefix; GET covers HEAD) for every request
// line, and ClientAddress names the peer or an address taken from X-Forwarded-For.
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/ratelimit/gcra.hpp>
#include <vigil/ratelimit/limits.hpp>

namespace rl = vigil::ratelimit;
namespace ip = boost::asio::ip;

namespace {

constexpr std::string_view kSource = "fuzz.json";

// What Match::Matches is defined to do.
bool Expected(const rl::Match& m, std::string_view method, std::string_view path) {
  const auto listed = [&m](std::string_view x) {
    return std::find(m.methods.begin(), m.methods.end(), x) != m.methods.end();
  };
  const bool method_ok = m.methods.empty() || listed(method) || (method == "HEAD" && listed("GET"));
  const bool path_ok = m.prefix == "/" || path == m.prefix ||
                       (path.starts_with(m.prefix) && path[m.prefix.size()] == '/');
  return method_ok && path_ok;
}

void CheckPolicy(const rl::Limits& limits, const rl::Policy& p) {
  if (limits.Find(p.name) != &p) __builtin_trap();
  if (p.key.empty() || p.key.size() > rl::kMaxKeyParts) __builtin_trap();
  if (p.quota < 1 || p.window.count() < 1 || p.burst < 1 || p.cost < 0 || p.cost > p.burst) {
    __builtin_trap();
  }
  for (const rl::Rate& rate : {p.rate, p.local_rate}) {
    if (rate.interval_us < 1 || rate.tolerance_us < rate.interval_us) __builtin_trap();
    // A full bucket (no stored time) allows a request of the policy's cost: otherwise the
    // policy, or every replica limiting alone while the store is down, refuses them all.
    constexpr std::int64_t kNow = 1'700'000'000'000'000;
    if (!rl::Decide(kNow, 0, rate, p.cost).allowed) __builtin_trap();
  }
  if (!p.policy_item.starts_with("\"" + p.name + "\";q=")) __builtin_trap();
  for (const rl::Match& m : p.match) {
    if (m.prefix.empty() || m.prefix.front() != '/' ||
        (m.prefix.size() > 1 && m.prefix.back() == '/')) {
      __builtin_trap();
    }
    for (const std::string& method : m.methods) {
      if (method.empty() ||
          std::any_of(method.begin(), method.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        __builtin_trap();
      }
    }
  }
}

void CheckRequest(const rl::Limits& limits, std::string_view line) {
  const std::size_t space = line.find(' ');
  const std::string_view method = line.substr(0, space);
  const std::string_view path = space == std::string_view::npos ? "/" : line.substr(space + 1);
  for (const rl::Policy& p : limits.policies) {
    bool any = false;
    for (const rl::Match& m : p.match) {
      const bool matches = m.Matches(method, path);
      if (matches != Expected(m, method, path)) __builtin_trap();
      any = any || matches;
    }
    if (p.Applies(method, path) != any) __builtin_trap();
  }
  // The rest of the line as X-Forwarded-For, from a peer that may be trusted.
  for (const char* peer_text : {"10.1.2.3", "::1", "192.0.2.7"}) {
    const ip::address peer = ip::make_address(peer_text);
    const std::string_view client = rl::ClientAddress(limits, peer, peer_text, path);
    if (client == peer_text) continue;
    boost::system::error_code ec;
    if (!limits.Trusted(peer) || client.data() < path.data() ||
        client.data() + client.size() > path.data() + path.size()) {
      __builtin_trap();
    }
    (void)ip::make_address(client, ec);
    if (ec) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t eol = input.find('\n');
  rl::Limits limits;
  try {
    limits = rl::ParseLimits(input.substr(0, eol), kSource);
  } catch (const rl::LimitsError& e) {
    if (!std::string_view(e.what()).starts_with(std::string(kSource) + ": ")) __builtin_trap();
    return 0;
  }
  if (limits.replicas < 1) __builtin_trap();
  for (const rl::Policy& p : limits.policies) CheckPolicy(limits, p);
  for (const rl::Network& n : limits.trusted_proxies) {
    if (n.prefix > 128 || !n.Contains(ip::address(n.base))) __builtin_trap();
    if (n.base.is_v4_mapped() && n.prefix >= 96 &&
        !n.Contains(ip::address(ip::make_address_v4(ip::v4_mapped, n.base)))) {
      __builtin_trap();
    }
  }
  std::string_view rest =
      eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
  while (!rest.empty()) {
    const std::size_t next = rest.find('\n');
    CheckRequest(limits, rest.substr(0, next));
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
  }
  return 0;
}

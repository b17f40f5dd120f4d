#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <set>
#include <vigil/ratelimit/limits.hpp>

namespace vigil::ratelimit {

namespace json = boost::json;
namespace ip = boost::asio::ip;

namespace {

[[noreturn]] void Fail(std::string_view source, const std::string& where, const std::string& what) {
  throw LimitsError(std::string(source) + ": " + where + ": " + what);
}

void OnlyKeys(const json::object& o, std::initializer_list<std::string_view> known,
              std::string_view source, const std::string& where) {
  for (const auto& kv : o) {
    if (std::find(known.begin(), known.end(), std::string_view(kv.key())) == known.end()) {
      Fail(source, where, "unknown key \"" + std::string(kv.key()) + "\"");
    }
  }
}

std::int64_t Whole(const json::object& o, std::string_view key, std::int64_t fallback,
                   std::int64_t min, std::int64_t max, std::string_view source,
                   const std::string& where) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  const bool whole = v->is_int64() || (v->is_uint64() && v->as_uint64() <= 1ULL << 62);
  const std::int64_t n = !whole          ? 0
                         : v->is_int64() ? v->as_int64()
                                         : static_cast<std::int64_t>(v->as_uint64());
  if (!whole || n < min || n > max) {
    Fail(source, where,
         "\"" + std::string(key) + "\" must be a whole number from " + std::to_string(min) +
             " to " + std::to_string(max));
  }
  return n;
}

const json::array& Array(const json::object& o, std::string_view key, std::string_view source,
                         const std::string& where) {
  static const json::array kEmpty;
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return kEmpty;
  if (!v->is_array()) Fail(source, where, "\"" + std::string(key) + "\" must be an array");
  return v->as_array();
}

std::string_view Text(const json::value& v, std::string_view source, const std::string& where,
                      std::string_view what) {
  if (!v.is_string()) Fail(source, where, std::string(what) + " must be a string");
  return v.as_string();
}

bool Token(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

Network ParseNetwork(std::string_view text, std::string_view source, const std::string& where) {
  const std::size_t slash = text.find('/');
  boost::system::error_code ec;
  const ip::address address = ip::make_address(text.substr(0, slash), ec);
  if (ec) Fail(source, where, "\"" + std::string(text) + "\" is not an address or network");
  Network n;
  const unsigned bits = address.is_v4() ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit) ||
        std::stoul(std::string(p)) > bits) {
      Fail(source, where, "\"" + std::string(text) + "\" has a bad prefix length");
    }
    prefix = static_cast<unsigned>(std::stoul(std::string(p)));
  }
  n.base = address.is_v4() ? ip::make_address_v6(ip::v4_mapped, address.to_v4()) : address.to_v6();
  n.prefix = address.is_v4() ? prefix + 96 : prefix;
  return n;
}

Policy ParsePolicy(const json::value& entry, std::int64_t replicas, std::string_view source,
                   const std::string& where) {
  if (!entry.is_object()) Fail(source, where, "expected an object");
  const json::object& o = entry.as_object();
  OnlyKeys(o, {"name", "key", "quota", "window_s", "burst", "cost", "match"}, source, where);
  Policy p;
  const json::value* name = o.if_contains("name");
  if (name == nullptr) Fail(source, where, "\"name\" is missing");
  p.name = std::string(Text(*name, source, where, "\"name\""));
  if (!Token(p.name)) {
    Fail(source, where, "\"name\" must be 1 to 64 letters, digits, '-', '_' or '.'");
  }
  const json::array& key = Array(o, "key", source, where);
  if (key.empty() || key.size() > kMaxKeyParts) {
    Fail(source, where, "\"key\" must name 1 to " + std::to_string(kMaxKeyParts) + " parts");
  }
  for (const json::value& part : key) {
    const std::string_view k = Text(part, source, where, "each \"key\" part");
    KeyComponent c;
    if (k == "client_address") {
      c.part = KeyPart::kClientAddress;
    } else if (k == "user") {
      c.part = KeyPart::kUser;
    } else if (k == "route") {
      c.part = KeyPart::kRoute;
    } else if (k.starts_with("header:") && Token(k.substr(7))) {
      c.part = KeyPart::kHeader;
      c.header = std::string(k.substr(7));
    } else {
      Fail(source, where,
           "key part \"" + std::string(k) +
               "\" is not one of client_address, user, route, header:<Name>");
    }
    p.key.push_back(std::move(c));
  }
  p.quota = Whole(o, "quota", 0, 1, 1'000'000'000, source, where);
  p.window = std::chrono::seconds(Whole(o, "window_s", 0, 1, 86'400 * 30, source, where));
  p.burst = Whole(o, "burst", p.quota, 1, 1'000'000'000, source, where);
  p.cost = Whole(o, "cost", 1, 0, p.burst, source, where);
  for (const json::value& m : Array(o, "match", source, where)) {
    const std::string at = where + ".match";
    if (!m.is_object()) Fail(source, at, "expected an object with \"prefix\"");
    OnlyKeys(m.as_object(), {"prefix", "methods"}, source, at);
    Match match;
    const json::value* prefix = m.as_object().if_contains("prefix");
    if (prefix == nullptr) Fail(source, at, "\"prefix\" is missing");
    match.prefix = std::string(Text(*prefix, source, at, "\"prefix\""));
    if (match.prefix.empty() || match.prefix.front() != '/') {
      Fail(source, at, "\"prefix\" must start with '/'");
    }
    while (match.prefix.size() > 1 && match.prefix.back() == '/') match.prefix.pop_back();
    for (const json::value& method : Array(m.as_object(), "methods", source, at)) {
      std::string upper(Text(method, source, at, "each method"));
      if (!Token(upper)) Fail(source, at, "\"" + upper + "\" is not a method");
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      match.methods.push_back(std::move(upper));
    }
    p.match.push_back(std::move(match));
  }
  if (o.if_contains("quota") == nullptr || o.if_contains("window_s") == nullptr) {
    Fail(source, where, "\"quota\" and \"window_s\" are required");
  }
  // The arithmetic is in integer microseconds, exact in the 53 bits a Lua number has:
  // a policy needs at least a microsecond per request, and a burst that comes back
  // within ten years.
  constexpr std::int64_t kMaxToleranceUs = 10LL * 366 * 86'400 * 1'000'000;
  const std::int64_t window_us = p.window.count() * 1'000'000;
  if (window_us / p.quota < 1) {
    Fail(source, where, "\"quota\" may not exceed one request per microsecond of \"window_s\"");
  }
  if (window_us / p.quota > kMaxToleranceUs / p.burst) {
    Fail(source, where,
         "\"burst\" times the time one request takes (window_s / quota) must stay under ten "
         "years");
  }
  p.rate = Rate::Of(p.quota, p.window, p.burst);
  // A replica limiting alone keeps room for one request of the policy's cost: a burst
  // divided below it would refuse every such request while the store is down.
  const std::int64_t local_quota = std::max<std::int64_t>(p.quota / replicas, 1);
  const std::int64_t local_burst = std::max({p.burst / replicas, p.cost, std::int64_t{1}});
  p.local_rate = Rate::Of(local_quota, p.window, local_burst);
  // What the bucket really is: `burst` requests, whole again after burst * window / quota
  // (the quota and window themselves when the burst is the quota, the default).
  p.policy_item = "\"" + p.name + "\";q=" + std::to_string(p.burst) +
                  ";w=" + std::to_string(CeilSeconds(p.rate.tolerance_us));
  return p;
}

}  // namespace

bool Match::Matches(std::string_view method, std::string_view path) const noexcept {
  const auto listed = [this](std::string_view m) {
    return std::find(methods.begin(), methods.end(), m) != methods.end();
  };
  // HEAD is served wherever GET is: a limit on GET holds for HEAD too.
  if (!methods.empty() && !listed(method) && !(method == "HEAD" && listed("GET"))) return false;
  if (prefix == "/") return true;
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

bool Policy::Applies(std::string_view method, std::string_view path) const noexcept {
  return std::any_of(match.begin(), match.end(),
                     [&](const Match& m) { return m.Matches(method, path); });
}

bool Network::Contains(const ip::address& address) const noexcept {
  const ip::address_v6 a =
      address.is_v4() ? ip::make_address_v6(ip::v4_mapped, address.to_v4()) : address.to_v6();
  const auto x = a.to_bytes();
  const auto y = base.to_bytes();
  unsigned bits = prefix;
  for (std::size_t i = 0; i < x.size() && bits > 0; ++i) {
    const unsigned take = std::min(bits, 8U);
    const auto mask = static_cast<unsigned char>(0xFF << (8 - take));
    if ((x[i] & mask) != (y[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

const Policy* Limits::Find(std::string_view name) const noexcept {
  for (const Policy& p : policies) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool Limits::Trusted(const ip::address& peer) const noexcept {
  return std::any_of(trusted_proxies.begin(), trusted_proxies.end(),
                     [&](const Network& n) { return n.Contains(peer); });
}

Limits ParseLimits(const json::value& value, std::string_view source) {
  const std::string where = "rate_limits";
  if (!value.is_object()) Fail(source, where, "expected an object with \"policies\"");
  const json::object& o = value.as_object();
  OnlyKeys(o, {"policies", "trusted_proxies", "on_store_failure", "replicas"}, source, where);
  Limits limits;
  limits.replicas = Whole(o, "replicas", 1, 1, 10'000, source, where);
  if (const json::value* mode = o.if_contains("on_store_failure")) {
    const std::string_view m = Text(*mode, source, where, "\"on_store_failure\"");
    if (m != "open" && m != "closed") {
      Fail(source, where, "\"on_store_failure\" must be \"open\" or \"closed\"");
    }
    limits.on_store_failure = m == "open" ? OnStoreFailure::kOpen : OnStoreFailure::kClosed;
  }
  std::size_t i = 0;
  for (const json::value& n : Array(o, "trusted_proxies", source, where)) {
    const std::string at = where + ".trusted_proxies[" + std::to_string(i++) + "]";
    limits.trusted_proxies.push_back(ParseNetwork(Text(n, source, at, "a network"), source, at));
  }
  std::set<std::string, std::less<>> names;
  i = 0;
  for (const json::value& p : Array(o, "policies", source, where)) {
    const std::string at = where + ".policies[" + std::to_string(i++) + "]";
    Policy policy = ParsePolicy(p, limits.replicas, source, at);
    if (!names.insert(policy.name).second) {
      Fail(source, at, "policy \"" + policy.name + "\" is defined twice");
    }
    limits.policies.push_back(std::move(policy));
  }
  return limits;
}

Limits ParseLimits(std::string_view text, std::string_view source) {
  json::error_code ec;
  const json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) throw LimitsError(std::string(source) + ": not valid JSON (" + ec.message() + ")");
  return ParseLimits(value, source);
}

std::string_view ClientAddress(const Limits& limits, const ip::address& peer,
                               std::string_view peer_text, std::string_view forwarded_for) {
  if (forwarded_for.empty() || !limits.Trusted(peer)) return peer_text;
  std::string_view client = peer_text;
  // Right to left: each hop that a trusted proxy added is believed, until an address
  // that is not a trusted proxy (the client) or one that does not parse.
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    const std::size_t comma = rest.rfind(',');
    std::string_view item = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    boost::system::error_code ec;
    const ip::address address = ip::make_address(item, ec);
    if (ec) return client;
    client = item;
    if (!limits.Trusted(address)) return client;
  }
  return client;
}

}  // namespace vigil::ratelimit

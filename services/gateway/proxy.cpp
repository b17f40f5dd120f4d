#include "proxy.hpp"

#include "auth.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vigil::gateway {

namespace tel = vigil::telemetry;

namespace {

// The gateway's header policy: the forwarding fields and the caller's identity are the
// gateway's alone; a client's own are dropped, since only the gateway vouches for them.
class GatewayHeaders final : public http::ForwardPolicy {
 public:
  GatewayHeaders(const http::Exchange& ex, std::string_view identity,
                 std::string_view client) noexcept
      : ex_(ex), identity_(identity), client_(client) {}

  bool Drops(std::string_view name) const noexcept override {
    const boost::beast::string_view n(name.data(), name.size());
    return boost::beast::iequals(n, "x-forwarded-for") ||
           boost::beast::iequals(n, "x-forwarded-proto") ||
           boost::beast::iequals(n, boost::beast::string_view(service::kIdentityHeader.data(),
                                                              service::kIdentityHeader.size())) ||
           boost::beast::iequals(n, boost::beast::string_view(service::kClientHeader.data(),
                                                              service::kClientHeader.size()));
  }

  void AddFields(http::ForwardFields& fields) const override {
    if (const auto earlier = ex_.header("x-forwarded-for"); !earlier.empty()) {
      fields.Add("X-Forwarded-For", earlier, ", ", ex_.peer_address());
    } else {
      fields.Add("X-Forwarded-For", ex_.peer_address());
    }
    fields.Add("X-Forwarded-Proto", ex_.secure() ? "https" : "http");
    if (!identity_.empty()) fields.Add(service::kIdentityHeader, identity_);
    fields.Add(service::kClientHeader, client_);
  }

 private:
  const http::Exchange& ex_;
  std::string_view identity_;
  std::string_view client_;
};

// X-Vigil-Client for `address`: signed once and reused for half its validity, per thread,
// so that a request pays a lookup and a copy, not an HMAC.
std::string VouchForClient(const service::IdentitySigner& identity, std::string_view address) {
  struct Signed {
    std::string value;
    std::chrono::steady_clock::time_point renew;
  };
  // Bounded: a flood of addresses clears it now and then, which costs only signatures.
  constexpr std::size_t kMaxAddresses = 4096;
  constexpr auto kReuse = std::chrono::seconds(25);
  thread_local std::unordered_map<std::string, Signed> cache;
  const auto now = std::chrono::steady_clock::now();
  auto it = cache.find(std::string(address));
  if (it == cache.end()) {
    if (cache.size() >= kMaxAddresses) cache.clear();
    it = cache.emplace(std::string(address), Signed{}).first;
  }
  if (it->second.value.empty() || now >= it->second.renew) {
    std::string subject = "client:";
    subject.append(address);
    it->second.value = identity.Sign(subject);
    it->second.renew = now + kReuse;
  }
  return it->second.value;
}

// The upstream's target: a view into the client's target, or `storage` when it must be
// rebuilt: the prefix was the whole path ("/api?x" becomes "/?x"), or the upstream URL
// has a path of its own ("/api/orders/7" to "http://orders/orders" becomes "/orders/7").
std::string_view RewriteTarget(const http::Exchange& ex, const RouteConfig& route,
                               std::string& storage) {
  std::string_view target = ex.target();
  if (route.strip_prefix && route.prefix != "/") target.remove_prefix(route.prefix.size());
  if (route.upstream_path.empty()) {
    if (!target.empty() && target.front() == '/') return target;
    storage.reserve(1 + target.size());
    storage.append("/").append(target);
    return storage;
  }
  storage.reserve(route.upstream_path.size() + target.size());
  storage.append(route.upstream_path);
  if (!target.empty() && target.front() != '/' && target.front() != '?') storage.push_back('/');
  storage.append(target);
  return storage;
}

}  // namespace

Proxy::Target::Target(http::Runtime& runtime, const RouteConfig& route,
                      const http::PoolOptions& pool, tel::Telemetry& telemetry,
                      http::ClientInstruments& instruments,
                      const http::SecurityHeadersOptions& headers)
    : config(route),
      upstream(runtime, route.upstream, pool, telemetry.metrics()),
      client(upstream, telemetry.tracer(), instruments, route.timeout) {
  if (!route.content_security_policy.empty() || route.upstream_security_headers) {
    http::SecurityHeadersOptions own = headers;
    if (!route.content_security_policy.empty()) {
      own.content_security_policy = route.content_security_policy;
    }
    own.replace = !route.upstream_security_headers;
    fields.emplace(own);
  }
}

Proxy::Proxy(http::Runtime& runtime, const GatewayConfig& config, tel::Telemetry& telemetry,
             http::PoolOptions pool, const service::IdentitySigner& identity,
             const ratelimit::Limiter& limiter, Authenticator* auth)
    : instruments_(telemetry.metrics()),
      errors_(telemetry.errors()),
      identity_(identity),
      limiter_(limiter),
      auth_(auth) {
  for (const RouteConfig& route : config.routes) {
    targets_.push_back(std::make_unique<Target>(runtime, route, pool, telemetry, instruments_,
                                                config.security_headers));
  }
}

Proxy::~Proxy() = default;

void Proxy::AddRoutes(http::Routes& routes) {
  for (const auto& t : targets_) {
    const std::string pattern = t->config.prefix == "/" ? "/*" : t->config.prefix + "/*";
    Target* target = t.get();
    routes.Add("*", pattern,
               [this, target](http::Exchange& ex) { return Forward(ex, *target); },
               {.body = http::BodyMode::kStreamed, .max_body_bytes = t->config.max_body_bytes});
  }
}

asio::awaitable<void> Proxy::Forward(http::Exchange& ex, Target& target) {
  if (target.fields) target.fields->ApplyTo(ex);
  std::string identity;
  if (auth_ != nullptr && !ex.header("authorization").empty()) {
    identity = co_await auth_->Identify(ex);
  }
  std::string rewritten;
  const std::string_view upstream_target = RewriteTarget(ex, target.config, rewritten);
  std::string joined;
  const std::string_view client =
      ratelimit::ClientAddress(limiter_.limits(), ex.peer().address(), ex.peer_address(),
                               ex.header_list("x-forwarded-for", joined));
  // A copy: the cache may re-sign while this request waits on its upstream.
  const std::string vouched = VouchForClient(identity_, client);
  const GatewayHeaders headers(ex, identity, vouched);
  const std::string_view upstream = target.config.upstream.authority;
  try {
    co_await target.client.Forward(ex, upstream_target, headers);
  } catch (const http::HttpError& e) {
    // The upstream timed out, refused or broke off: "timeout", "connection_refused"...
    if (e.status() >= 500) {
      errors_.CountFailure(upstream, e.error_type().empty() ? "error" : e.error_type(),
                           ex.context());
    }
    throw;
  }
  if (const unsigned status = ex.status(); status >= 500 && status <= 599) {
    char kind[] = "http_5xx";
    kind[5] = static_cast<char>('0' + status / 100);
    kind[6] = static_cast<char>('0' + status / 10 % 10);
    kind[7] = static_cast<char>('0' + status % 10);
    errors_.CountFailure(upstream, kind, ex.context());
  }
}

}  // namespace vigil::gateway

#include "auth.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vigil/http/server.hpp>
#include <vigil/service/clock.hpp>
#include <vigil/service/topology.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::gateway {

namespace bhttp = boost::beast::http;
namespace tel = vigil::telemetry;

namespace {

// While no key set has been fetched yet, retry this often.
constexpr std::chrono::seconds kRetry{1};

[[noreturn]] void Reject(http::Exchange& ex, std::string_view detail, std::string_view error_type) {
  // RFC 6750 section 3: say which scheme and that the token was the problem.
  ex.response().set(bhttp::field::www_authenticate, "Bearer error=\"invalid_token\"");
  throw http::HttpError(401, std::string(detail)).WithErrorType(error_type);
}

}  // namespace

AuthOptions AuthOptions::FromEnv() {
  AuthOptions options;
  options.enabled = tel::env::Boolean("VIGIL_GATEWAY_AUTH", true);
  const std::string url =
      tel::env::String("VIGIL_GATEWAY_JWKS_URL", VIGIL_TOPOLOGY_AUTH_URL "/.well-known/jwks.json");
  // "http://host:port/path": the address, then the path the keys are served at.
  const std::size_t scheme = url.find("://");
  const std::size_t slash = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
  if (slash == std::string::npos) {
    throw tel::ConfigError("VIGIL_GATEWAY_JWKS_URL",
                           "\"" + url + "\" is not valid: expected http://host:port/path");
  }
  try {
    options.jwks_upstream = http::UpstreamAddress::Parse(std::string_view(url).substr(0, slash));
  } catch (const std::invalid_argument& e) {
    throw tel::ConfigError("VIGIL_GATEWAY_JWKS_URL", "\"" + url + "\" is not valid: " + e.what());
  }
  options.jwks_path = url.substr(slash);
  options.refresh = std::chrono::seconds(tel::env::Integer("VIGIL_GATEWAY_JWKS_REFRESH", 300, 1, 86400));
  options.issuer = tel::env::String("VIGIL_JWT_ISSUER", "vigil-auth");
  options.audience = tel::env::String("VIGIL_JWT_AUDIENCE", "vigil");
  return options;
}

Authenticator::Authenticator(http::Runtime& runtime, tel::Telemetry& telemetry,
                             http::ClientInstruments& instruments, service::IdentitySigner identity,
                             AuthOptions options)
    : runtime_(runtime),
      telemetry_(telemetry),
      identity_(std::move(identity)),
      options_(std::move(options)),
      upstream_(std::make_unique<http::Upstream>(runtime, options_.jwks_upstream,
                                                 http::PoolOptions{}, telemetry.metrics())),
      client_(*upstream_, telemetry.tracer(), instruments, std::chrono::milliseconds(3000),
              1024 * 1024),
      decisions_(telemetry.metrics().CounterFamily(
          "vigil_gateway_auth_decisions_total",
          "Requests with credentials by the gateway's decision: accepted, rejected, unavailable.",
          {"decision"})) {}

Authenticator::~Authenticator() = default;

void Authenticator::Start() {
  if (!options_.enabled) return;
  asio::co_spawn(runtime_.context(0), RefreshLoop(), asio::detached);
}

asio::awaitable<void> Authenticator::RefreshLoop() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    const bool ok = co_await Fetch(0);
    timer.expires_after(ok || keys_.load() ? std::chrono::seconds(options_.refresh)
                                           : std::chrono::seconds(kRetry));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

asio::awaitable<bool> Authenticator::Fetch(std::size_t worker) {
  last_fetch_attempt_ms_.store(service::MonotonicMillis(), std::memory_order_relaxed);
  http::Client::Request request{bhttp::verb::get, options_.jwks_path, 11};
  request.set(bhttp::field::accept, "application/json");
  std::string error;
  try {
    const tel::RequestContext root;
    http::Client::Response response = co_await client_.Send(worker, root, std::move(request));
    if (response.result_int() == 200) {
      if (auto keys = service::KeySet::FromJwks(response.body(), &error)) {
        const std::size_t count = keys->size();
        keys_.store(std::make_shared<const service::KeySet>(std::move(*keys)));
        fetches_.fetch_add(1, std::memory_order_relaxed);
        telemetry_.log().Debug("jwks fetched", {"keys", static_cast<std::int64_t>(count)});
        co_return true;
      }
    } else {
      error = "status " + std::to_string(response.result_int());
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  telemetry_.log().Warn("cannot fetch the token keys (JWKS); tokens naming unknown keys are "
                        "refused until it succeeds",
                        {{"url.path", options_.jwks_path},
                         {"server.address", options_.jwks_upstream.authority},
                         {"error", error}});
  co_return false;
}

asio::awaitable<std::string> Authenticator::Identify(http::Exchange& ex) {
  if (!options_.enabled) co_return std::string();
  const std::string_view authorization = ex.header("Authorization");
  if (authorization.empty()) co_return std::string();
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !boost::beast::iequals(authorization.substr(0, kScheme.size()), kScheme)) {
    decisions_.WithLabels({"rejected"}).Inc();
    Reject(ex, "the Authorization header must be \"Bearer <token>\"", "invalid_token");
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);

  const service::VerifyOptions verify{options_.issuer, options_.audience,
                                      service::WallClockSeconds(), 30};
  std::shared_ptr<const service::KeySet> keys = keys_.load();
  std::variant<service::Claims, service::JwtError> result =
      keys ? service::VerifyJwt(token, *keys, verify) : service::JwtError::kUnknownKey;
  // A key we do not know may be one auth has just rotated in: fetch once and retry.
  const auto* error = std::get_if<service::JwtError>(&result);
  // Before any key set arrived (auth was still starting), try again sooner.
  const std::int64_t min_interval_ms =
      keys ? options_.min_refetch.count() : std::min<std::int64_t>(options_.min_refetch.count(), 1000);
  if (error != nullptr && *error == service::JwtError::kUnknownKey &&
      service::MonotonicMillis() - last_fetch_attempt_ms_.load(std::memory_order_relaxed) >=
          min_interval_ms) {
    co_await Fetch(ex.worker());
    keys = keys_.load();
    if (keys) result = service::VerifyJwt(token, *keys, verify);
  }
  if (const auto* failed = std::get_if<service::JwtError>(&result)) {
    if (!keys) {
      decisions_.WithLabels({"unavailable"}).Inc();
      ex.response().set(bhttp::field::retry_after, "5");
      throw http::HttpError(503, "tokens cannot be verified right now; try again shortly")
          .WithErrorType("jwks_unavailable");
    }
    decisions_.WithLabels({"rejected"}).Inc();
    Reject(ex, service::Describe(*failed), "invalid_token");
  }
  decisions_.WithLabels({"accepted"}).Inc();
  co_return identity_.Sign("user:" + std::get<service::Claims>(result).subject);
}

}  // namespace vigil::gateway

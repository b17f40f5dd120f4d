// The gateway's authentication: it verifies a client's bearer token once, at the edge,
// and vouches for the caller to the services behind it.
//
// For every proxied request it drops any X-Vigil-Identity the client sent, then:
//   - no Authorization header: the request goes on anonymous (services decide whether
//     their route needs a caller);
//   - "Authorization: Bearer <JWT>": verified against the JWK Set fetched from auth
//     (alg EdDSA only, signature, exp/nbf, issuer, audience); a bad token is answered
//     401 problem+json with WWW-Authenticate here, and never reaches a service; a good
//     one becomes X-Vigil-Identity: user:<sub>, signed (identity.hpp);
//   - another Authorization scheme: 401.
// The key set is fetched at start and refreshed in the background every
// VIGIL_GATEWAY_JWKS_REFRESH seconds, and at once (at most every 5 s) when a token names
// a key id it does not know, so rotated keys are picked up without a restart.
//
//   gateway::Authenticator auth(runtime, telemetry, instruments,
//                               service::IdentitySigner::FromEnv(), AuthOptions::FromEnv());
//   auth.Start();
//   std::string identity = co_await auth.Identify(ex);   // "" when anonymous
//
// Thread-safety: Identify() may run on every worker at once; the key set is swapped
// atomically.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vigil/http/client.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/jwt.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::gateway {

namespace asio = boost::asio;

struct AuthOptions {
  bool enabled = true;
  // Where auth publishes its keys.
  http::UpstreamAddress jwks_upstream;
  std::string jwks_path = "/.well-known/jwks.json";
  std::chrono::seconds refresh{300};
  // A token naming an unknown key id triggers a refetch, but not more often than this:
  // clients sending made-up key ids must not turn the gateway into a load generator.
  std::chrono::milliseconds min_refetch{5000};
  std::string issuer = "vigil-auth";
  std::string audience = "vigil";

  // VIGIL_GATEWAY_AUTH (true|false, default true), VIGIL_GATEWAY_JWKS_URL (default auth's
  // URL in services/topology.json + /.well-known/jwks.json), VIGIL_GATEWAY_JWKS_REFRESH (seconds,
  // default 300), VIGIL_JWT_ISSUER (vigil-auth), VIGIL_JWT_AUDIENCE (vigil). Throws
  // telemetry::ConfigError naming a malformed variable.
  static AuthOptions FromEnv();
};

class Authenticator {
 public:
  Authenticator(http::Runtime& runtime, telemetry::Telemetry& telemetry,
                http::ClientInstruments& instruments, service::IdentitySigner identity,
                AuthOptions options);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Starts the background refresh on worker 0 (the first fetch happens at once).
  void Start();

  // The signed identity for the request's caller, or "" for an anonymous request (no
  // Authorization header) or when authentication is disabled.
  // Throws http::HttpError 401 for a missing-scheme, malformed, expired or forged token,
  // 503 when no key set could be fetched yet.
  asio::awaitable<std::string> Identify(http::Exchange& ex);

  // Key sets fetched successfully so far (for tests and logs).
  std::size_t fetches() const noexcept { return fetches_.load(std::memory_order_relaxed); }

 private:
  asio::awaitable<bool> Fetch(std::size_t worker);
  asio::awaitable<void> RefreshLoop();

  http::Runtime& runtime_;
  telemetry::Telemetry& telemetry_;
  service::IdentitySigner identity_;
  AuthOptions options_;
  std::unique_ptr<http::Upstream> upstream_;
  http::Client client_;
  std::atomic<std::shared_ptr<const service::KeySet>> keys_;
  std::atomic<std::int64_t> last_fetch_attempt_ms_{0};
  std::atomic<std::size_t> fetches_{0};
  telemetry::Family<telemetry::Counter>& decisions_;
};

}  // namespace vigil::gateway

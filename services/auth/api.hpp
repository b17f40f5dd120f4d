// The auth service's HTTP API: accounts, logins, access and refresh tokens, the JWKS.
//
//   POST /register  {"email","password"} -> 201 {"id","email"}; 409 when the email is taken
//   POST /login     {"email","password"} -> 200 tokens; 401 "invalid email or password"
//   POST /refresh   {"refresh_token"}    -> 200 tokens (rotated); reuse revokes the family
//   POST /logout    {"refresh_token"}    -> 204 (revokes the family)
//   GET  /me        X-Vigil-Identity user -> 200 {"id","email"}
//   GET  /.well-known/jwks.json          -> 200 the JWK Set
//
// Passwords are hashed and verified on the host's BlockingPool, never on an HTTP worker.
// Refresh tokens are 32 random bytes (base64url) stored only as SHA-256 hashes; each one
// works once and belongs to a family (one login), so a spent token coming back means it
// was copied, and the whole family is revoked.
//
// Retention: a family's rows stay while any of its tokens can still be used (reuse
// detection needs the spent ones), and are deleted once its newest token has been
// expired for kExpiredFamilyMargin; retired signing keys go too (keys.hpp). retention()
// is that purge (service/retention.hpp), which service::StartPurges runs shortly after
// start and every ten minutes.
//
//   storage::Database& db = service::OpenDatabase(host, auth::Migrations());
//   auth::AuthApi& api = auth::InstallAuth(host, db, auth::AuthOptions::FromEnv());
//   service::StartPurges(host, api.retention());
//
// Rate limits (kDefaultLimits, or VIGIL_RATELIMIT_CONFIG): logins per client address in
// the middleware, and per account (policy kLoginPerAccount) here, before the account is
// looked up, so that the answer and its timing are the same whether or not it exists.
//
// Thread-safety: an AuthApi serves requests from every worker at once.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>
#include <vigil/http/exchange.hpp>
#include <vigil/ratelimit/limiter.hpp>
#include <vigil/service/blocking.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/service/retention.hpp>
#include <vigil/service/service.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "keys.hpp"
#include "model.hpp"
#include "options.hpp"
#include "store.hpp"

namespace vigil::auth {

// The policy login attempts per account go through (the email, as normalized).
inline constexpr std::string_view kLoginPerAccount = "login-per-account";
// Auth's limits when VIGIL_RATELIMIT_CONFIG is unset: 10 attempts per account per 5
// minutes; 1200 logins per minute (200 at once) per client address.
extern const std::string_view kDefaultLimits;

class AuthApi {
 public:
  // How long after its newest token expired a family is deleted. Far longer than any
  // clock disagreement between replicas or any refresh racing the purge, so a family
  // that a refresh just extended is never taken for dead.
  static constexpr std::int64_t kExpiredFamilyMargin = 3600;  // seconds

  // Everything passed in must outlive the API; `db` has the auth migrations applied.
  // `limiter`: where logins per account are limited (null: not limited).
  AuthApi(storage::Database& db, service::BlockingPool& blocking,
          const service::IdentitySigner& identity, telemetry::Telemetry& telemetry,
          AuthOptions options, ratelimit::Limiter* limiter = nullptr);

  // Loads (or creates) the signing key and computes the dummy password hash, so that the
  // first requests do not pay for either. Blocking: start-up only.
  void Prepare();

  // Adds the routes above to `host`'s public listener.
  void AddRoutes(service::ServiceHost& host);

  boost::asio::awaitable<void> Register(http::Exchange& ex);
  boost::asio::awaitable<void> Login(http::Exchange& ex);
  boost::asio::awaitable<void> Refresh(http::Exchange& ex);
  boost::asio::awaitable<void> Logout(http::Exchange& ex);
  boost::asio::awaitable<void> Me(http::Exchange& ex);
  boost::asio::awaitable<void> Jwks(http::Exchange& ex);

  // The retention purge: the refresh tokens of every family whose newest token expired
  // more than kExpiredFamilyMargin ago (table refresh_tokens, counted in
  // vigil_auth_refresh_tokens_purged_total), then the retired signing keys
  // (signing_keys, vigil_auth_signing_keys_purged_total), on the options' clock.
  const service::RetentionPurge& retention() const noexcept { return retention_; }

  SigningKeys& keys() noexcept { return keys_; }
  const AuthOptions& options() const noexcept { return options_; }

 private:
  // Runs argon2id on the blocking pool and records its duration.
  boost::asio::awaitable<std::string> Hash(http::Exchange& ex, std::string password);
  boost::asio::awaitable<bool> Verify(http::Exchange& ex, const std::string& hash,
                                      const std::string& password);
  // Replaces `old_hash` (verified, made at another cost) by a hash at options_.password,
  // unless the password changed meanwhile. A failure is logged, never thrown: the login
  // it follows has succeeded.
  boost::asio::awaitable<void> Rehash(http::Exchange& ex, const std::string& user_id,
                                      const std::string& old_hash, std::string password);
  // Signs an access token for `user_id` with `keys`' signer and answers 200 with it and
  // `refresh_token`.
  void RespondTokens(http::Exchange& ex, const SigningKeys::Snapshot& keys,
                     const std::string& user_id, const std::string& refresh_token);
  const std::string& DummyHash();

  AuthStore store_;
  service::BlockingPool& blocking_;
  const service::IdentitySigner& identity_;
  telemetry::Logger& log_;
  AuthOptions options_;
  SigningKeys keys_;
  telemetry::Counter& login_success_;
  telemetry::Counter& login_failure_;
  telemetry::Histogram& hash_seconds_;
  telemetry::Counter& rehashed_;
  std::string dummy_hash_;  // set by Prepare() when options_.password is not the default
  service::RetentionPurge retention_;
  ratelimit::Limiter* limiter_;
};

// Creates the AuthApi (owned by `host`), prepares it and adds its routes.
AuthApi& InstallAuth(service::ServiceHost& host, storage::Database& db, AuthOptions options,
                     ratelimit::Limiter* limiter = nullptr);

}  // namespace vigil::auth

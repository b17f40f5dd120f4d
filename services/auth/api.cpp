#include "api.hpp"

#include <sodium.h>

#include <array>
#include <optional>
#include <vigil/service/base64url.hpp>
#include <vigil/service/clock.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/jwt.hpp>
#include <vigil/service/password.hpp>
#include <vigil/service/rate_limit.hpp>

namespace vigil::auth {

namespace {

// The same for an unknown email and a wrong password, so neither can be told apart.
constexpr std::string_view kBadCredentials = "invalid email or password";
constexpr std::string_view kBadRefreshToken = "invalid or expired refresh token";

http::RouteOptions SmallJsonBody() {
  http::RouteOptions options;
  options.max_body_bytes = 16 * 1024;
  return options;
}

telemetry::Family<telemetry::Counter>& Logins(telemetry::Registry& registry) {
  return registry.CounterFamily("vigil_auth_logins_total",
                                "Login attempts, by outcome (success or failure).", {"outcome"});
}

}  // namespace

const std::string_view kDefaultLimits = R"({"policies": [
  {"name": "login-per-account", "key": ["user"], "quota": 10, "window_s": 300},
  {"name": "login-per-address", "key": ["client_address"], "quota": 1200, "window_s": 60,
   "burst": 200, "match": [{"prefix": "/login", "methods": ["POST"]}]}]})";

AuthApi::AuthApi(storage::Database& db, service::BlockingPool& blocking,
                 const service::IdentitySigner& identity, telemetry::Telemetry& telemetry,
                 AuthOptions options, ratelimit::Limiter* limiter)
    : store_(db),
      blocking_(blocking),
      identity_(identity),
      log_(telemetry.log()),
      options_(std::move(options)),
      keys_(db, options_,
            {identity.DeriveKey(SigningKeys::kStorageKeyPurpose),
             identity.DerivePreviousKey(SigningKeys::kStorageKeyPurpose)},
            telemetry.log()),
      login_success_(Logins(telemetry.metrics()).WithLabels({"success"})),
      login_failure_(Logins(telemetry.metrics()).WithLabels({"failure"})),
      hash_seconds_(telemetry.metrics().AddHistogram(
          "vigil_auth_password_hash_seconds",
          "Time to hash or verify one password with argon2id, in seconds.")),
      rehashed_(telemetry.metrics().AddCounter(
          "vigil_auth_password_rehashed_total",
          "Password hashes replaced at login because they were made at another argon2id "
          "cost.")),
      retention_(
          telemetry.log(), [this] { return options_.Now(); },
          {{"refresh_tokens", "expired refresh tokens purged",
            telemetry.metrics().AddCounter(
                "vigil_auth_refresh_tokens_purged_total",
                "Refresh tokens deleted by the retention purge (families expired for an hour)."),
            [this](const telemetry::RequestContext& context, std::int64_t now) {
              return store_.PurgeExpiredFamilies(context, now - kExpiredFamilyMargin);
            }},
           {"signing_keys", "retired signing keys purged",
            telemetry.metrics().AddCounter(
                "vigil_auth_signing_keys_purged_total",
                "Signing keys deleted by the retention purge (no longer published)."),
            [this](const telemetry::RequestContext& context, std::int64_t now) {
              return keys_.PurgeRetired(context, now);
            }}}),
      limiter_(limiter) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

const std::string& AuthApi::DummyHash() {
  return dummy_hash_.empty() ? service::DummyPasswordHash() : dummy_hash_;
}

void AuthApi::Prepare() {
  keys_.Prepare();
  if (options_.password.opslimit == service::kPasswordParams.opslimit &&
      options_.password.memlimit_bytes == service::kPasswordParams.memlimit_bytes) {
    (void)service::DummyPasswordHash();
  } else {
    // The unknown-user path must cost what a real verification costs at this cost.
    std::array<unsigned char, 32> secret{};
    randombytes_buf(secret.data(), secret.size());
    dummy_hash_ = service::HashPassword(service::Base64UrlEncode(secret), options_.password);
  }
}

void AuthApi::AddRoutes(service::ServiceHost& host) {
  host.Route(
      "POST", "/register", [this](http::Exchange& ex) { return Register(ex); }, SmallJsonBody());
  host.Route(
      "POST", "/login", [this](http::Exchange& ex) { return Login(ex); }, SmallJsonBody());
  host.Route(
      "POST", "/refresh", [this](http::Exchange& ex) { return Refresh(ex); }, SmallJsonBody());
  host.Route(
      "POST", "/logout", [this](http::Exchange& ex) { return Logout(ex); }, SmallJsonBody());
  host.Route("GET", "/me", [this](http::Exchange& ex) { return Me(ex); });
  host.Route("GET", "/.well-known/jwks.json", [this](http::Exchange& ex) { return Jwks(ex); });
}

boost::asio::awaitable<std::string> AuthApi::Hash(http::Exchange& ex, std::string password) {
  const telemetry::SpanContext span = ex.context().span;
  co_return co_await blocking_.Run([this, &password, span] {
    const service::Stopwatch watch;
    std::string hash = service::HashPassword(password, options_.password);
    hash_seconds_.Observe(watch.Seconds(), span);
    return hash;
  });
}

boost::asio::awaitable<bool> AuthApi::Verify(http::Exchange& ex, const std::string& hash,
                                             const std::string& password) {
  const telemetry::SpanContext span = ex.context().span;
  co_return co_await blocking_.Run([this, &hash, &password, span] {
    const service::Stopwatch watch;
    const bool ok = service::VerifyPassword(hash, password);
    hash_seconds_.Observe(watch.Seconds(), span);
    return ok;
  });
}

boost::asio::awaitable<void> AuthApi::Rehash(http::Exchange& ex, const std::string& user_id,
                                             const std::string& old_hash, std::string password) {
  std::string failure;
  try {
    const std::string hash = co_await Hash(ex, std::move(password));
    co_await store_.ReplacePasswordHash(ex.context(), user_id, old_hash, hash);
    rehashed_.Inc();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    // The old hash still verifies: the next login tries again.
    log_.Warn(ex.context(), "password rehash failed", {{"error.message", failure}});
  }
}

void AuthApi::RespondTokens(http::Exchange& ex, const SigningKeys::Snapshot& keys,
                            const std::string& user_id, const std::string& refresh_token) {
  const std::int64_t now = options_.Now();
  service::Claims claims;
  claims.subject = user_id;
  claims.issuer = std::string(kIssuer);
  claims.audience = std::string(kAudience);
  claims.jwt_id = service::NewId();
  claims.issued_at = now;
  claims.not_before = now;
  claims.expires_at = now + options_.access_ttl;
  ex.RespondJson(
      200, TokensJson(service::SignJwt(claims, *keys.signer), refresh_token, options_.access_ttl));
  // RFC 6749 5.1: token responses must not be cached anywhere.
  ex.response().set(boost::beast::http::field::cache_control, "no-store");
}

boost::asio::awaitable<void> AuthApi::Register(http::Exchange& ex) {
  EmailAndPassword account = ReadRegistration(ex);
  // Checked before hashing so that a taken email costs no argon2 work; the UNIQUE
  // constraint still decides a race between two registrations.
  if (co_await store_.EmailTaken(ex.context(), account.email)) {
    throw http::HttpError(409, "this email is already registered");
  }
  const std::string hash = co_await Hash(ex, std::move(account.password));
  const User user{service::NewId(), std::move(account.email)};
  if (!co_await store_.InsertUser(ex.context(), user, hash, options_.Now())) {
    throw http::HttpError(409, "this email is already registered");
  }
  ex.RespondJson(201, UserJson(user));
}

boost::asio::awaitable<void> AuthApi::Login(http::Exchange& ex) {
  EmailAndPassword account = ReadLogin(ex);
  const std::string_view account_key[] = {account.email};
  if (limiter_ != nullptr &&
      !co_await service::Admit(ex, *limiter_, kLoginPerAccount, account_key)) {
    login_failure_.Inc();
    co_return;
  }
  const std::optional<PasswordRecord> user =
      co_await store_.FindByEmail(ex.context(), account.email);
  // An unknown email still pays for one verification, against a hash nobody knows the
  // password of, so that the answer takes as long as for a wrong password.
  const std::string hash = user ? user->password_hash : DummyHash();
  const bool verified = co_await Verify(ex, hash, account.password);
  if (!verified || !user) {
    login_failure_.Inc();
    throw http::HttpError(401, std::string(kBadCredentials));
  }
  // Once per account after the cost changes (a release that raises kPasswordParams).
  if (service::PasswordNeedsRehash(hash, options_.password)) {
    co_await Rehash(ex, user->user_id, hash, std::move(account.password));
  }
  const auto keys = co_await keys_.Current(ex.context());
  const NewRefreshToken refresh = MakeRefreshToken();
  co_await store_.InsertRefreshToken(ex.context(), refresh.hash, service::NewId(), user->user_id,
                                     options_.Now() + options_.refresh_ttl);
  login_success_.Inc();
  RespondTokens(ex, *keys, user->user_id, refresh.token);
}

boost::asio::awaitable<void> AuthApi::Refresh(http::Exchange& ex) {
  const std::string token = ReadRefreshToken(ex);
  if (token.size() != kRefreshTokenLength)
    throw http::HttpError(401, std::string(kBadRefreshToken));

  // Taken before the transaction: once the old token is spent, nothing may fail before
  // the new pair is answered.
  const auto keys = co_await keys_.Current(ex.context());
  const NewRefreshToken next = MakeRefreshToken();
  const std::int64_t now = options_.Now();
  const Rotation rotation = co_await store_.RotateRefreshToken(
      ex.context(), RefreshTokenHash(token), next.hash, now, now + options_.refresh_ttl);

  const bool reused = rotation.outcome == RefreshOutcome::kReused;
  if (reused || rotation.outcome == RefreshOutcome::kRevoked) {
    log_.Warn(ex.context(), "refresh token reuse",
              {{"auth.family_id", rotation.family_id},
               {"enduser.id", rotation.user_id},
               {"auth.refresh.state", reused ? "used" : "revoked"}});
  }
  if (rotation.outcome != RefreshOutcome::kRotated)
    throw http::HttpError(401, std::string(kBadRefreshToken));
  RespondTokens(ex, *keys, rotation.user_id, next.token);
}

boost::asio::awaitable<void> AuthApi::Logout(http::Exchange& ex) {
  const std::string token = ReadRefreshToken(ex);
  if (token.size() == kRefreshTokenLength) {
    co_await store_.RevokeFamilyOf(ex.context(), RefreshTokenHash(token), options_.Now());
  }
  // Unknown tokens too: logging out must not tell whether a token exists.
  ex.Respond(204, "", "");
  ex.response().erase(boost::beast::http::field::content_type);
}

boost::asio::awaitable<void> AuthApi::Me(http::Exchange& ex) {
  const std::string user_id = service::RequireUser(ex, identity_);
  if (!service::IsValidId(user_id)) throw http::HttpError(404, "user not found");
  const std::optional<User> user = co_await store_.FindById(ex.context(), user_id);
  if (!user) throw http::HttpError(404, "user not found");
  ex.RespondJson(200, UserJson(*user));
  ex.response().set(boost::beast::http::field::cache_control, "no-store");
}

boost::asio::awaitable<void> AuthApi::Jwks(http::Exchange& ex) {
  const auto keys = co_await keys_.Current(ex.context());
  ex.RespondJson(200, keys_.Jwks(*keys, options_.Now()));
  // Short, so that verifiers see a new key soon after it is created.
  ex.response().set(boost::beast::http::field::cache_control, "public, max-age=60");
}

AuthApi& InstallAuth(service::ServiceHost& host, storage::Database& db, AuthOptions options,
                     ratelimit::Limiter* limiter) {
  auto& auth = host.Make<AuthApi>(db, host.blocking(), host.identity(), host.telemetry(),
                                  std::move(options), limiter);
  auth.Prepare();
  auth.AddRoutes(host);
  return auth;
}

}  // namespace vigil::auth

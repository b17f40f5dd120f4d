#include "api.hpp"

#include <sodium.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <optional>
#include <vigil/service/base64url.hpp>
#include <vigil/service/clock.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/service/jwt.hpp>
#include <vigil/service/password.hpp>

namespace vigil::auth {

namespace json = boost::json;

namespace {

// The same for an unknown email and a wrong password, so neither can be told apart.
constexpr std::string_view kBadCredentials = "invalid email or password";
constexpr std::string_view kBadRefreshToken = "invalid or expired refresh token";
constexpr std::size_t kMaxPasswordBytes = 1024;
constexpr std::size_t kRefreshTokenBytes = 32;
// Base64url of kRefreshTokenBytes without padding.
constexpr std::size_t kRefreshTokenLength = (kRefreshTokenBytes * 4 + 2) / 3;

const storage::Statement kFindUserByEmail{"SELECT id, password_hash FROM users WHERE email = $1"};
const storage::Statement kFindUserById{"SELECT id, email FROM users WHERE id = $1"};
const storage::Statement kInsertUser{
    "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)"};
// Compare-and-set: a password changed since the login read the row is not overwritten.
const storage::Statement kRehashUser{
    "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3"};
const storage::Statement kInsertRefreshToken{
    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, used_at, revoked_at) "
    "VALUES ($1, $2, $3, $4, NULL, NULL)"};
const storage::Statement kFindRefreshToken{
    "SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens "
    "WHERE token_hash = $1"};
// The guard on used_at makes two concurrent refreshes with one token race for one row:
// exactly one sees affected == 1.
const storage::Statement kSpendRefreshToken{
    "UPDATE refresh_tokens SET used_at = $1 "
    "WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL"};
const storage::Statement kRevokeFamily{
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL"};
const storage::Statement kRevokeFamilyOfToken{
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id = "
    "(SELECT family_id FROM refresh_tokens WHERE token_hash = $2)"};

// Up to service::kPurgeBatch rows of families whose newest token expired before $1. Every row of
// such a family has expired, so the candidates come from a range of the expires_at
// index, each checked with one probe of (family_id, expires_at) for its family's newest
// expiry; PostgreSQL plans the correlated MAX as that probe, where NOT EXISTS became a
// hash of every live token per batch. The LIMIT is a literal so that PostgreSQL's
// generic plan for the prepared statement knows how small the batch is. A family may
// lose its rows over several batches; until the last goes, what is left answers a
// replay with the same 401 as nothing would.
const storage::Statement kPurgeRefreshTokens{
    "DELETE FROM refresh_tokens WHERE token_hash IN ("
    "SELECT t.token_hash FROM refresh_tokens t WHERE t.expires_at < $1 AND ("
    "SELECT MAX(l.expires_at) FROM refresh_tokens l WHERE l.family_id = t.family_id) < $1 "
    "LIMIT " +
    std::to_string(service::kPurgeBatch) + ")"};

struct NewRefreshToken {
  std::string token;
  std::string hash;
};

NewRefreshToken MakeRefreshToken() {
  std::array<unsigned char, kRefreshTokenBytes> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  NewRefreshToken made;
  made.token = service::Base64UrlEncode(bytes);
  made.hash = RefreshTokenHash(made.token);
  sodium_memzero(bytes.data(), bytes.size());
  return made;
}

http::RouteOptions SmallJsonBody() {
  http::RouteOptions options;
  options.max_body_bytes = 16 * 1024;
  return options;
}

telemetry::Family<telemetry::Counter>& Logins(telemetry::Registry& registry) {
  return registry.CounterFamily("vigil_auth_logins_total",
                                "Login attempts, by outcome (success or failure).", {"outcome"});
}

// Reads a password field: 8..1024 characters for a new password (min_length 8), any
// non-empty one for a login, and never more than 1024 bytes.
std::string ReadPassword(service::JsonReader& body, std::size_t min_length) {
  std::string password = body.String("password", min_length, kMaxPasswordBytes);
  if (password.size() > kMaxPasswordBytes) {
    throw http::HttpError(422, "password: must be at most 1024 bytes");
  }
  return password;
}

std::string ReadRefreshToken(const http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  std::string token = body.String("refresh_token", 1, 512);
  body.RejectUnknown();
  return token;
}

}  // namespace

std::string NormalizeEmail(std::string_view email) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!email.empty() && space(email.front())) email.remove_prefix(1);
  while (!email.empty() && space(email.back())) email.remove_suffix(1);
  std::string out(email);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsValidEmail(std::string_view email) {
  if (email.empty() || email.size() > 254) return false;
  const std::size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size()) return false;
  if (email.find('@', at + 1) != std::string_view::npos) return false;
  for (const char c : email) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string RefreshTokenHash(std::string_view token) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  std::string hex(digest.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  hex.pop_back();
  return hex;
}

AuthService::AuthService(storage::Database& db, service::BlockingPool& blocking,
                         const service::IdentitySigner& identity, telemetry::Telemetry& telemetry,
                         AuthOptions options)
    : db_(db),
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
      retention_(telemetry.log(), [this] { return options_.Now(); },
                 {{"refresh_tokens", "expired refresh tokens purged",
                   telemetry.metrics().AddCounter(
                       "vigil_auth_refresh_tokens_purged_total",
                       "Refresh tokens deleted by the retention purge (families expired for an "
                       "hour)."),
                   [this](const telemetry::RequestContext& context, std::int64_t now) {
                     return PurgeRefreshTokens(context, now);
                   }},
                  {"signing_keys", "retired signing keys purged",
                   telemetry.metrics().AddCounter(
                       "vigil_auth_signing_keys_purged_total",
                       "Signing keys deleted by the retention purge (no longer published)."),
                   [this](const telemetry::RequestContext& context, std::int64_t now) {
                     return keys_.PurgeRetired(context, now);
                   }}}) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

const std::string& AuthService::DummyHash() {
  return dummy_hash_.empty() ? service::DummyPasswordHash() : dummy_hash_;
}

void AuthService::Prepare() {
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

boost::asio::awaitable<std::string> AuthService::Hash(http::Exchange& ex, std::string password) {
  const telemetry::SpanContext span = ex.context().span;
  co_return co_await blocking_.Run([this, &password, span] {
    const service::Stopwatch watch;
    std::string hash = service::HashPassword(password, options_.password);
    hash_seconds_.Observe(watch.Seconds(), span);
    return hash;
  });
}

boost::asio::awaitable<bool> AuthService::Verify(http::Exchange& ex, const std::string& hash,
                                                 const std::string& password) {
  const telemetry::SpanContext span = ex.context().span;
  co_return co_await blocking_.Run([this, &hash, &password, span] {
    const service::Stopwatch watch;
    const bool ok = service::VerifyPassword(hash, password);
    hash_seconds_.Observe(watch.Seconds(), span);
    return ok;
  });
}

boost::asio::awaitable<void> AuthService::Rehash(http::Exchange& ex, const std::string& user_id,
                                                 const std::string& old_hash,
                                                 std::string password) {
  std::string failure;
  try {
    const std::string hash = co_await Hash(ex, std::move(password));
    co_await db_.Transact(ex.context(), [&](storage::Session& s) {
      s.Query(kRehashUser, {hash, user_id, old_hash});
    });
    rehashed_.Inc();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    // The old hash still verifies: the next login tries again.
    log_.Warn(ex.context(), "password rehash failed", {{"error.message", failure}});
  }
}

void AuthService::RespondTokens(http::Exchange& ex, const SigningKeys::Snapshot& keys,
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
  json::object body;
  body["access_token"] = service::SignJwt(claims, *keys.signer);
  body["refresh_token"] = refresh_token;
  body["token_type"] = "Bearer";
  body["expires_in"] = options_.access_ttl;
  ex.RespondJson(200, json::serialize(body));
  // RFC 6749 5.1: token responses must not be cached anywhere.
  ex.response().set(boost::beast::http::field::cache_control, "no-store");
}

boost::asio::awaitable<void> AuthService::Register(http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  const std::string email = NormalizeEmail(body.String("email", 1, 254));
  std::string password = ReadPassword(body, 8);
  body.RejectUnknown();
  if (!IsValidEmail(email)) {
    throw http::HttpError(
        422, "email: must be an email address of at most 254 bytes, with one '@' and no spaces");
  }
  // Checked before hashing so that a taken email costs no argon2 work; the UNIQUE
  // constraint still decides a race between two registrations.
  const bool taken = co_await db_.Transact(ex.context(), [&](storage::Session& s) {
    return s.Query(kFindUserByEmail, {email}).FirstRow().has_value();
  });
  if (taken) throw http::HttpError(409, "this email is already registered");

  const std::string hash = co_await Hash(ex, std::move(password));
  const std::string id = service::NewId();
  const std::int64_t now = options_.Now();
  bool conflict = false;
  try {
    co_await db_.Transact(ex.context(), [&](storage::Session& s) {
      s.Query(kInsertUser, {id, email, hash, now});
    });
  } catch (const storage::ConstraintViolation&) {
    conflict = true;
  }
  if (conflict) throw http::HttpError(409, "this email is already registered");
  ex.RespondJson(201, json::serialize(json::object{{"id", id}, {"email", email}}));
}

boost::asio::awaitable<void> AuthService::Login(http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  const std::string email = NormalizeEmail(body.String("email", 1, 254));
  std::string password = ReadPassword(body, 1);
  body.RejectUnknown();

  auto user = co_await db_.Transact(ex.context(), [&](storage::Session& s) {
    return s.Query(kFindUserByEmail, {email}).FirstRow();
  });
  // An unknown email still pays for one verification, against a hash nobody knows the
  // password of, so that the answer takes as long as for a wrong password.
  const std::string hash = user ? std::string(user->Text(1)) : DummyHash();
  const bool verified = co_await Verify(ex, hash, password);
  if (!verified || !user) {
    login_failure_.Inc();
    throw http::HttpError(401, std::string(kBadCredentials));
  }
  const std::string user_id(user->Text(0));
  // Once per account after the cost changes (a release that raises kPasswordParams).
  if (service::PasswordNeedsRehash(hash, options_.password)) {
    co_await Rehash(ex, user_id, hash, std::move(password));
  }
  const auto keys = co_await keys_.Current(ex.context());
  const NewRefreshToken refresh = MakeRefreshToken();
  const std::string family_id = service::NewId();
  const std::int64_t expires_at = options_.Now() + options_.refresh_ttl;
  co_await db_.Transact(ex.context(), [&](storage::Session& s) {
    s.Query(kInsertRefreshToken, {refresh.hash, family_id, user_id, expires_at});
  });
  login_success_.Inc();
  RespondTokens(ex, *keys, user_id, refresh.token);
}

boost::asio::awaitable<void> AuthService::Refresh(http::Exchange& ex) {
  const std::string token = ReadRefreshToken(ex);
  if (token.size() != kRefreshTokenLength)
    throw http::HttpError(401, std::string(kBadRefreshToken));

  // Taken before the transaction: once the old token is spent, nothing may fail before
  // the new pair is answered.
  const auto keys = co_await keys_.Current(ex.context());
  const std::string hash = RefreshTokenHash(token);
  const NewRefreshToken next = MakeRefreshToken();
  const std::int64_t now = options_.Now();

  enum class Outcome { kRotated, kUnknown, kExpired, kReused, kRevoked };
  struct Result {
    Outcome outcome = Outcome::kUnknown;
    std::string user_id;
    std::string family_id;
  };
  const Result result = co_await db_.Transact(ex.context(), [&](storage::Session& s) {
    Result r;
    auto row = s.Query(kFindRefreshToken, {hash}).FirstRow();
    if (!row) return r;
    r.family_id = std::string(row->Text(0));
    r.user_id = std::string(row->Text(1));
    const bool used = !row->IsNull(3);
    const bool revoked = !row->IsNull(4);
    // A spent (or revoked) token presented again: whoever holds the family's newest token
    // may be the thief, so none of the family's tokens work any more. This commits; the
    // caller answers 401 afterwards.
    if (used || revoked) {
      s.Query(kRevokeFamily, {now, r.family_id});
      r.outcome = used ? Outcome::kReused : Outcome::kRevoked;
      return r;
    }
    if (row->Int(2) <= now) {
      r.outcome = Outcome::kExpired;
      return r;
    }
    if (s.Query(kSpendRefreshToken, {now, hash}).affected != 1) {
      // Another request spent it between our read and our write.
      s.Query(kRevokeFamily, {now, r.family_id});
      r.outcome = Outcome::kReused;
      return r;
    }
    s.Query(kInsertRefreshToken, {next.hash, r.family_id, r.user_id, now + options_.refresh_ttl});
    r.outcome = Outcome::kRotated;
    return r;
  });

  if (result.outcome == Outcome::kReused || result.outcome == Outcome::kRevoked) {
    log_.Warn(ex.context(), "refresh token reuse",
              {{"auth.family_id", result.family_id},
               {"enduser.id", result.user_id},
               {"auth.refresh.state", result.outcome == Outcome::kReused ? "used" : "revoked"}});
  }
  if (result.outcome != Outcome::kRotated)
    throw http::HttpError(401, std::string(kBadRefreshToken));
  RespondTokens(ex, *keys, result.user_id, next.token);
}

boost::asio::awaitable<void> AuthService::Logout(http::Exchange& ex) {
  const std::string token = ReadRefreshToken(ex);
  if (token.size() == kRefreshTokenLength) {
    const std::string hash = RefreshTokenHash(token);
    const std::int64_t now = options_.Now();
    co_await db_.Transact(ex.context(), [&](storage::Session& s) {
      s.Query(kRevokeFamilyOfToken, {now, hash});
    });
  }
  // Unknown tokens too: logging out must not tell whether a token exists.
  ex.Respond(204, "", "");
  ex.response().erase(boost::beast::http::field::content_type);
}

boost::asio::awaitable<void> AuthService::Me(http::Exchange& ex) {
  const std::string user_id = service::RequireUser(ex, identity_);
  if (!service::IsValidId(user_id)) throw http::HttpError(404, "user not found");
  auto user = co_await db_.Transact(ex.context(), [&](storage::Session& s) {
    return s.Query(kFindUserById, {user_id}).FirstRow();
  });
  if (!user) throw http::HttpError(404, "user not found");
  ex.RespondJson(200,
                 json::serialize(json::object{{"id", user->Text(0)}, {"email", user->Text(1)}}));
  ex.response().set(boost::beast::http::field::cache_control, "no-store");
}

boost::asio::awaitable<void> AuthService::Jwks(http::Exchange& ex) {
  const auto keys = co_await keys_.Current(ex.context());
  ex.RespondJson(200, keys_.Jwks(*keys, options_.Now()));
  // Short, so that verifiers see a new key soon after it is created.
  ex.response().set(boost::beast::http::field::cache_control, "public, max-age=60");
}

boost::asio::awaitable<std::int64_t> AuthService::PurgeRefreshTokens(
    const telemetry::RequestContext& context, std::int64_t now) {
  const std::int64_t cutoff = now - kExpiredFamilyMargin;
  co_return co_await db_.Transact(context, [&](storage::Session& s) {
    return s.Query(kPurgeRefreshTokens, {cutoff}).affected;
  });
}

AuthService& InstallAuth(service::ServiceHost& host, storage::Database& db, AuthOptions options) {
  auto& auth = host.Make<AuthService>(db, host.blocking(), host.identity(), host.telemetry(),
                                      std::move(options));
  auth.Prepare();
  host.Route(
      "POST", "/register", [&auth](http::Exchange& ex) { return auth.Register(ex); },
      SmallJsonBody());
  host.Route(
      "POST", "/login", [&auth](http::Exchange& ex) { return auth.Login(ex); }, SmallJsonBody());
  host.Route(
      "POST", "/refresh", [&auth](http::Exchange& ex) { return auth.Refresh(ex); },
      SmallJsonBody());
  host.Route(
      "POST", "/logout", [&auth](http::Exchange& ex) { return auth.Logout(ex); }, SmallJsonBody());
  host.Route("GET", "/me", [&auth](http::Exchange& ex) { return auth.Me(ex); });
  host.Route("GET", "/.well-known/jwks.json",
             [&auth](http::Exchange& ex) { return auth.Jwks(ex); });
  return auth;
}

}  // namespace vigil::auth

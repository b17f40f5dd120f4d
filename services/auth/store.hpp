// The auth service's tables (their migrations) and every statement the API runs on
// users and refresh tokens; the signing keys' own statements live with them (keys.hpp).
// Knows SQL and transactions, nothing of HTTP. Valid on SQLite and PostgreSQL.
//
//   users           id PK, email UNIQUE (lowercased, trimmed), password_hash (PHC argon2id)
//   refresh_tokens  token_hash PK (SHA-256 hex; the token itself is never stored),
//                   family_id, user_id, expires_at, used_at, revoked_at; indexed on
//                   (family_id, expires_at) (reuse revokes a family) and on expires_at
//                   (the retention purge)
//   signing_keys    kid PK, public_key, secret_key (base64url), created_at (indexed)
//
//   db.Migrate("auth", auth::Migrations());
//   auth::AuthStore store(db);
//   std::optional<auth::PasswordRecord> record = co_await store.FindByEmail(ctx, email);
//
// Times are Unix seconds on the caller's clock (AuthOptions::Now). Each call is one
// transaction and throws what storage::Database::Transact throws when the database fails.
//
// Thread-safety: an AuthStore may be used from every worker at once (the Database is
// safe for that); Migrations() is immutable data.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/context.hpp>

#include "model.hpp"

namespace vigil::auth {

// The auth schema, for Database::Migrate("auth", ...).
std::span<const storage::Migration> Migrations();

// What login needs of an account.
struct PasswordRecord {
  std::string user_id;
  std::string password_hash;
};

// How RotateRefreshToken found the token it was given.
enum class RefreshOutcome {
  kRotated,  // spent, and the next token of its family stored
  kUnknown,  // no such token (never issued, or purged)
  kExpired,  // past its expiry; nothing changed
  kReused,   // already spent: its family is now revoked
  kRevoked,  // its family was revoked (logout, earlier reuse): revoked again, harmlessly
};

struct Rotation {
  RefreshOutcome outcome = RefreshOutcome::kUnknown;
  std::string user_id;    // empty for kUnknown
  std::string family_id;  // empty for kUnknown
};

class AuthStore {
 public:
  // `db` must have the auth migrations applied and outlive the store.
  explicit AuthStore(storage::Database& db) noexcept : db_(db) {}

  // True when an account has this (normalised) email.
  boost::asio::awaitable<bool> EmailTaken(const telemetry::RequestContext& context,
                                          std::string_view email);
  // Inserts an account; false when the email is taken (the UNIQUE constraint decides
  // between two registrations racing).
  boost::asio::awaitable<bool> InsertUser(const telemetry::RequestContext& context,
                                          const User& user, std::string_view password_hash,
                                          std::int64_t now);
  // The account with this (normalised) email, or with this id; nullopt when there is none.
  boost::asio::awaitable<std::optional<PasswordRecord>> FindByEmail(
      const telemetry::RequestContext& context, std::string_view email);
  boost::asio::awaitable<std::optional<User>> FindById(const telemetry::RequestContext& context,
                                                       std::string_view user_id);
  // Replaces the account's hash by `new_hash` unless it is no longer `old_hash` (the
  // password changed meanwhile): compare-and-set.
  boost::asio::awaitable<void> ReplacePasswordHash(const telemetry::RequestContext& context,
                                                   std::string_view user_id,
                                                   std::string_view old_hash,
                                                   std::string_view new_hash);

  // Stores the first token of a new family (a login).
  boost::asio::awaitable<void> InsertRefreshToken(const telemetry::RequestContext& context,
                                                  std::string_view token_hash,
                                                  std::string_view family_id,
                                                  std::string_view user_id,
                                                  std::int64_t expires_at);
  // In one transaction: spends the token hashed `token_hash` and stores `next_hash` in its
  // family, expiring at `next_expires_at`, if the token is live at `now`; otherwise
  // reports why not. A spent or revoked token revokes its whole family (that commits), and
  // of two rotations of one token racing, one is kRotated and the other kReused.
  boost::asio::awaitable<Rotation> RotateRefreshToken(const telemetry::RequestContext& context,
                                                      std::string_view token_hash,
                                                      std::string_view next_hash, std::int64_t now,
                                                      std::int64_t next_expires_at);
  // Revokes the family of the token hashed `token_hash`, if there is one.
  boost::asio::awaitable<void> RevokeFamilyOf(const telemetry::RequestContext& context,
                                              std::string_view token_hash, std::int64_t now);

  // Deletes, in one transaction, up to service::kPurgeBatch rows of families whose newest
  // token expired before `cutoff`; returns the rows deleted. A family may lose its rows
  // over several batches; what is left answers a replay like nothing would.
  boost::asio::awaitable<std::int64_t> PurgeExpiredFamilies(
      const telemetry::RequestContext& context, std::int64_t cutoff);

 private:
  storage::Database& db_;
};

}  // namespace vigil::auth

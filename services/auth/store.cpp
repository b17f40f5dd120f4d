#include "store.hpp"

#include <array>
#include <vigil/service/retention.hpp>

namespace vigil::auth {

namespace {

// Every query path has an index: users by id (PK) and by email (UNIQUE), refresh tokens
// by hash (PK), by family (revocation) and by expiry (the retention purge), signing keys
// by created_at (the newest ones, and the purge of retired ones).
constexpr std::array<storage::Migration, 2> kMigrations = {{
    {1, "create users, refresh_tokens, signing_keys",
     "CREATE TABLE users ("
     " id TEXT PRIMARY KEY,"
     " email TEXT NOT NULL UNIQUE,"
     " password_hash TEXT NOT NULL,"
     " created_at BIGINT NOT NULL);"
     "CREATE TABLE refresh_tokens ("
     " token_hash TEXT PRIMARY KEY,"
     " family_id TEXT NOT NULL,"
     " user_id TEXT NOT NULL,"
     " expires_at BIGINT NOT NULL,"
     " used_at BIGINT NULL,"
     " revoked_at BIGINT NULL);"
     "CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);"
     "CREATE TABLE signing_keys ("
     " kid TEXT PRIMARY KEY,"
     " public_key TEXT NOT NULL,"
     " secret_key TEXT NOT NULL,"
     " created_at BIGINT NOT NULL);"
     "CREATE INDEX signing_keys_created_at ON signing_keys (created_at)"},
    // The purge walks expired rows in expires_at order and asks, for each, whether its
    // family still has a token that has not expired: one range scan plus one probe of
    // (family_id, expires_at) per row, instead of grouping the whole table by family on
    // every batch. The composite index also serves revocation by family, so it replaces
    // the family_id one rather than adding a third index to every insert.
    {2, "index refresh_tokens for the retention purge",
     "DROP INDEX refresh_tokens_family_id;"
     "CREATE INDEX refresh_tokens_family_id_expires_at ON refresh_tokens (family_id, expires_at);"
     "CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at)"},
}};

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

// Up to service::kPurgeBatch rows of families whose newest token expired before $1. Every
// row of such a family has expired, so the candidates come from a range of the expires_at
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

}  // namespace

std::span<const storage::Migration> Migrations() { return kMigrations; }

boost::asio::awaitable<bool> AuthStore::EmailTaken(const telemetry::RequestContext& context,
                                                   std::string_view email) {
  co_return co_await db_.Transact(context, [&](storage::Session& s) {
    return s.Query(kFindUserByEmail, {email}).FirstRow().has_value();
  });
}

boost::asio::awaitable<bool> AuthStore::InsertUser(const telemetry::RequestContext& context,
                                                   const User& user, std::string_view password_hash,
                                                   std::int64_t now) {
  bool inserted = true;
  try {
    co_await db_.Transact(context, [&](storage::Session& s) {
      s.Query(kInsertUser, {user.id, user.email, password_hash, now});
    });
  } catch (const storage::ConstraintViolation&) {
    inserted = false;
  }
  co_return inserted;
}

boost::asio::awaitable<std::optional<PasswordRecord>> AuthStore::FindByEmail(
    const telemetry::RequestContext& context, std::string_view email) {
  co_return co_await db_.Transact(
      context, [&](storage::Session& s) -> std::optional<PasswordRecord> {
        auto row = s.Query(kFindUserByEmail, {email}).FirstRow();
        if (!row) return std::nullopt;
        return PasswordRecord{std::string(row->Text(0)), std::string(row->Text(1))};
      });
}

boost::asio::awaitable<std::optional<User>> AuthStore::FindById(
    const telemetry::RequestContext& context, std::string_view user_id) {
  co_return co_await db_.Transact(context, [&](storage::Session& s) -> std::optional<User> {
    auto row = s.Query(kFindUserById, {user_id}).FirstRow();
    if (!row) return std::nullopt;
    return User{std::string(row->Text(0)), std::string(row->Text(1))};
  });
}

boost::asio::awaitable<void> AuthStore::ReplacePasswordHash(
    const telemetry::RequestContext& context, std::string_view user_id, std::string_view old_hash,
    std::string_view new_hash) {
  co_await db_.Transact(context, [&](storage::Session& s) {
    s.Query(kRehashUser, {new_hash, user_id, old_hash});
  });
}

boost::asio::awaitable<void> AuthStore::InsertRefreshToken(const telemetry::RequestContext& context,
                                                           std::string_view token_hash,
                                                           std::string_view family_id,
                                                           std::string_view user_id,
                                                           std::int64_t expires_at) {
  co_await db_.Transact(context, [&](storage::Session& s) {
    s.Query(kInsertRefreshToken, {token_hash, family_id, user_id, expires_at});
  });
}

boost::asio::awaitable<Rotation> AuthStore::RotateRefreshToken(
    const telemetry::RequestContext& context, std::string_view token_hash,
    std::string_view next_hash, std::int64_t now, std::int64_t next_expires_at) {
  co_return co_await db_.Transact(context, [&](storage::Session& s) {
    Rotation r;
    auto row = s.Query(kFindRefreshToken, {token_hash}).FirstRow();
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
      r.outcome = used ? RefreshOutcome::kReused : RefreshOutcome::kRevoked;
      return r;
    }
    if (row->Int(2) <= now) {
      r.outcome = RefreshOutcome::kExpired;
      return r;
    }
    if (s.Query(kSpendRefreshToken, {now, token_hash}).affected != 1) {
      // Another request spent it between our read and our write.
      s.Query(kRevokeFamily, {now, r.family_id});
      r.outcome = RefreshOutcome::kReused;
      return r;
    }
    s.Query(kInsertRefreshToken, {next_hash, r.family_id, r.user_id, next_expires_at});
    r.outcome = RefreshOutcome::kRotated;
    return r;
  });
}

boost::asio::awaitable<void> AuthStore::RevokeFamilyOf(const telemetry::RequestContext& context,
                                                       std::string_view token_hash,
                                                       std::int64_t now) {
  co_await db_.Transact(context, [&](storage::Session& s) {
    s.Query(kRevokeFamilyOfToken, {now, token_hash});
  });
}

boost::asio::awaitable<std::int64_t> AuthStore::PurgeExpiredFamilies(
    const telemetry::RequestContext& context, std::int64_t cutoff) {
  co_return co_await db_.Transact(context, [&](storage::Session& s) {
    return s.Query(kPurgeRefreshTokens, {cutoff}).affected;
  });
}

}  // namespace vigil::auth

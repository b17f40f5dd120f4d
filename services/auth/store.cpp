#include "store.hpp"

#include <array>

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

}  // namespace

std::span<const storage::Migration> Migrations() { return kMigrations; }

}  // namespace vigil::auth

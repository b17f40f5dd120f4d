#include "schema.hpp"

#include <array>

namespace vigil::auth {

namespace {

// Every query path has an index: users by id (PK) and by email (UNIQUE), refresh tokens
// by hash (PK) and by family (revocation), signing keys by created_at (the newest ones).
constexpr std::array<storage::Migration, 1> kMigrations = {{
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
}};

}  // namespace

std::span<const storage::Migration> Migrations() { return kMigrations; }

}  // namespace vigil::auth

// The auth service's tables, as storage migrations valid on SQLite and PostgreSQL.
//
//   users           id PK, email UNIQUE (lowercased, trimmed), password_hash (PHC argon2id)
//   refresh_tokens  token_hash PK (SHA-256 hex; the token itself is never stored),
//                   family_id, user_id, expires_at, used_at, revoked_at; indexed on
//                   (family_id, expires_at) (reuse revokes a family) and on expires_at
//                   (the retention purge)
//   signing_keys    kid PK, public_key, secret_key (base64url), created_at (indexed)
//
//   db.Migrate("auth", auth::Migrations());
//
// Thread-safety: immutable data.
#pragma once

#include <span>
#include <vigil/storage/database.hpp>

namespace vigil::auth {

std::span<const storage::Migration> Migrations();

}  // namespace vigil::auth

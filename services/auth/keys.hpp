// The Ed25519 keys that sign access tokens: stored in the database so that every replica
// signs with the same key, cached in memory, rotated on schedule.
//
// The newest key signs while it is younger than AuthOptions::key_rotation; the first
// request after that creates the next one. The JWKS publishes every key younger than
// key_rotation + access_ttl, so a token stays verifiable for its whole life after its key
// stopped signing. A new key's kid is derived from the rotation period it starts in, so
// replicas that rotate at the same moment insert the same kid (ON CONFLICT DO NOTHING)
// and all sign with the one that won, instead of each publishing its own.
//
// At rest the private half is encrypted (XChaCha20-Poly1305, the kid as associated data)
// with a storage key that auth derives from VIGIL_INTERNAL_SECRET: a copy of the
// database alone does not let anyone sign tokens. Stored as "v1.<base64url(nonce |
// ciphertext)>". A row that decrypts only under the key derived from
// VIGIL_INTERNAL_SECRET_PREVIOUS, or was written before encryption (plain base64url), is
// used and sealed again under the current key. A row that does not decrypt at all (the
// secret changed without the previous one given) is skipped with a warn line, like a
// malformed one; if that leaves no key that signs, a new key is created and published.
//
// Keys past the publication window serve no purpose any more (no token they signed is
// still valid) and PurgeRetired() deletes them, after a margin for replicas whose clocks
// disagree; the newest key is never deleted.
//
//   auth::SigningKeys keys(db, options, {identity.DeriveKey(SigningKeys::kStorageKeyPurpose),
//                                        identity.DerivePreviousKey(...)}, log);
//   keys.Prepare();                                          // at start-up
//   auto current = co_await keys.Current(ex.context());      // current->signer
//
// Thread-safety: all methods may be called from any thread or coroutine at once.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/service/jwt.hpp>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/log.hpp>

#include "options.hpp"

namespace vigil::auth {

// The keys that seal signing keys at rest: the current one and, while secrets change,
// the previous one.
struct StorageKeys {
  std::array<unsigned char, 32> current;
  std::optional<std::array<unsigned char, 32>> previous;
};

class SigningKeys {
 public:
  struct StoredKey {
    service::VerificationKey key;
    std::int64_t created_at = 0;
  };
  // What was read from the database at `loaded_at`: the key that signs, and every key
  // still within the publication window (newest first).
  struct Snapshot {
    std::shared_ptr<const service::SigningKey> signer;
    std::int64_t signer_created_at = 0;
    std::vector<StoredKey> keys;
    std::int64_t loaded_at = 0;
  };

  // The purpose auth derives its StorageKeys for (IdentitySigner::DeriveKey and
  // DerivePreviousKey).
  static constexpr std::string_view kStorageKeyPurpose = "auth signing keys at rest";

  // `db` must have the auth migrations applied and outlive this object.
  SigningKeys(storage::Database& db, const AuthOptions& options, const StorageKeys& storage_keys,
              telemetry::Logger& log);

  // Loads the keys (creating the first one if the table is empty). Blocking: start-up only.
  void Prepare();
  // The keys now, reloading from the database (and rotating) when the signing key is due
  // or the cache is older than a few minutes.
  boost::asio::awaitable<std::shared_ptr<const Snapshot>> Current(
      const telemetry::RequestContext& context);
  // The JWK Set of the keys published at `now` in `snapshot`.
  std::string Jwks(const Snapshot& snapshot, std::int64_t now) const;

  // How long past the end of its publication a key is kept: replicas whose clocks run
  // behind still publish it for that long by their own clock.
  static constexpr std::int64_t kRetiredKeyMargin = 3600;  // seconds
  // Deletes the keys created at or before `now` - key_rotation - access_ttl -
  // kRetiredKeyMargin, except the newest key. One statement; returns the rows deleted.
  // Throws what Database::Transact throws.
  boost::asio::awaitable<std::int64_t> PurgeRetired(const telemetry::RequestContext& context,
                                                    std::int64_t now);

 private:
  // Runs inside a transaction.
  Snapshot Load(storage::Session& session, std::int64_t now) const;
  bool Fresh(const Snapshot& snapshot, std::int64_t now) const;
  void Store(std::shared_ptr<const Snapshot> snapshot);

  storage::Database& db_;
  const AuthOptions& options_;
  const StorageKeys storage_keys_;
  telemetry::Logger& log_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // guarded by mu_
};

}  // namespace vigil::auth

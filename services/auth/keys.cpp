#include "keys.hpp"

#include <sodium.h>

#include <algorithm>
#include <vigil/service/base64url.hpp>

namespace vigil::auth {

namespace {

// Keys made by other replicas (and keys an operator removed) are noticed within this time
// even when the signing key is not due.
constexpr std::int64_t kMaxCacheAge = 300;

const storage::Statement kSelectKeys{
    "SELECT kid, public_key, secret_key, created_at FROM signing_keys "
    "WHERE created_at > $1 ORDER BY created_at DESC, kid DESC"};
const storage::Statement kInsertKey{
    "INSERT INTO signing_keys (kid, public_key, secret_key, created_at) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO NOTHING"};
// Compare-and-set: replicas re-encrypting the same row at once write one of two values
// that both decrypt to the same key.
const storage::Statement kResealKey{
    "UPDATE signing_keys SET secret_key = $1 WHERE kid = $2 AND secret_key = $3"};
// The second bound keeps the newest key whatever its age: after a long stop it is still
// the one Load() finds before it creates the next.
const storage::Statement kPurgeKeys{
    "DELETE FROM signing_keys WHERE created_at < $1 "
    "AND created_at < (SELECT MAX(created_at) FROM signing_keys)"};

using StorageKey = std::array<unsigned char, 32>;
using SecretKey = std::array<unsigned char, 64>;

constexpr std::string_view kSealedPrefix = "v1.";
constexpr std::size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagSize = crypto_aead_xchacha20poly1305_ietf_ABYTES;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// "v1." + base64url(nonce | ciphertext and tag), bound to the row's kid.
std::string Seal(const service::SigningKey& key, const StorageKey& storage_key) {
  std::string sealed(kNonceSize + key.secret_key.size() + kTagSize, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(out, kNonceSize);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + kNonceSize, &written, key.secret_key.data(),
                                             key.secret_key.size(), Bytes(key.kid), key.kid.size(),
                                             nullptr, out, storage_key.data());
  return std::string(kSealedPrefix) + service::Base64UrlEncode(sealed);
}

enum class Opened { kOk, kMalformed, kWrongKey };

// The secret key stored for `kid`: sealed, or plain base64url in rows written before keys
// were encrypted.
Opened Open(std::string_view stored, std::string_view kid, const StorageKey& storage_key,
            SecretKey& out) {
  if (!stored.starts_with(kSealedPrefix)) {
    auto plain = service::Base64UrlDecode(stored);
    if (!plain || plain->size() != out.size()) return Opened::kMalformed;
    std::copy(plain->begin(), plain->end(), out.begin());
    sodium_memzero(plain->data(), plain->size());
    return Opened::kOk;
  }
  const auto sealed = service::Base64UrlDecode(stored.substr(kSealedPrefix.size()));
  if (!sealed || sealed->size() != kNonceSize + out.size() + kTagSize) return Opened::kMalformed;
  const unsigned char* in = Bytes(*sealed);
  unsigned long long length = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &length, nullptr, in + kNonceSize,
                                                 sealed->size() - kNonceSize, Bytes(kid),
                                                 kid.size(), in, storage_key.data()) != 0) {
    return Opened::kWrongKey;
  }
  return Opened::kOk;
}

struct Row {
  service::SigningKey key;
  std::int64_t created_at;
};

// Rows that do not decode (a truncated copy, a manual edit) or do not decrypt (another
// VIGIL_INTERNAL_SECRET) are skipped rather than failing every token request. A row sealed
// under the previous secret, or stored plain before keys were encrypted, is sealed again
// under the current one.
std::vector<Row> SelectKeys(storage::Session& session, std::int64_t cutoff,
                            const StorageKeys& storage_keys, telemetry::Logger& log) {
  std::vector<Row> rows;
  for (const storage::Row& row : session.Query(kSelectKeys, {cutoff}).rows) {
    const std::string_view kid = row.Text(0);
    const std::string_view stored = row.Text(2);
    const auto public_key = service::Base64UrlDecode(row.Text(1));
    Row decoded{{}, row.Int(3)};
    Opened opened = Open(stored, kid, storage_keys.current, decoded.key.secret_key);
    bool reseal = opened == Opened::kOk && !stored.starts_with(kSealedPrefix);
    if (opened == Opened::kWrongKey && storage_keys.previous) {
      opened = Open(stored, kid, *storage_keys.previous, decoded.key.secret_key);
      reseal = opened == Opened::kOk;
    }
    if (opened == Opened::kWrongKey) {
      log.Warn(
          "skipping signing key that does not decrypt: VIGIL_INTERNAL_SECRET is not the "
          "one it was stored with",
          {{"auth.kid", kid}});
      continue;
    }
    if (!public_key || public_key->size() != decoded.key.public_key.size() ||
        opened != Opened::kOk) {
      log.Warn("skipping malformed signing key", {{"auth.kid", kid}});
      continue;
    }
    decoded.key.kid = std::string(kid);
    std::copy(public_key->begin(), public_key->end(), decoded.key.public_key.begin());
    if (reseal && session.Query(kResealKey, {Seal(decoded.key, storage_keys.current), kid, stored})
                          .affected == 1) {
      log.Info("signing key sealed under the current VIGIL_INTERNAL_SECRET", {{"auth.kid", kid}});
    }
    rows.push_back(std::move(decoded));
  }
  return rows;
}

// False when a key with this kid already exists.
bool InsertKey(storage::Session& session, const service::SigningKey& key,
               const StorageKeys& storage_keys, std::int64_t now) {
  const std::string public_key = service::Base64UrlEncode(key.public_key);
  return session.Query(kInsertKey, {key.kid, public_key, Seal(key, storage_keys.current), now})
             .affected == 1;
}

}  // namespace

SigningKeys::SigningKeys(storage::Database& db, const AuthOptions& options,
                         const StorageKeys& storage_keys, telemetry::Logger& log)
    : db_(db), options_(options), storage_keys_(storage_keys), log_(log) {}

SigningKeys::Snapshot SigningKeys::Load(storage::Session& session, std::int64_t now) const {
  const std::int64_t rotation = options_.key_rotation;
  const std::int64_t cutoff = now - rotation - options_.access_ttl;
  std::vector<Row> rows = SelectKeys(session, cutoff, storage_keys_, log_);
  auto signs = [&](const std::vector<Row>& r) {
    return !r.empty() && r.front().created_at > now - rotation;
  };
  if (!signs(rows)) {
    // Every replica that finds the key due in the same period computes the same kid.
    const std::int64_t period_start = now - now % rotation;
    service::SigningKey key = service::SigningKey::Generate("k" + std::to_string(period_start) +
                                                            "r" + std::to_string(rotation));
    bool inserted = InsertKey(session, key, storage_keys_, now);
    rows = SelectKeys(session, cutoff, storage_keys_, log_);
    if (!signs(rows)) {
      // The kid was taken by a key that no longer signs (the clock went back): use a
      // kid nobody else can have.
      std::array<unsigned char, 9> random{};
      randombytes_buf(random.data(), random.size());
      key.kid = "k" + std::to_string(now) + "-" + service::Base64UrlEncode(random);
      inserted = InsertKey(session, key, storage_keys_, now);
      rows = SelectKeys(session, cutoff, storage_keys_, log_);
      if (!signs(rows)) throw storage::DatabaseError("the new signing key cannot be read back");
    }
    if (inserted) log_.Info("signing key created", {{"auth.kid", key.kid}});
  }
  Snapshot snapshot;
  snapshot.loaded_at = now;
  snapshot.signer = std::make_shared<const service::SigningKey>(rows.front().key);
  snapshot.signer_created_at = rows.front().created_at;
  snapshot.keys.reserve(rows.size());
  for (const Row& row : rows) {
    snapshot.keys.push_back({service::VerificationKey::From(row.key), row.created_at});
  }
  return snapshot;
}

bool SigningKeys::Fresh(const Snapshot& snapshot, std::int64_t now) const {
  return now < snapshot.signer_created_at + options_.key_rotation &&
         now - snapshot.loaded_at < std::min(kMaxCacheAge, options_.key_rotation) &&
         now >= snapshot.loaded_at;
}

void SigningKeys::Store(std::shared_ptr<const Snapshot> snapshot) {
  std::lock_guard lock(mu_);
  if (!snapshot_ || snapshot->loaded_at >= snapshot_->loaded_at) snapshot_ = std::move(snapshot);
}

void SigningKeys::Prepare() {
  const std::int64_t now = options_.Now();
  Store(std::make_shared<const Snapshot>(db_.TransactBlocking(
      telemetry::RequestContext{}, [&](storage::Session& s) { return Load(s, now); })));
}

boost::asio::awaitable<std::shared_ptr<const SigningKeys::Snapshot>> SigningKeys::Current(
    const telemetry::RequestContext& context) {
  const std::int64_t now = options_.Now();
  std::shared_ptr<const Snapshot> cached;
  {
    std::lock_guard lock(mu_);
    cached = snapshot_;
  }
  if (cached && Fresh(*cached, now)) co_return cached;
  // Requests arriving together when the key is due each reload; the deterministic kid
  // makes that harmless, and it happens once per rotation.
  auto loaded = std::make_shared<const Snapshot>(
      co_await db_.Transact(context, [&](storage::Session& s) { return Load(s, now); }));
  Store(loaded);
  co_return loaded;
}

boost::asio::awaitable<std::int64_t> SigningKeys::PurgeRetired(
    const telemetry::RequestContext& context, std::int64_t now) {
  // Load() reads and Jwks() publishes only keys created after
  // now - key_rotation - access_ttl; the current signer is younger than now - key_rotation.
  const std::int64_t cutoff =
      now - options_.key_rotation - options_.access_ttl - kRetiredKeyMargin + 1;
  co_return co_await db_.Transact(
      context, [&](storage::Session& s) { return s.Query(kPurgeKeys, {cutoff}).affected; });
}

std::string SigningKeys::Jwks(const Snapshot& snapshot, std::int64_t now) const {
  service::KeySet set;
  for (const StoredKey& stored : snapshot.keys) {
    if (stored.created_at > now - options_.key_rotation - options_.access_ttl) set.Add(stored.key);
  }
  return set.ToJwks();
}

}  // namespace vigil::auth

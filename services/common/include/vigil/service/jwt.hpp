// JSON Web Tokens signed with Ed25519 (JWS "EdDSA", RFC 8037) and the JWK Set that
// publishes the verification keys. The auth service signs access tokens with the newest
// SigningKey; the gateway fetches the JWKS, builds a KeySet and verifies every bearer
// token. Verification never throws: any input, however malformed, yields a JwtError.
//
//   auto key = vigil::service::SigningKey::Generate("k1");
//   std::string token = vigil::service::SignJwt(claims, key);
//   auto result = vigil::service::VerifyJwt(
//       token, key_set, {.issuer = "vigil-auth", .audience = "vigil", .now = now});
//
// Thread-safety: SigningKey, VerificationKey, Claims and KeySet are values; concurrent
// const use (Find, ToJwks, VerifyJwt) is safe, mutation needs external synchronization.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vigil::service {

// An Ed25519 key pair. `secret_key` is libsodium's 64-byte form (seed || public key).
struct SigningKey {
  std::string kid;
  std::array<unsigned char, 32> public_key{};
  std::array<unsigned char, 64> secret_key{};

  // A fresh random key pair with the given key id.
  static SigningKey Generate(std::string kid);
};

// The public half of a SigningKey, as published in the JWKS.
struct VerificationKey {
  std::string kid;
  std::array<unsigned char, 32> public_key{};

  static VerificationKey From(const SigningKey& key) { return {key.kid, key.public_key}; }
};

// The keys a verifier trusts, looked up by kid.
// Thread-safety: a value; const members are safe concurrently, Add is not.
class KeySet {
 public:
  // Adds or replaces the key with the same kid.
  void Add(VerificationKey key);
  // The key with this kid, or nullptr.
  const VerificationKey* Find(std::string_view kid) const;
  std::size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  const std::vector<VerificationKey>& keys() const { return keys_; }

  // {"keys":[{"kty":"OKP","crv":"Ed25519","kid":...,"x":...,"alg":"EdDSA","use":"sig"}]}
  std::string ToJwks() const;
  // Parses a JWK Set. Keys of another type or curve (RSA, EC, X25519, ...) are skipped;
  // a document that is not a JWK Set or an OKP/Ed25519 key with a missing kid or a bad
  // "x" makes it fail with nullopt and a reason in *error (when error is not null).
  static std::optional<KeySet> FromJwks(std::string_view json, std::string* error = nullptr);

 private:
  std::vector<VerificationKey> keys_;
};

// The registered claims Vigil uses; all times are Unix seconds.
struct Claims {
  std::string subject;          // sub
  std::string issuer;           // iss
  std::string audience;         // aud (on verification: the audience that matched)
  std::string jwt_id;           // jti
  std::int64_t issued_at = 0;   // iat
  std::int64_t not_before = 0;  // nbf (0: absent)
  std::int64_t expires_at = 0;  // exp
};

// Signs `claims` with `key`: header {"alg":"EdDSA","typ":"JWT","kid":key.kid}.
// Empty string claims are omitted, as is nbf when it is 0.
std::string SignJwt(const Claims& claims, const SigningKey& key);

enum class JwtError {
  kMalformed,
  kUnsupportedAlgorithm,
  kUnknownKey,
  kBadSignature,
  kExpired,
  kNotYetValid,
  kWrongIssuer,
  kWrongAudience,
};

// A short, fixed description ("token expired", ...) that reveals nothing about the keys
// and is safe to send to the client in a 401 problem detail.
std::string_view Describe(JwtError error);

struct VerifyOptions {
  std::string issuer;                // required value of iss
  std::string audience;              // aud must equal it or be an array containing it
  std::int64_t now = 0;              // Unix seconds
  std::int64_t leeway_seconds = 30;  // clock skew tolerated on exp and nbf
};

// Tokens longer than this are rejected as malformed before any decoding.
inline constexpr std::size_t kMaxJwtBytes = 8 * 1024;

// Verifies a compact JWS: alg must be "EdDSA" (checked before the signature), kid must name
// a key in `keys`, the signature must cover "header.payload", exp is required, nbf optional,
// iss and aud must match `options`. Never throws.
std::variant<Claims, JwtError> VerifyJwt(std::string_view token, const KeySet& keys,
                                         const VerifyOptions& options);

}  // namespace vigil::service

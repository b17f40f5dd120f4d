#include "vigil/service/jwt.hpp"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <boost/json.hpp>

#include "vigil/service/base64url.hpp"

namespace vigil::service {
namespace {

namespace json = boost::json;

void EnsureSodium() {
  // sodium_init is idempotent and thread-safe; the static makes later calls free.
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium failed to initialise");
}

// Parses JSON that must be an object; nullopt for anything else. Never throws.
std::optional<json::object> ParseObject(std::string_view text) {
  try {
    json::error_code ec;
    json::value value = json::parse(text, ec);
    if (ec || !value.is_object()) return std::nullopt;
    return std::move(value.as_object());
  } catch (...) {
    return std::nullopt;
  }
}

const json::string* StringMember(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value == nullptr ? nullptr : value->if_string();
}

// A NumericDate (RFC 7519 section 2): integer or finite number of seconds, clamped to int64.
std::optional<std::int64_t> NumericDate(const json::value& value) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  if (const auto* i = value.if_int64()) return *i;
  if (const auto* u = value.if_uint64()) {
    return *u > static_cast<std::uint64_t>(kMax) ? kMax : static_cast<std::int64_t>(*u);
  }
  if (const auto* d = value.if_double()) {
    if (!std::isfinite(*d)) return std::nullopt;
    if (*d >= 9.2e18) return kMax;
    if (*d <= -9.2e18) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(std::floor(*d));
  }
  return std::nullopt;
}

bool AudienceMatches(const json::value& aud, std::string_view wanted) {
  if (const auto* s = aud.if_string()) return *s == wanted;
  if (const auto* array = aud.if_array()) {
    return std::any_of(array->begin(), array->end(), [&](const json::value& v) {
      const auto* s = v.if_string();
      return s != nullptr && *s == wanted;
    });
  }
  return false;
}

std::variant<Claims, JwtError> Verify(std::string_view token, const KeySet& keys,
                                      const VerifyOptions& options) {
  if (token.empty() || token.size() > kMaxJwtBytes) return JwtError::kMalformed;
  const std::size_t first_dot = token.find('.');
  if (first_dot == std::string_view::npos) return JwtError::kMalformed;
  const std::size_t second_dot = token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos) return JwtError::kMalformed;
  if (token.find('.', second_dot + 1) != std::string_view::npos) return JwtError::kMalformed;

  const std::string_view header_b64 = token.substr(0, first_dot);
  const std::string_view payload_b64 = token.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view signature_b64 = token.substr(second_dot + 1);

  const std::optional<std::string> header_text = Base64UrlDecode(header_b64);
  if (!header_text) return JwtError::kMalformed;
  const std::optional<json::object> header = ParseObject(*header_text);
  if (!header) return JwtError::kMalformed;

  // The algorithm is decided by the verifier, not the token: anything but EdDSA (including
  // "none" and HMAC algorithms that would use a public key as a secret) stops here.
  const json::string* alg = StringMember(*header, "alg");
  if (alg == nullptr) return JwtError::kMalformed;
  if (*alg != "EdDSA") return JwtError::kUnsupportedAlgorithm;
  // No header extension is understood, so a "crit" list can never be honoured (RFC 7515 4.1.11).
  if (header->contains("crit")) return JwtError::kMalformed;

  const json::value* kid_value = header->if_contains("kid");
  if (kid_value == nullptr) return JwtError::kUnknownKey;
  const json::string* kid = kid_value->if_string();
  if (kid == nullptr) return JwtError::kMalformed;
  const VerificationKey* key = keys.Find(std::string_view(kid->data(), kid->size()));
  if (key == nullptr) return JwtError::kUnknownKey;

  const std::optional<std::string> signature = Base64UrlDecode(signature_b64);
  if (!signature) return JwtError::kMalformed;
  if (signature->size() != crypto_sign_BYTES) return JwtError::kBadSignature;
  const std::string_view signed_part = token.substr(0, second_dot);
  EnsureSodium();
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature->data()),
                                  reinterpret_cast<const unsigned char*>(signed_part.data()),
                                  signed_part.size(), key->public_key.data()) != 0) {
    return JwtError::kBadSignature;
  }

  // The payload is only parsed once it is known to come from a trusted key.
  const std::optional<std::string> payload_text = Base64UrlDecode(payload_b64);
  if (!payload_text) return JwtError::kMalformed;
  const std::optional<json::object> payload = ParseObject(*payload_text);
  if (!payload) return JwtError::kMalformed;

  Claims claims;
  const json::value* exp = payload->if_contains("exp");
  if (exp == nullptr) return JwtError::kMalformed;
  const std::optional<std::int64_t> expires_at = NumericDate(*exp);
  if (!expires_at) return JwtError::kMalformed;
  claims.expires_at = *expires_at;
  if (const json::value* nbf = payload->if_contains("nbf")) {
    const std::optional<std::int64_t> not_before = NumericDate(*nbf);
    if (!not_before) return JwtError::kMalformed;
    claims.not_before = *not_before;
  }
  if (const json::value* iat = payload->if_contains("iat")) {
    const std::optional<std::int64_t> issued_at = NumericDate(*iat);
    if (!issued_at) return JwtError::kMalformed;
    claims.issued_at = *issued_at;
  }
  const std::int64_t leeway = std::clamp<std::int64_t>(options.leeway_seconds, 0, 86400);
  if (claims.expires_at <= options.now - leeway) return JwtError::kExpired;
  if (payload->contains("nbf") && claims.not_before > options.now + leeway) {
    return JwtError::kNotYetValid;
  }

  const json::string* iss = StringMember(*payload, "iss");
  if (iss == nullptr || *iss != options.issuer) return JwtError::kWrongIssuer;
  claims.issuer = std::string(iss->data(), iss->size());

  const json::value* aud = payload->if_contains("aud");
  if (aud == nullptr || !AudienceMatches(*aud, options.audience)) return JwtError::kWrongAudience;
  claims.audience = options.audience;

  if (const json::value* sub = payload->if_contains("sub")) {
    const json::string* s = sub->if_string();
    if (s == nullptr) return JwtError::kMalformed;
    claims.subject = std::string(s->data(), s->size());
  }
  if (const json::value* jti = payload->if_contains("jti")) {
    const json::string* s = jti->if_string();
    if (s == nullptr) return JwtError::kMalformed;
    claims.jwt_id = std::string(s->data(), s->size());
  }
  return claims;
}

}  // namespace

SigningKey SigningKey::Generate(std::string kid) {
  EnsureSodium();
  SigningKey key;
  key.kid = std::move(kid);
  crypto_sign_keypair(key.public_key.data(), key.secret_key.data());
  return key;
}

void KeySet::Add(VerificationKey key) {
  for (VerificationKey& existing : keys_) {
    if (existing.kid == key.kid) {
      existing = std::move(key);
      return;
    }
  }
  keys_.push_back(std::move(key));
}

const VerificationKey* KeySet::Find(std::string_view kid) const {
  for (const VerificationKey& key : keys_) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

std::string KeySet::ToJwks() const {
  json::array list;
  list.reserve(keys_.size());
  for (const VerificationKey& key : keys_) {
    list.push_back(json::object{{"kty", "OKP"},
                                {"crv", "Ed25519"},
                                {"kid", key.kid},
                                {"x", Base64UrlEncode(key.public_key)},
                                {"alg", "EdDSA"},
                                {"use", "sig"}});
  }
  return json::serialize(json::object{{"keys", std::move(list)}});
}

std::optional<KeySet> KeySet::FromJwks(std::string_view text, std::string* error) {
  auto fail = [error](std::string reason) -> std::optional<KeySet> {
    if (error != nullptr) *error = std::move(reason);
    return std::nullopt;
  };
  const std::optional<json::object> document = ParseObject(text);
  if (!document) return fail("JWKS is not a JSON object");
  const json::value* list = document->if_contains("keys");
  if (list == nullptr || !list->is_array()) return fail("JWKS has no \"keys\" array");
  KeySet set;
  std::size_t index = 0;
  for (const json::value& entry : list->get_array()) {
    const std::string where = "keys[" + std::to_string(index++) + "]";
    const json::object* jwk = entry.if_object();
    if (jwk == nullptr) return fail(where + " is not an object");
    const json::string* kty = StringMember(*jwk, "kty");
    if (kty == nullptr) return fail(where + " has no \"kty\"");
    const json::string* crv = StringMember(*jwk, "crv");
    // Other key types and curves may share the set (during a migration, say); they are
    // simply not usable here.
    if (*kty != "OKP" || crv == nullptr || *crv != "Ed25519") continue;
    if (const json::string* use = StringMember(*jwk, "use"); use != nullptr && *use != "sig") {
      continue;
    }
    if (const json::string* alg = StringMember(*jwk, "alg"); alg != nullptr && *alg != "EdDSA") {
      continue;
    }
    const json::string* kid = StringMember(*jwk, "kid");
    if (kid == nullptr || kid->empty()) return fail(where + " has no \"kid\"");
    const json::string* x = StringMember(*jwk, "x");
    if (x == nullptr) return fail(where + " has no \"x\"");
    const std::optional<std::string> raw = Base64UrlDecode(std::string_view(x->data(), x->size()));
    VerificationKey key;
    if (!raw || raw->size() != key.public_key.size()) {
      return fail(where + " has an invalid \"x\"");
    }
    key.kid = std::string(kid->data(), kid->size());
    std::copy(raw->begin(), raw->end(), key.public_key.begin());
    set.Add(std::move(key));
  }
  return set;
}

std::string SignJwt(const Claims& claims, const SigningKey& key) {
  EnsureSodium();
  const std::string header =
      json::serialize(json::object{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", key.kid}});
  json::object payload;
  if (!claims.issuer.empty()) payload["iss"] = claims.issuer;
  if (!claims.subject.empty()) payload["sub"] = claims.subject;
  if (!claims.audience.empty()) payload["aud"] = claims.audience;
  payload["iat"] = claims.issued_at;
  if (claims.not_before != 0) payload["nbf"] = claims.not_before;
  payload["exp"] = claims.expires_at;
  if (!claims.jwt_id.empty()) payload["jti"] = claims.jwt_id;

  std::string token = Base64UrlEncode(std::string_view(header));
  token += '.';
  token += Base64UrlEncode(std::string_view(json::serialize(payload)));
  std::array<unsigned char, crypto_sign_BYTES> signature{};
  crypto_sign_detached(signature.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                       key.secret_key.data());
  token += '.';
  token += Base64UrlEncode(signature);
  return token;
}

std::string_view Describe(JwtError error) {
  switch (error) {
    case JwtError::kMalformed:
      return "malformed token";
    case JwtError::kUnsupportedAlgorithm:
      return "unsupported token algorithm";
    case JwtError::kUnknownKey:
      return "token signed by an unknown key";
    case JwtError::kBadSignature:
      return "invalid token signature";
    case JwtError::kExpired:
      return "token expired";
    case JwtError::kNotYetValid:
      return "token not yet valid";
    case JwtError::kWrongIssuer:
      return "token has the wrong issuer";
    case JwtError::kWrongAudience:
      return "token has the wrong audience";
  }
  return "invalid token";
}

std::variant<Claims, JwtError> VerifyJwt(std::string_view token, const KeySet& keys,
                                         const VerifyOptions& options) {
  try {
    return Verify(token, keys, options);
  } catch (...) {
    // Only allocation failure can get here; a token that cannot be checked is not valid.
    return JwtError::kMalformed;
  }
}

}  // namespace vigil::service

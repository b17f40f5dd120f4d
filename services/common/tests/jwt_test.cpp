#include "vigil/service/jwt.hpp"

#include <sodium.h>

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "vigil/service/base64url.hpp"

namespace vigil::service {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;

Claims SampleClaims() {
  Claims claims;
  claims.subject = "user:01JD0000000000000000000000";
  claims.issuer = "vigil-auth";
  claims.audience = "vigil";
  claims.jwt_id = "jti-1";
  claims.issued_at = kNow;
  claims.not_before = kNow;
  claims.expires_at = kNow + 900;
  return claims;
}

VerifyOptions Options(std::int64_t now = kNow) {
  return VerifyOptions{.issuer = "vigil-auth", .audience = "vigil", .now = now};
}

KeySet SetOf(const SigningKey& key) {
  KeySet set;
  set.Add(VerificationKey::From(key));
  return set;
}

// A token made from raw JSON, signed with `key` (or with `signature` verbatim when given).
std::string RawToken(std::string_view header, std::string_view payload, const SigningKey& key,
                     std::optional<std::string> signature = std::nullopt) {
  std::string token = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  if (!signature) {
    std::array<unsigned char, crypto_sign_BYTES> sig{};
    crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(token.data()),
                         token.size(), key.secret_key.data());
    signature = Base64UrlEncode(sig);
  }
  return token + "." + *signature;
}

JwtError ErrorOf(const std::variant<Claims, JwtError>& result) {
  EXPECT_TRUE(std::holds_alternative<JwtError>(result));
  return std::holds_alternative<JwtError>(result) ? std::get<JwtError>(result)
                                                  : JwtError::kMalformed;
}

TEST(Base64UrlTest, RoundTripsAndRejectsNonCanonicalInput) {
  EXPECT_EQ(Base64UrlEncode(std::string_view("")), "");
  EXPECT_EQ(Base64UrlEncode(std::string_view("f")), "Zg");
  EXPECT_EQ(Base64UrlEncode(std::string_view("fo")), "Zm8");
  EXPECT_EQ(Base64UrlEncode(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(Base64UrlEncode(std::string_view("\xfb\xff")), "-_8");
  EXPECT_EQ(Base64UrlDecode("-_8"), std::string("\xfb\xff"));
  EXPECT_EQ(Base64UrlDecode(""), std::string());
  EXPECT_EQ(Base64UrlDecode("Zm9v"), std::string("foo"));
  EXPECT_FALSE(Base64UrlDecode("Zg=="));   // padding
  EXPECT_FALSE(Base64UrlDecode("+/8"));    // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm 9v"));  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Z"));      // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh"));     // non-zero trailing bits
  // Bytes outside ASCII, which libsodium 1.0.18 on its own decodes like '_', '-' or
  // letters (found by fuzzing): each value has one spelling only.
  EXPECT_FALSE(Base64UrlDecode("\xff\xff\xff\xff"));
  EXPECT_FALSE(Base64UrlDecode("__\xff\xff\xff\xff\xff\xff\xff" "AJY"));
  EXPECT_FALSE(Base64UrlDecode("AAA\xad"));
  EXPECT_FALSE(Base64UrlDecode("\xdf\xdf\xdf\xdf"));
  EXPECT_FALSE(Base64UrlDecode(std::string_view("AA\0A", 4)));
}

TEST(JwtTest, ASignatureSpelledWithBytesOutsideTheAlphabetIsRejected) {
  // The same signature bytes under another spelling must not make a second valid token.
  // Ed25519 signs deterministically: the first seeded key whose signature holds a '_'
  // gives the same token every run.
  ASSERT_GE(sodium_init(), 0);
  SigningKey key;
  key.kid = "k1";
  std::string token;
  for (unsigned char seed_byte = 0; token.find('_', token.rfind('.') + 1) == std::string::npos;
       ++seed_byte) {
    std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
    seed.fill(seed_byte);
    crypto_sign_seed_keypair(key.public_key.data(), key.secret_key.data(), seed.data());
    token = SignJwt(SampleClaims(), key);
  }
  ASSERT_TRUE(std::holds_alternative<Claims>(VerifyJwt(token, SetOf(key), Options())));
  for (std::size_t i = token.rfind('.') + 1; i < token.size(); ++i) {
    if (token[i] != '_') continue;
    std::string aliased = token;
    aliased[i] = '\xff';  // what libsodium 1.0.18 alone would decode as '_'
    EXPECT_EQ(ErrorOf(VerifyJwt(aliased, SetOf(key), Options())), JwtError::kMalformed);
  }
}

TEST(JwtTest, SignedTokenVerifiesWithAllClaims) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string token = SignJwt(SampleClaims(), key);
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2);
  const auto header = Base64UrlDecode(token.substr(0, token.find('.')));
  ASSERT_TRUE(header);
  EXPECT_EQ(*header, R"({"alg":"EdDSA","typ":"JWT","kid":"k1"})");

  const auto result = VerifyJwt(token, SetOf(key), Options());
  ASSERT_TRUE(std::holds_alternative<Claims>(result)) << Describe(std::get<JwtError>(result));
  const Claims& claims = std::get<Claims>(result);
  EXPECT_EQ(claims.subject, "user:01JD0000000000000000000000");
  EXPECT_EQ(claims.issuer, "vigil-auth");
  EXPECT_EQ(claims.audience, "vigil");
  EXPECT_EQ(claims.jwt_id, "jti-1");
  EXPECT_EQ(claims.issued_at, kNow);
  EXPECT_EQ(claims.not_before, kNow);
  EXPECT_EQ(claims.expires_at, kNow + 900);
}

TEST(JwtTest, AlgNoneWithEmptySignatureIsRejectedAsUnsupported) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string payload = R"({"iss":"vigil-auth","aud":"vigil","sub":"user:x","exp":)" +
                              std::to_string(kNow + 60) + "}";
  const std::string token = RawToken(R"({"alg":"none","typ":"JWT","kid":"k1"})", payload, key, "");
  EXPECT_EQ(ErrorOf(VerifyJwt(token, SetOf(key), Options())), JwtError::kUnsupportedAlgorithm);
  const std::string upper = RawToken(R"({"alg":"None","kid":"k1"})", payload, key, "");
  EXPECT_EQ(ErrorOf(VerifyJwt(upper, SetOf(key), Options())), JwtError::kUnsupportedAlgorithm);
}

TEST(JwtTest, Hs256HeaderIsRejectedEvenWithAnHmacOverThePublicKey) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string header = R"({"alg":"HS256","typ":"JWT","kid":"k1"})";
  const std::string payload = R"({"iss":"vigil-auth","aud":"vigil","sub":"user:x","exp":)" +
                              std::to_string(kNow + 60) + "}";
  const std::string signing_input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, key.public_key.data(), key.public_key.size());
  crypto_auth_hmacsha256_update(
      &state, reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
  crypto_auth_hmacsha256_final(&state, mac.data());
  const std::string token = signing_input + "." + Base64UrlEncode(mac);
  EXPECT_EQ(ErrorOf(VerifyJwt(token, SetOf(key), Options())), JwtError::kUnsupportedAlgorithm);
}

TEST(JwtTest, MissingOrUnknownKidIsUnknownKey) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string payload =
      R"({"iss":"vigil-auth","aud":"vigil","exp":)" + std::to_string(kNow + 60) + "}";
  EXPECT_EQ(ErrorOf(VerifyJwt(RawToken(R"({"alg":"EdDSA"})", payload, key), SetOf(key), Options())),
            JwtError::kUnknownKey);
  const SigningKey other = SigningKey::Generate("k2");
  EXPECT_EQ(ErrorOf(VerifyJwt(SignJwt(SampleClaims(), other), SetOf(key), Options())),
            JwtError::kUnknownKey);
  EXPECT_EQ(ErrorOf(VerifyJwt(SignJwt(SampleClaims(), key), KeySet(), Options())),
            JwtError::kUnknownKey);
}

TEST(JwtTest, TamperedPayloadFailsSignature) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string token = SignJwt(SampleClaims(), key);
  const std::size_t first = token.find('.');
  const std::size_t second = token.find('.', first + 1);
  Claims forged = SampleClaims();
  forged.subject = "user:admin";
  const std::string forged_token = SignJwt(forged, key);
  const std::size_t f1 = forged_token.find('.');
  const std::size_t f2 = forged_token.find('.', f1 + 1);
  // Forged payload with the original signature.
  const std::string spliced =
      token.substr(0, first + 1) + forged_token.substr(f1 + 1, f2 - f1 - 1) + token.substr(second);
  EXPECT_EQ(ErrorOf(VerifyJwt(spliced, SetOf(key), Options())), JwtError::kBadSignature);
}

TEST(JwtTest, SignatureByAnotherKeyWithTheSameKidFails) {
  const SigningKey trusted = SigningKey::Generate("k1");
  const SigningKey attacker = SigningKey::Generate("k1");
  EXPECT_EQ(ErrorOf(VerifyJwt(SignJwt(SampleClaims(), attacker), SetOf(trusted), Options())),
            JwtError::kBadSignature);
}

TEST(JwtTest, TruncatedSignatureIsBadSignature) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string token = SignJwt(SampleClaims(), key);
  const std::string shorter = token.substr(0, token.rfind('.') + 1) + "AAAA";
  EXPECT_EQ(ErrorOf(VerifyJwt(shorter, SetOf(key), Options())), JwtError::kBadSignature);
}

TEST(JwtTest, ExpiryHonoursLeeway) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string token = SignJwt(SampleClaims(), key);
  const KeySet keys = SetOf(key);
  EXPECT_TRUE(std::holds_alternative<Claims>(VerifyJwt(token, keys, Options(kNow + 900 + 29))));
  EXPECT_EQ(ErrorOf(VerifyJwt(token, keys, Options(kNow + 900 + 30))), JwtError::kExpired);
  VerifyOptions strict = Options(kNow + 900);
  strict.leeway_seconds = 0;
  EXPECT_EQ(ErrorOf(VerifyJwt(token, keys, strict)), JwtError::kExpired);
}

TEST(JwtTest, ExpIsRequired) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string token =
      RawToken(R"({"alg":"EdDSA","kid":"k1"})", R"({"iss":"vigil-auth","aud":"vigil"})", key);
  EXPECT_EQ(ErrorOf(VerifyJwt(token, SetOf(key), Options())), JwtError::kMalformed);
  const std::string text_exp = RawToken(R"({"alg":"EdDSA","kid":"k1"})",
                                        R"({"iss":"vigil-auth","aud":"vigil","exp":"soon"})", key);
  EXPECT_EQ(ErrorOf(VerifyJwt(text_exp, SetOf(key), Options())), JwtError::kMalformed);
}

TEST(JwtTest, NotBeforeInTheFutureIsNotYetValid) {
  const SigningKey key = SigningKey::Generate("k1");
  Claims claims = SampleClaims();
  claims.not_before = kNow + 120;
  const std::string token = SignJwt(claims, key);
  EXPECT_EQ(ErrorOf(VerifyJwt(token, SetOf(key), Options())), JwtError::kNotYetValid);
  EXPECT_TRUE(std::holds_alternative<Claims>(VerifyJwt(token, SetOf(key), Options(kNow + 95))));
}

TEST(JwtTest, WrongIssuerAndAudience) {
  const SigningKey key = SigningKey::Generate("k1");
  Claims claims = SampleClaims();
  claims.issuer = "someone-else";
  EXPECT_EQ(ErrorOf(VerifyJwt(SignJwt(claims, key), SetOf(key), Options())),
            JwtError::kWrongIssuer);
  claims = SampleClaims();
  claims.audience = "other";
  EXPECT_EQ(ErrorOf(VerifyJwt(SignJwt(claims, key), SetOf(key), Options())),
            JwtError::kWrongAudience);
  claims.audience.clear();  // no aud claim at all
  EXPECT_EQ(ErrorOf(VerifyJwt(SignJwt(claims, key), SetOf(key), Options())),
            JwtError::kWrongAudience);
}

TEST(JwtTest, AudienceArrayContainingTheAudienceIsAccepted) {
  const SigningKey key = SigningKey::Generate("k1");
  const std::string exp = std::to_string(kNow + 60);
  const std::string header = R"({"alg":"EdDSA","kid":"k1"})";
  const auto ok = VerifyJwt(
      RawToken(header, R"({"iss":"vigil-auth","aud":["x","vigil"],"exp":)" + exp + "}", key),
      SetOf(key), Options());
  ASSERT_TRUE(std::holds_alternative<Claims>(ok));
  EXPECT_EQ(std::get<Claims>(ok).audience, "vigil");
  EXPECT_EQ(ErrorOf(VerifyJwt(
                RawToken(header, R"({"iss":"vigil-auth","aud":["x",1],"exp":)" + exp + "}", key),
                SetOf(key), Options())),
            JwtError::kWrongAudience);
}

TEST(JwtTest, MalformedShapes) {
  const SigningKey key = SigningKey::Generate("k1");
  const KeySet keys = SetOf(key);
  const std::string good = SignJwt(SampleClaims(), key);
  for (const std::string& token :
       {std::string(), std::string("."), std::string(".."), std::string("a.b"), good + ".extra",
        std::string("!!!.e30.AA"), good.substr(1), RawToken("[1,2]", "{}", key),
        RawToken("not json", "{}", key), RawToken(R"({"alg":"EdDSA","kid":7})", "{}", key),
        RawToken(R"({"alg":"EdDSA","kid":"k1","crit":["b64"]})", "{}", key),
        RawToken(R"({"alg":"EdDSA","kid":"k1"})", "[]", key), std::string(kMaxJwtBytes + 1, 'a')}) {
    EXPECT_EQ(ErrorOf(VerifyJwt(token, keys, Options())), JwtError::kMalformed) << token;
  }
}

TEST(JwtTest, DescribeIsFixedText) {
  EXPECT_EQ(Describe(JwtError::kExpired), "token expired");
  EXPECT_EQ(Describe(JwtError::kBadSignature), "invalid token signature");
  EXPECT_FALSE(Describe(JwtError::kMalformed).empty());
}

TEST(JwtTest, MutatedAndTruncatedTokensNeverThrow) {
  const SigningKey key = SigningKey::Generate("k1");
  const KeySet keys = SetOf(key);
  const std::string good = SignJwt(SampleClaims(), key);
  std::mt19937 random(12345);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.={}\"\\\0\xff";
  int accepted = 0;
  for (std::size_t cut = 0; cut <= good.size(); ++cut) {
    const auto result = VerifyJwt(std::string_view(good).substr(0, cut), keys, Options());
    accepted += std::holds_alternative<Claims>(result) ? 1 : 0;
  }
  EXPECT_EQ(accepted, 1);  // only the whole token
  for (int round = 0; round < 20000; ++round) {
    std::string token = good;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % token.size();
      switch (random() % 3) {
        case 0:
          token[at] = alphabet[random() % alphabet.size()];
          break;
        case 1:
          token.erase(at, 1 + random() % 8);
          break;
        default:
          token.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
      }
      if (token.empty()) token = "x";
    }
    EXPECT_NO_THROW({
      const auto result = VerifyJwt(token, keys, Options());
      if (std::holds_alternative<Claims>(result)) {
        // A mutation may only survive when it left the token's meaning intact.
        EXPECT_EQ(std::get<Claims>(result).subject, SampleClaims().subject);
      }
    });
  }
  // Random JSON inside a validly signed token exercises the claim checks too.
  const std::string header = R"({"alg":"EdDSA","kid":"k1"})";
  const std::string payloads[] = {
      R"({"exp":1e400})",
      R"({"exp":-1e300,"iss":"vigil-auth","aud":"vigil"})",
      R"({"exp":18446744073709551615,"iss":"vigil-auth","aud":"vigil"})",
      R"({"exp":null})",
      R"({"exp":1,"nbf":{}})",
      R"({"exp":99999999999,"iss":1})",
      R"({"exp":99999999999,"iss":"vigil-auth","aud":{}})",
      R"({"exp":99999999999,"iss":"vigil-auth","aud":"vigil","sub":[]})",
      "{\"a\":" + std::string(5000, '[') + "}"};
  for (const std::string& payload : payloads) {
    EXPECT_NO_THROW(VerifyJwt(RawToken(header, payload, key), keys, Options())) << payload;
  }
}

TEST(JwksTest, RoundTripsAndVerifiesTokens) {
  const SigningKey a = SigningKey::Generate("a");
  const SigningKey b = SigningKey::Generate("b");
  KeySet keys;
  keys.Add(VerificationKey::From(a));
  keys.Add(VerificationKey::From(b));
  const std::string jwks = keys.ToJwks();
  EXPECT_NE(jwks.find(R"("kty":"OKP","crv":"Ed25519","kid":"a")"), std::string::npos) << jwks;
  EXPECT_NE(jwks.find(R"("alg":"EdDSA","use":"sig")"), std::string::npos) << jwks;

  std::string error;
  const std::optional<KeySet> parsed = KeySet::FromJwks(jwks, &error);
  ASSERT_TRUE(parsed) << error;
  ASSERT_EQ(parsed->size(), 2u);
  ASSERT_NE(parsed->Find("b"), nullptr);
  EXPECT_EQ(parsed->Find("b")->public_key, b.public_key);
  EXPECT_TRUE(
      std::holds_alternative<Claims>(VerifyJwt(SignJwt(SampleClaims(), a), *parsed, Options())));
  EXPECT_TRUE(
      std::holds_alternative<Claims>(VerifyJwt(SignJwt(SampleClaims(), b), *parsed, Options())));
}

TEST(JwksTest, SkipsForeignKeysAndRejectsMalformedOnes) {
  const SigningKey a = SigningKey::Generate("a");
  const std::string x = Base64UrlEncode(a.public_key);
  std::string error;
  const auto mixed = KeySet::FromJwks(R"({"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},)"
                                      R"({"kty":"OKP","crv":"X25519","kid":"dh","x":")" +
                                          x +
                                          R"("},)"
                                          R"({"kty":"OKP","crv":"Ed25519","kid":"a","x":")" +
                                          x + R"(","alg":"EdDSA","use":"sig"}]})",
                                      &error);
  ASSERT_TRUE(mixed) << error;
  EXPECT_EQ(mixed->size(), 1u);
  EXPECT_NE(mixed->Find("a"), nullptr);

  for (const std::string& bad :
       {std::string("not json"), std::string("[]"), std::string(R"({"keys":{}})"),
        std::string(R"({"keys":[1]})"), std::string(R"({"keys":[{"crv":"Ed25519"}]})"),
        R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":")" + x + R"("}]})",
        std::string(R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]})"),
        std::string(R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"==="}]})")}) {
    error.clear();
    EXPECT_FALSE(KeySet::FromJwks(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  const auto empty = KeySet::FromJwks(R"({"keys":[]})");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size(), 0u);
}

}  // namespace
}  // namespace vigil::service

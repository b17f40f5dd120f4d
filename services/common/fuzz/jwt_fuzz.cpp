// Fuzzes what the gateway and the services accept from clients and from the auth service:
// bearer tokens (VerifyJwt), the JWK Set (KeySet::FromJwks) and base64url. The first byte
// picks what the rest is:
//   0  a token, verified as it is: accepted only if its signature is the fuzz key's over
//      exactly "header.payload" and every part has its one canonical spelling;
//   1  "header JSON\npayload JSON" (or just a payload), signed with the fuzz key and then
//      verified, so that claim handling is reached with a valid signature: an accepted
//      token must meet every rule VerifyJwt documents, checked here on the JSON itself;
//   2  a JWK Set: whatever parses survives ToJwks() -> FromJwks() unchanged;
//   3  base64url: whatever decodes encodes back to the same text.
// On any bytes: no crash, no undefined behaviour, no leak.
#include <sodium.h>

#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vigil/service/base64url.hpp>
#include <vigil/service/jwt.hpp>

namespace {

namespace json = boost::json;
namespace svc = vigil::service;

constexpr std::int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
constexpr std::int64_t kLeeway = 30;

struct Fixture {
  svc::SigningKey key;
  svc::KeySet keys;
  svc::VerifyOptions options{"vigil-auth", "vigil", kNow, kLeeway};

  Fixture() {
    if (sodium_init() < 0) __builtin_trap();
    // A fixed key, so that the corpus's signed tokens stay valid from run to run.
    std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
    for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<unsigned char>(i);
    key.kid = "k1";
    crypto_sign_seed_keypair(key.public_key.data(), key.secret_key.data(), seed.data());
    keys.Add(svc::VerificationKey::From(key));
  }
};

const Fixture& Get() {
  static const Fixture fixture;
  return fixture;
}

std::string Sign(std::string_view signing_input) {
  std::array<unsigned char, crypto_sign_BYTES> sig{};
  crypto_sign_detached(sig.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size(), Get().key.secret_key.data());
  return svc::Base64UrlEncode(sig);
}

bool Canonical(std::string_view part) {
  const auto raw = svc::Base64UrlDecode(part);
  return raw && svc::Base64UrlEncode(*raw) == part;
}

json::object ObjectOrTrap(std::string_view b64) {
  const auto text = svc::Base64UrlDecode(b64);
  if (!text) __builtin_trap();
  json::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) __builtin_trap();
  return std::move(v.as_object());
}

std::int64_t DateOrTrap(const json::value* v) {
  if (v == nullptr) __builtin_trap();
  if (const auto* i = v->if_int64()) return *i;
  if (const auto* u = v->if_uint64()) {
    return *u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(*u);
  }
  if (const auto* d = v->if_double()) {
    if (!std::isfinite(*d)) __builtin_trap();
    if (*d >= 9.2e18) return INT64_MAX;
    if (*d <= -9.2e18) return INT64_MIN;
    return static_cast<std::int64_t>(std::floor(*d));
  }
  __builtin_trap();
}

// The rules an accepted token meets, read from its JSON rather than from the Claims.
void CheckAccepted(std::string_view token, const svc::Claims& claims) {
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = token.find('.', d1 + 1);
  const std::string_view h = token.substr(0, d1);
  const std::string_view p = token.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view s = token.substr(d2 + 1);
  if (!Canonical(h) || !Canonical(p) || !Canonical(s)) __builtin_trap();
  if (Sign(token.substr(0, d2)) != s) __builtin_trap();  // Ed25519 signatures are deterministic

  const json::object header = ObjectOrTrap(h);
  const auto* alg = header.if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "EdDSA") __builtin_trap();
  if (header.contains("crit")) __builtin_trap();
  const auto* kid = header.if_contains("kid");
  if (kid == nullptr || !kid->is_string() || kid->get_string() != "k1") __builtin_trap();

  const json::object payload = ObjectOrTrap(p);
  const std::int64_t exp = DateOrTrap(payload.if_contains("exp"));
  if (exp <= kNow - kLeeway || exp != claims.expires_at) __builtin_trap();
  if (const auto* nbf = payload.if_contains("nbf"); nbf != nullptr && DateOrTrap(nbf) > kNow + kLeeway) {
    __builtin_trap();
  }
  const auto* iss = payload.if_contains("iss");
  if (iss == nullptr || !iss->is_string() || iss->get_string() != "vigil-auth") __builtin_trap();
  const auto* aud = payload.if_contains("aud");
  bool audience = false;
  if (aud != nullptr && aud->is_string()) audience = aud->get_string() == "vigil";
  if (aud != nullptr && aud->is_array()) {
    for (const auto& a : aud->get_array()) audience = audience || (a.is_string() && a.get_string() == "vigil");
  }
  if (!audience || claims.audience != "vigil" || claims.issuer != "vigil-auth") __builtin_trap();
  if (const auto* sub = payload.if_contains("sub")) {
    if (!sub->is_string() || claims.subject != std::string_view(sub->get_string())) __builtin_trap();
  }
}

void Verify(std::string_view token) {
  const auto result = svc::VerifyJwt(token, Get().keys, Get().options);
  if (const auto* claims = std::get_if<svc::Claims>(&result)) CheckAccepted(token, *claims);
  if (const auto* error = std::get_if<svc::JwtError>(&result)) {
    if (svc::Describe(*error).empty()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      Verify(input);
      break;
    case 1: {
      const std::size_t nl = input.find('\n');
      const std::string header = nl == std::string_view::npos
                                     ? std::string(R"({"alg":"EdDSA","typ":"JWT","kid":"k1"})")
                                     : std::string(input.substr(0, nl));
      const std::string_view payload = nl == std::string_view::npos ? input : input.substr(nl + 1);
      std::string token = svc::Base64UrlEncode(std::string_view(header)) + '.' +
                          svc::Base64UrlEncode(payload);
      token += '.' + Sign(token);
      Verify(token);
      break;
    }
    case 2:
      if (const auto set = svc::KeySet::FromJwks(input)) {
        const auto again = svc::KeySet::FromJwks(set->ToJwks());
        if (!again || again->size() != set->size()) __builtin_trap();
        for (std::size_t i = 0; i < set->size(); ++i) {
          if (again->keys()[i].kid != set->keys()[i].kid ||
              again->keys()[i].public_key != set->keys()[i].public_key) {
            __builtin_trap();
          }
        }
      }
      break;
    default:
      if (const auto raw = svc::Base64UrlDecode(input)) {
        if (svc::Base64UrlEncode(*raw) != input) __builtin_trap();
      }
      break;
  }
  return 0;
}

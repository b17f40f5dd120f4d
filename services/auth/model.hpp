// The auth service's domain: accounts and refresh tokens as the API reads, stores and
// answers them, and the pure functions around them: email normalisation and validation,
// the refresh token's shape and stored hash, reading request bodies, the JSON answered.
// Nothing here does I/O beyond drawing random bytes, so the rules are tested without a
// server.
//
//   auth::EmailAndPassword account = auth::ReadRegistration(ex);      // 400/415/422
//   auth::NewRefreshToken refresh = auth::MakeRefreshToken();          // .token, .hash
//
// Thread-safety: value types and pure functions; use from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::http {
class Exchange;
}

namespace vigil::auth {

// Bytes of a password, at most (argon2id hashes any length; this bounds the work).
inline constexpr std::size_t kMaxPasswordBytes = 1024;
// Characters of a new password, at least.
inline constexpr std::size_t kMinNewPasswordLength = 8;
// Random bytes in a refresh token, and the length of their base64url (unpadded).
inline constexpr std::size_t kRefreshTokenBytes = 32;
inline constexpr std::size_t kRefreshTokenLength = (kRefreshTokenBytes * 4 + 2) / 3;

// An account as answered by /register and /me.
struct User {
  std::string id;
  std::string email;
};

// The body of /register and /login.
struct EmailAndPassword {
  std::string email;  // normalised (NormalizeEmail)
  std::string password;
};

// A new refresh token: what the client gets, and what the database keeps.
struct NewRefreshToken {
  std::string token;  // kRefreshTokenLength characters of base64url
  std::string hash;   // RefreshTokenHash(token)
};

// Lowercased (ASCII) with surrounding whitespace removed: the form emails are stored and
// looked up in.
std::string NormalizeEmail(std::string_view email);
// 1..254 bytes, exactly one '@' with text on both sides, no whitespace or control characters.
bool IsValidEmail(std::string_view normalized);
// The SHA-256 of a refresh token, in hex: what the database keeps instead of the token.
std::string RefreshTokenHash(std::string_view token);
// kRefreshTokenBytes random bytes, base64url-encoded, and their hash. Needs libsodium
// initialised (sodium_init).
NewRefreshToken MakeRefreshToken();

// The body of POST /register: {"email","password"}, the email valid once normalised, the
// password kMinNewPasswordLength characters to kMaxPasswordBytes bytes, no other field.
// Throws http::HttpError 400 (not a JSON object), 415 (not JSON) or 422 naming the field.
EmailAndPassword ReadRegistration(const http::Exchange& exchange);
// The body of POST /login: {"email","password"}, any non-empty password of at most
// kMaxPasswordBytes bytes, no other field. Throws as ReadRegistration does.
EmailAndPassword ReadLogin(const http::Exchange& exchange);
// The body of POST /refresh and /logout: {"refresh_token"} of 1..512 characters, no other
// field. Throws as ReadRegistration does.
std::string ReadRefreshToken(const http::Exchange& exchange);

// {"id","email"}
std::string UserJson(const User& user);
// The answer of /login and /refresh: {"access_token","refresh_token","token_type":"Bearer",
// "expires_in"}.
std::string TokensJson(std::string_view access_token, std::string_view refresh_token,
                       std::int64_t expires_in);

}  // namespace vigil::auth

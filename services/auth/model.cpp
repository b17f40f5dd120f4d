#include "model.hpp"

#include <sodium.h>

#include <array>
#include <boost/json.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/service/base64url.hpp>
#include <vigil/service/json_body.hpp>

namespace vigil::auth {

namespace json = boost::json;

namespace {

// Reads a password field: min_length..1024 characters, and never more than 1024 bytes.
std::string ReadPassword(service::JsonReader& body, std::size_t min_length) {
  std::string password = body.String("password", min_length, kMaxPasswordBytes);
  if (password.size() > kMaxPasswordBytes) {
    throw http::HttpError(422, "password: must be at most 1024 bytes");
  }
  return password;
}

}  // namespace

std::string NormalizeEmail(std::string_view email) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!email.empty() && space(email.front())) email.remove_prefix(1);
  while (!email.empty() && space(email.back())) email.remove_suffix(1);
  std::string out(email);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsValidEmail(std::string_view email) {
  if (email.empty() || email.size() > 254) return false;
  const std::size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size()) return false;
  if (email.find('@', at + 1) != std::string_view::npos) return false;
  for (const char c : email) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string RefreshTokenHash(std::string_view token) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  std::string hex(digest.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  hex.pop_back();
  return hex;
}

NewRefreshToken MakeRefreshToken() {
  std::array<unsigned char, kRefreshTokenBytes> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  NewRefreshToken made;
  made.token = service::Base64UrlEncode(bytes);
  made.hash = RefreshTokenHash(made.token);
  sodium_memzero(bytes.data(), bytes.size());
  return made;
}

EmailAndPassword ReadRegistration(const http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  EmailAndPassword account;
  account.email = NormalizeEmail(body.String("email", 1, 254));
  account.password = ReadPassword(body, kMinNewPasswordLength);
  body.RejectUnknown();
  if (!IsValidEmail(account.email)) {
    throw http::HttpError(
        422, "email: must be an email address of at most 254 bytes, with one '@' and no spaces");
  }
  return account;
}

EmailAndPassword ReadLogin(const http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  EmailAndPassword account;
  account.email = NormalizeEmail(body.String("email", 1, 254));
  account.password = ReadPassword(body, 1);
  body.RejectUnknown();
  return account;
}

std::string ReadRefreshToken(const http::Exchange& ex) {
  service::JsonReader body(service::ParseJsonObject(ex));
  std::string token = body.String("refresh_token", 1, 512);
  body.RejectUnknown();
  return token;
}

std::string UserJson(const User& user) {
  return json::serialize(json::object{{"id", user.id}, {"email", user.email}});
}

std::string TokensJson(std::string_view access_token, std::string_view refresh_token,
                       std::int64_t expires_in) {
  json::object body;
  body["access_token"] = access_token;
  body["refresh_token"] = refresh_token;
  body["token_type"] = "Bearer";
  body["expires_in"] = expires_in;
  return json::serialize(body);
}

}  // namespace vigil::auth

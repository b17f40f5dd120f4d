#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vigil/http/exchange.hpp>
#include <vigil/service/clock.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::service {

namespace {

// Only for `./vigil up` and tests on one machine: anyone can read it here.
constexpr std::string_view kDevelopmentSecret = "vigil-development-secret-do-not-use-in-production";
constexpr std::string_view kVersion = "v1.";
constexpr std::size_t kMinSecret = 32;
constexpr std::size_t kMaxHeader = 512;

std::optional<std::int64_t> ParseUnix(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// Hex HMAC-SHA256 of `signed_part` under `secret`.
std::string Mac(std::string_view secret, std::string_view signed_part) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), digest,
       &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * length, '0');
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return hex;
}

bool MacMatches(std::string_view secret, std::string_view signed_part, std::string_view mac) {
  const std::string expected = Mac(secret, signed_part);
  return mac.size() == expected.size() &&
         CRYPTO_memcmp(mac.data(), expected.data(), expected.size()) == 0;
}

std::array<unsigned char, 32> Derive(std::string_view secret, std::string_view purpose) {
  const std::string label = "vigil key derivation v1: " + std::string(purpose);
  std::array<unsigned char, 32> key{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(label.data()), label.size(), key.data(), &length);
  return key;
}

std::optional<std::string> SecretFromEnv(const char* name) {
  auto secret = telemetry::env::Secret(name);
  if (secret && secret->size() < kMinSecret) {
    throw telemetry::ConfigError(name, "is too short: it must be at least 32 bytes (it is " +
                                           std::to_string(secret->size()) + ")");
  }
  return secret;
}

}  // namespace

IdentitySigner::IdentitySigner(std::string secret, std::chrono::seconds validity,
                               std::string previous)
    : secret_(std::move(secret)), validity_(validity) {
  if (secret_.size() < kMinSecret) {
    throw std::invalid_argument("the identity secret must be at least 32 bytes");
  }
  if (!previous.empty() && previous.size() < kMinSecret) {
    throw std::invalid_argument("the previous identity secret must be at least 32 bytes");
  }
  if (previous != secret_) previous_ = std::move(previous);
}

IdentitySigner IdentitySigner::FromEnv() {
  auto secret = SecretFromEnv("VIGIL_INTERNAL_SECRET");
  auto previous = SecretFromEnv("VIGIL_INTERNAL_SECRET_PREVIOUS");
  IdentitySigner signer{secret ? std::move(*secret) : std::string(kDevelopmentSecret),
                        std::chrono::seconds(60), previous ? std::move(*previous) : std::string()};
  signer.development_ = !secret.has_value();
  return signer;
}

std::array<unsigned char, 32> IdentitySigner::DeriveKey(std::string_view purpose) const {
  return Derive(secret_, purpose);
}

std::optional<std::array<unsigned char, 32>> IdentitySigner::DerivePreviousKey(
    std::string_view purpose) const {
  if (previous_.empty()) return std::nullopt;
  return Derive(previous_, purpose);
}

std::string IdentitySigner::Sign(std::string_view subject) const {
  return Sign(subject, WallClockSeconds());
}

std::string IdentitySigner::Sign(std::string_view subject, std::int64_t now_unix) const {
  std::string value(kVersion);
  value.append(subject).push_back('.');
  value += std::to_string(now_unix + validity_.count());
  std::string mac = Mac(secret_, value);
  value.push_back('.');
  value += mac;
  return value;
}

std::optional<std::string> IdentitySigner::Verify(std::string_view header) const {
  return Verify(header, WallClockSeconds());
}

std::optional<std::string> IdentitySigner::Verify(std::string_view header,
                                                  std::int64_t now_unix) const {
  if (header.size() > kMaxHeader || !header.starts_with(kVersion)) return std::nullopt;
  // The subject may itself contain dots (an email-like id would); the expiry and the MAC
  // are the last two fields.
  const std::size_t mac_dot = header.rfind('.');
  if (mac_dot == std::string_view::npos || mac_dot <= kVersion.size()) return std::nullopt;
  const std::size_t expiry_dot = header.rfind('.', mac_dot - 1);
  if (expiry_dot == std::string_view::npos || expiry_dot < kVersion.size()) return std::nullopt;
  const std::string_view signed_part = header.substr(0, mac_dot);
  const std::string_view mac = header.substr(mac_dot + 1);
  if (!MacMatches(secret_, signed_part, mac) &&
      (previous_.empty() || !MacMatches(previous_, signed_part, mac))) {
    return std::nullopt;
  }
  const auto expiry = ParseUnix(header.substr(expiry_dot + 1, mac_dot - expiry_dot - 1));
  if (!expiry || *expiry < now_unix) return std::nullopt;
  const std::string_view subject = header.substr(kVersion.size(), expiry_dot - kVersion.size());
  if (subject.empty()) return std::nullopt;
  return std::string(subject);
}

namespace {
std::string Subject(const http::Exchange& exchange, const IdentitySigner& identity) {
  const std::string_view header = exchange.header(kIdentityHeader);
  if (header.empty()) throw http::HttpError(401, "authentication required");
  auto subject = identity.Verify(header);
  if (!subject) throw http::HttpError(401, "invalid or expired credentials");
  return std::move(*subject);
}
}  // namespace

std::string RequireUser(const http::Exchange& exchange, const IdentitySigner& identity) {
  std::string subject = Subject(exchange, identity);
  constexpr std::string_view kUser = "user:";
  if (!subject.starts_with(kUser) || subject.size() == kUser.size()) {
    throw http::HttpError(403, "this operation is for users");
  }
  return subject.substr(kUser.size());
}

std::function<std::string(const http::Exchange&)> ErrorUser(const IdentitySigner& identity) {
  return [&identity](const http::Exchange& exchange) -> std::string {
    constexpr std::string_view kUser = "user:";
    const std::string_view header = exchange.header(kIdentityHeader);
    if (header.empty()) return {};
    auto subject = identity.Verify(header);
    if (!subject || !subject->starts_with(kUser)) return {};
    return subject->substr(kUser.size());
  };
}

void RequireService(const http::Exchange& exchange, const IdentitySigner& identity,
                    std::string_view name) {
  const std::string subject = Subject(exchange, identity);
  constexpr std::string_view kService = "service:";
  if (!subject.starts_with(kService) || std::string_view(subject).substr(kService.size()) != name) {
    throw http::HttpError(403,
                          "this operation is reserved for the " + std::string(name) + " service");
  }
}

}  // namespace vigil::service

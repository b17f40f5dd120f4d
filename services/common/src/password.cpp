#include "vigil/service/password.hpp"

#include <sodium.h>

#include <array>
#include <optional>
#include <stdexcept>

namespace vigil::service {
namespace {

void EnsureSodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium failed to initialise");
}

// `hash` NUL-terminated in the buffer libsodium expects, or nullopt when it cannot be one
// of its argon2id hashes (too long, a NUL inside, another algorithm).
std::optional<std::array<char, crypto_pwhash_STRBYTES>> Terminated(std::string_view hash) {
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return std::nullopt;
  if (hash.find('\0') != std::string_view::npos) return std::nullopt;
  if (!hash.starts_with("$argon2id$")) return std::nullopt;
  std::array<char, crypto_pwhash_STRBYTES> terminated{};
  hash.copy(terminated.data(), hash.size());
  return terminated;
}

}  // namespace

std::string HashPassword(std::string_view password) {
  return HashPassword(password, kPasswordParams);
}

std::string HashPassword(std::string_view password, const PasswordParams& params) {
  EnsureSodium();
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(),
                            static_cast<unsigned long long>(params.opslimit), params.memlimit_bytes,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("password hashing failed: out of memory");
  }
  return std::string(out.data());
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  EnsureSodium();
  const auto terminated = Terminated(hash);
  return terminated &&
         crypto_pwhash_str_verify(terminated->data(), password.data(), password.size()) == 0;
}

bool PasswordNeedsRehash(std::string_view hash, const PasswordParams& params) {
  EnsureSodium();
  const auto terminated = Terminated(hash);
  // 0: made at exactly these parameters; 1: other parameters; -1: unreadable.
  return !terminated || crypto_pwhash_str_needs_rehash(
                            terminated->data(), static_cast<unsigned long long>(params.opslimit),
                            params.memlimit_bytes) != 0;
}

const std::string& DummyPasswordHash() {
  static const std::string hash = [] {
    EnsureSodium();
    std::array<unsigned char, 32> secret{};
    randombytes_buf(secret.data(), secret.size());
    return HashPassword(
        std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
  }();
  return hash;
}

}  // namespace vigil::service

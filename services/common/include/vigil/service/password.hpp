// Password hashing with argon2id (libsodium crypto_pwhash_str_alg) at the OWASP-recommended
// cost: m = 19 MiB, t = 2, p = 1. Hashes are PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$...")
// that carry their own parameters, so VerifyPassword keeps accepting hashes made at an older
// cost. Both calls take ~50 ms of CPU: run them on a BlockingPool, never on an HTTP worker.
//
//   std::string hash = vigil::service::HashPassword(password);           // at registration
//   bool ok = vigil::service::VerifyPassword(stored_hash, password);     // at login
//   if (!user) vigil::service::VerifyPassword(vigil::service::DummyPasswordHash(), password);
//
// Thread-safety: all functions are safe from any thread. Length limits on the password are
// the caller's policy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::service {

// Argon2id cost parameters, in libsodium's units.
struct PasswordParams {
  std::uint64_t opslimit;      // iterations (t)
  std::size_t memlimit_bytes;  // memory (m), bytes
};

// The production cost (OWASP: argon2id, 19 MiB, 2 iterations, 1 lane).
inline constexpr PasswordParams kPasswordParams{2, std::size_t{19} * 1024 * 1024};

// The PHC-format argon2id hash of `password` with a fresh random salt at kPasswordParams.
// Throws std::runtime_error only when the system cannot allocate the memory.
std::string HashPassword(std::string_view password);
// The same with explicit parameters (tests use a lower cost; production uses the overload above).
std::string HashPassword(std::string_view password, const PasswordParams& params);

// True when `password` matches `hash`; false on mismatch and on a malformed or non-argon2id hash.
bool VerifyPassword(std::string_view hash, std::string_view password);

// True when `hash` was not made at `params` (an older or different cost, or not an
// argon2id hash at all). After a successful VerifyPassword, store HashPassword(password,
// params) in its place: accounts then move to the current cost as their owners log in.
bool PasswordNeedsRehash(std::string_view hash, const PasswordParams& params);

// A valid hash (at kPasswordParams) of a random password, computed once on first use.
// Verify against it when the user does not exist, so that path costs the same as a
// wrong password. Call it once at start-up to pay the cost there.
const std::string& DummyPasswordHash();

}  // namespace vigil::service

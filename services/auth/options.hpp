// The auth service's settings: token lifetimes, key rotation and the password cost.
//
// Production reads them from the environment once at start-up; tests build the struct
// directly, which is the only way to lower the argon2id cost or to replace the clock.
//
//   auth::AuthOptions options = auth::AuthOptions::FromEnv();
//   options.access_ttl;     // seconds an access token lives (VIGIL_AUTH_ACCESS_TTL)
//   std::int64_t now = options.Now();
//
// Thread-safety: a value; concurrent const use is safe (the clock must be too).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vigil/service/password.hpp>

namespace vigil::auth {

// The iss and aud of every access token; the gateway verifies both.
inline constexpr std::string_view kIssuer = "vigil-auth";
inline constexpr std::string_view kAudience = "vigil";

struct AuthOptions {
  std::int64_t access_ttl = 900;       // seconds
  std::int64_t refresh_ttl = 2592000;  // seconds (30 days)
  std::int64_t key_rotation = 86400;   // seconds a signing key signs before the next one
  service::PasswordParams password = service::kPasswordParams;
  // Unix seconds; empty means the wall clock (service::WallClockSeconds).
  std::function<std::int64_t()> clock;

  // Unix seconds by `clock`: what auth stores (expiries, key ages) and signs.
  std::int64_t Now() const;

  // VIGIL_AUTH_ACCESS_TTL (60..86400, default 900), VIGIL_AUTH_REFRESH_TTL (300..31536000,
  // default 2592000), VIGIL_AUTH_KEY_ROTATION (10..31536000, default 86400). Throws
  // telemetry::ConfigError naming the variable.
  static AuthOptions FromEnv();
};

}  // namespace vigil::auth

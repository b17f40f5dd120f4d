#include "options.hpp"

#include <vigil/service/clock.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::auth {

std::int64_t AuthOptions::Now() const { return clock ? clock() : service::WallClockSeconds(); }

AuthOptions AuthOptions::FromEnv() {
  namespace env = telemetry::env;
  AuthOptions options;
  options.access_ttl = env::Integer("VIGIL_AUTH_ACCESS_TTL", 900, 60, 86400);
  options.refresh_ttl = env::Integer("VIGIL_AUTH_REFRESH_TTL", 2592000, 300, 31536000);
  options.key_rotation = env::Integer("VIGIL_AUTH_KEY_ROTATION", 86400, 10, 31536000);
  return options;
}

}  // namespace vigil::auth

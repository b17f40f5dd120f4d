// Typed reading of configuration from environment variables.
//
// Every setting has a working default; a value that is present but malformed stops
// start-up with a ConfigError whose message names the variable, the bad value and what
// would be accepted. Use it in a service's start-up, never on a request path.
//
//   auto level = vigil::telemetry::env::Enum<LogLevel>("VIGIL_LOG_LEVEL", LogLevel::kInfo,
//                                                     ParseLogLevel, "trace|debug|...");
//   auto port = vigil::telemetry::env::Integer("VIGIL_PORT", 8080, 1, 65535);
//
// Thread-safety: the functions read the process environment (getenv) and may be called
// from any thread as long as no thread modifies the environment at the same time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vigil::telemetry {

// A configuration value that cannot be used. what() is a complete sentence for an
// operator: "VIGIL_LOG_LEVEL="loud" is not valid: expected one of trace|debug|...".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string variable, std::string message);
  const std::string& variable() const noexcept { return variable_; }

 private:
  std::string variable_;
};

namespace env {

// The raw value when the variable is set and non-empty.
std::optional<std::string> Get(const char* name);

// The value, or `fallback` when unset or empty.
std::string String(const char* name, std::string_view fallback);

// A secret, from `name` or from the file `name`_FILE names (the Docker and Kubernetes
// secrets convention; one trailing line break is dropped), nullopt when neither is set.
// Throws ConfigError naming the variable when both are set, or when the file cannot be
// read or is empty; the error never quotes the secret.
std::optional<std::string> Secret(const char* name);

// A whole number in [min, max]. Throws ConfigError for anything else.
std::int64_t Integer(const char* name, std::int64_t fallback, std::int64_t min, std::int64_t max);

// A number in [min, max] (e.g. a sampling ratio). Throws ConfigError for anything else.
double Number(const char* name, double fallback, double min, double max);

// true/false, 1/0, yes/no, on/off (case-insensitive).
bool Boolean(const char* name, bool fallback);

// Milliseconds as a bare integer (the OTEL_* convention), in [0, max_ms].
std::chrono::milliseconds Millis(const char* name, std::chrono::milliseconds fallback,
                                 std::int64_t max_ms = 24LL * 3600 * 1000);

// A value parsed by `parse`; `accepted` describes the valid values for the error.
template <typename T>
T Enum(const char* name, T fallback, const std::function<std::optional<T>(std::string_view)>& parse,
       std::string_view accepted) {
  auto raw = Get(name);
  if (!raw) return fallback;
  if (auto v = parse(*raw)) return *v;
  throw ConfigError(name,
                    "\"" + *raw + "\" is not valid: expected one of " + std::string(accepted));
}

}  // namespace env
}  // namespace vigil::telemetry

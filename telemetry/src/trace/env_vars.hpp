// Reading the OTEL_* variables the trace module honours. This module cannot use the
// SDK's env.hpp (it sits below it), so it has these few readers of its own; errors are
// EnvVarError with the same wording as the SDK's ConfigError.
//
//   auto size = ReadInteger("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1 << 24);
//
// Thread-safety: getenv(); call while no thread modifies the environment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::telemetry::internal {

// The value with surrounding whitespace removed, or nullopt when unset or empty (the
// specification treats an empty value as unset).
std::optional<std::string> ReadEnv(const char* name);

// A whole number in [min, max]; `fallback` when unset. Throws EnvVarError otherwise.
std::int64_t ReadInteger(const char* name, std::int64_t fallback, std::int64_t min,
                         std::int64_t max);

// A decimal number in [min, max]; `fallback` when unset. Throws EnvVarError otherwise.
double ReadNumber(const char* name, double fallback, double min, double max);

[[noreturn]] void ThrowInvalid(const char* name, std::string_view raw, std::string_view expected);

}  // namespace vigil::telemetry::internal

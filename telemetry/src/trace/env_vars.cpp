#include "trace/env_vars.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <vigil/telemetry/trace.hpp>

namespace vigil::telemetry {

EnvVarError::EnvVarError(std::string variable, std::string message)
    : std::invalid_argument(variable + "=" + message),
      variable_(std::move(variable)),
      message_(std::move(message)) {}

namespace internal {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

std::optional<std::string> ReadEnv(const char* name) {
  // Read at start-up only (see the header); NOLINTNEXTLINE(concurrency-mt-unsafe)
  const char* raw = std::getenv(name);
  if (raw == nullptr) {
    return std::nullopt;
  }
  std::string_view v(raw);
  while (!v.empty() && IsSpace(v.front())) {
    v.remove_prefix(1);
  }
  while (!v.empty() && IsSpace(v.back())) {
    v.remove_suffix(1);
  }
  if (v.empty()) {
    return std::nullopt;
  }
  return std::string(v);
}

void ThrowInvalid(const char* name, std::string_view raw, std::string_view expected) {
  std::string message = "\"";
  message.append(raw);
  message.append("\" is not valid: expected ");
  message.append(expected);
  throw EnvVarError(name, std::move(message));
}

std::int64_t ReadInteger(const char* name, std::int64_t fallback, std::int64_t min,
                         std::int64_t max) {
  const auto raw = ReadEnv(name);
  if (!raw) {
    return fallback;
  }
  std::int64_t value = 0;
  const char* end = raw->data() + raw->size();
  const auto [ptr, ec] = std::from_chars(raw->data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) {
    ThrowInvalid(name, *raw,
                 "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

double ReadNumber(const char* name, double fallback, double min, double max) {
  const auto raw = ReadEnv(name);
  if (!raw) {
    return fallback;
  }
  double value = 0;
  const char* end = raw->data() + raw->size();
  const auto [ptr, ec] = std::from_chars(raw->data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value) || value < min || value > max) {
    // Shortest decimal forms, e.g. "a number from 0 to 1".
    char lo[32];
    char hi[32];
    const auto lo_end = std::to_chars(lo, lo + sizeof lo, min).ptr;
    const auto hi_end = std::to_chars(hi, hi + sizeof hi, max).ptr;
    ThrowInvalid(name, *raw,
                 "a number from " + std::string(lo, lo_end) + " to " + std::string(hi, hi_end));
  }
  return value;
}

}  // namespace internal
}  // namespace vigil::telemetry

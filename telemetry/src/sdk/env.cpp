#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vigil/telemetry/env.hpp>

namespace vigil::telemetry {

ConfigError::ConfigError(std::string variable, std::string message)
    : std::runtime_error(variable + "=" + message), variable_(std::move(variable)) {}

namespace env {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

[[noreturn]] void Invalid(const char* name, const std::string& raw, const std::string& expected) {
  throw ConfigError(name, "\"" + raw + "\" is not valid: expected " + expected);
}

}  // namespace

std::optional<std::string> Get(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  std::string_view trimmed = Trim(v);
  if (trimmed.empty()) return std::nullopt;
  return std::string(trimmed);
}

std::string String(const char* name, std::string_view fallback) {
  auto v = Get(name);
  return v ? *v : std::string(fallback);
}

std::optional<std::string> Secret(const char* name) {
  const std::string file_variable = std::string(name) + "_FILE";
  auto value = Get(name);
  const auto path = Get(file_variable.c_str());
  if (!path) return value;
  if (value) {
    throw ConfigError(file_variable, "is set together with " + std::string(name) + ": set one");
  }
  std::string secret;
  bool readable = false;
  try {
    std::ifstream in(*path, std::ios::binary);
    // A directory opens but fails on the first read, which the stream buffer throws.
    secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    readable = in.good() || in.eof();
  } catch (const std::exception&) {
    readable = false;
  }
  if (!readable) throw ConfigError(file_variable, "\"" + *path + "\" cannot be read");
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) throw ConfigError(file_variable, "\"" + *path + "\" is empty or missing");
  return secret;
}

std::int64_t Integer(const char* name, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto raw = Get(name);
  if (!raw) return fallback;
  std::int64_t value = 0;
  const char* end = raw->data() + raw->size();
  auto [ptr, ec] = std::from_chars(raw->data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) {
    Invalid(name, *raw,
            "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

double Number(const char* name, double fallback, double min, double max) {
  auto raw = Get(name);
  if (!raw) return fallback;
  double value = 0;
  const char* end = raw->data() + raw->size();
  auto [ptr, ec] = std::from_chars(raw->data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value) || value < min || value > max) {
    auto fmt = [](double d) {
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      return std::string(buf, r.ptr);
    };
    Invalid(name, *raw, "a number from " + fmt(min) + " to " + fmt(max));
  }
  return value;
}

bool Boolean(const char* name, bool fallback) {
  auto raw = Get(name);
  if (!raw) return fallback;
  std::string v = *raw;
  std::transform(v.begin(), v.end(), v.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  Invalid(name, *raw, "true or false");
}

std::chrono::milliseconds Millis(const char* name, std::chrono::milliseconds fallback,
                                 std::int64_t max_ms) {
  return std::chrono::milliseconds(Integer(name, fallback.count(), 0, max_ms));
}

}  // namespace env
}  // namespace vigil::telemetry

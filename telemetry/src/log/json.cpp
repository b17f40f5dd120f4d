// Number formatting, UTF-8 validation and the key rules.
#include "log/json.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace vigil::telemetry::internal {
namespace {

char Lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool EqualsLowered(const char* key, std::string_view part) noexcept {
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (Lower(key[i]) != part[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::size_t FormatInt(std::int64_t v, char* out) noexcept {
  return static_cast<std::size_t>(std::to_chars(out, out + kMaxNumberSize, v).ptr - out);
}

std::size_t FormatUint(std::uint64_t v, char* out) noexcept {
  return static_cast<std::size_t>(std::to_chars(out, out + kMaxNumberSize, v).ptr - out);
}

std::size_t FormatDouble(double v, char* out) noexcept {
  if (!std::isfinite(v)) {
    constexpr std::string_view kNull = "null";
    kNull.copy(out, kNull.size());
    return kNull.size();
  }
  return static_cast<std::size_t>(std::to_chars(out, out + kMaxNumberSize, v).ptr - out);
}

std::size_t FormatDurationNs(std::int64_t ns, char* out) noexcept {
  char* p = out;
  // Negate in unsigned arithmetic so INT64_MIN works.
  std::uint64_t magnitude = static_cast<std::uint64_t>(ns);
  if (ns < 0) {
    *p++ = '-';
    magnitude = ~magnitude + 1;
  }
  const std::uint64_t whole = magnitude / 1'000'000;
  std::uint64_t frac = magnitude % 1'000'000;
  p = std::to_chars(p, out + kMaxNumberSize, whole).ptr;
  if (frac != 0) {
    char digits[6];
    for (int i = 5; i >= 0; --i) {
      digits[i] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    std::size_t len = 6;
    while (digits[len - 1] == '0') {
      --len;
    }
    *p++ = '.';
    std::memcpy(p, digits, len);
    p += len;
  }
  return static_cast<std::size_t>(p - out);
}

bool IsSensitiveKey(std::string_view key) noexcept {
  // Dispatch on the first letter so that most positions cost one comparison.
  auto at = [&](std::size_t i, std::string_view part) {
    return key.size() - i >= part.size() && EqualsLowered(key.data() + i, part);
  };
  for (std::size_t i = 0; i < key.size(); ++i) {
    switch (Lower(key[i])) {
      case 'a':
        if (at(i, "authorization") || at(i, "api_key") || at(i, "apikey") || at(i, "api-key")) {
          return true;
        }
        break;
      case 'c':
        if (at(i, "cookie") || at(i, "credential")) {
          return true;
        }
        break;
      case 'p':
        if (at(i, "password") || at(i, "passwd") || at(i, "private_key")) {
          return true;
        }
        break;
      case 's':
        if (at(i, "secret") || at(i, "session")) {
          return true;
        }
        break;
      case 't':
        if (at(i, "token")) {
          return true;
        }
        break;
      default:
        break;
    }
  }
  return false;
}

bool IsReservedKey(std::string_view key) noexcept {
  static constexpr std::string_view kReserved[] = {
      "time", "level", "msg", "service", "version", "env", "trace_id", "span_id", "request_id",
  };
  for (std::string_view r : kReserved) {
    if (key == r) {
      return true;
    }
  }
  return false;
}

}  // namespace vigil::telemetry::internal

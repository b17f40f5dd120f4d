// RedisOptions from a URL and the environment, and the names of StoreError.
#include <charconv>
#include <optional>
#include <string>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/env.hpp>

namespace vigil::ratelimit {

namespace {

constexpr const char* kUrlVariable = "VIGIL_REDIS_URL";
constexpr const char* kTimeoutVariable = "VIGIL_REDIS_TIMEOUT_MS";

// The URL is never quoted: it may carry a password.
[[noreturn]] void BadUrl(const char* variable, std::string_view why) {
  throw telemetry::ConfigError(
      variable, "is not a valid Redis URL (redis://[[username]:password@]host[:port][/db]): " +
                    std::string(why));
}

// A whole number in [min, max] written with digits only.
bool ParseNumber(std::string_view text, long min, long max, long* value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size() && text.front() != '-' &&
         text.front() != '+' && *value >= min && *value <= max;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `text` with its %XX escapes decoded (a password may hold '@', ':' or '/' only so).
bool PercentDecode(std::string_view text, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size() || HexDigit(text[i + 1]) < 0 || HexDigit(text[i + 2]) < 0) {
      return false;
    }
    out->push_back(static_cast<char>(HexDigit(text[i + 1]) * 16 + HexDigit(text[i + 2])));
    i += 2;
  }
  return true;
}

}  // namespace

RedisOptions RedisOptions::FromUrl(std::string_view url, const char* variable) {
  constexpr std::string_view kScheme = "redis://";
  if (url.starts_with("rediss://")) BadUrl(variable, "TLS (rediss://) is not supported");
  if (!url.starts_with(kScheme)) BadUrl(variable, "it must start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    BadUrl(variable, "query parameters and fragments are not supported");
  }
  RedisOptions options;
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.size() < rest.size()) {
    const std::string_view db = rest.substr(authority.size() + 1);
    long number = 0;
    if (!db.empty() && !ParseNumber(db, 0, 1'000'000, &number)) {
      BadUrl(variable, "the database must be a number (0 and up)");
    }
    options.db = static_cast<int>(number);
  }
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      BadUrl(variable, "the credentials must be [username]:password");
    }
    if (!PercentDecode(userinfo.substr(0, colon), &options.username) ||
        !PercentDecode(userinfo.substr(colon + 1), &options.password)) {
      BadUrl(variable, "the credentials hold a malformed %-escape");
    }
    if (options.password.empty()) BadUrl(variable, "the password is empty");
  }
  std::string_view host = authority;
  std::optional<std::string_view> port;
  if (authority.starts_with('[')) {  // an IPv6 address: [::1]:6379
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) BadUrl(variable, "an IPv6 address lacks its ']'");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) BadUrl(variable, "the host is malformed");
      port = after.substr(1);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) BadUrl(variable, "the host is empty");
  const bool ipv6 = authority.starts_with('[');
  if (host.find_first_of(ipv6 ? "@[] " : ":@[] ") != std::string_view::npos) {
    BadUrl(variable, "the host is malformed");
  }
  options.host = std::string(host);
  if (port) {
    long number = 0;
    if (!ParseNumber(*port, 1, 65535, &number)) {
      BadUrl(variable, "the port must be a number in 1..65535");
    }
    options.port = static_cast<std::uint16_t>(number);
  }
  return options;
}

std::optional<RedisOptions> RedisOptions::FromEnv() {
  const auto timeout = telemetry::env::Integer(kTimeoutVariable, 20, 1, 10'000);
  const std::optional<std::string> url = telemetry::env::Secret(kUrlVariable);
  if (!url) return std::nullopt;
  // The variable the URL came from: itself, or the file that held it.
  const std::string file_variable = std::string(kUrlVariable) + "_FILE";
  RedisOptions options =
      FromUrl(*url, telemetry::env::Get(kUrlVariable) ? kUrlVariable : file_variable.c_str());
  options.timeout = std::chrono::milliseconds(timeout);
  return options;
}

std::string_view ToString(StoreError error) noexcept {
  switch (error) {
    case StoreError::kNone:
      return "none";
    case StoreError::kDown:
      return "down";
    case StoreError::kRefused:
      return "refused";
    case StoreError::kReset:
      return "reset";
    case StoreError::kTimeout:
      return "timeout";
    case StoreError::kLoading:
      return "loading";
    case StoreError::kAuth:
      return "auth";
    case StoreError::kProtocol:
      return "protocol";
    case StoreError::kOverload:
      return "overload";
  }
  return "unknown";
}

}  // namespace vigil::ratelimit

// Level names.
#include <vigil/telemetry/log.hpp>

namespace vigil::telemetry {

std::optional<LogLevel> ParseLogLevel(std::string_view text) noexcept {
  // Longest accepted name is "warning".
  if (text.empty() || text.size() > 7) {
    return std::nullopt;
  }
  char lower[7];
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    lower[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
  }
  const std::string_view name(lower, text.size());
  if (name == "trace") {
    return LogLevel::kTrace;
  }
  if (name == "debug") {
    return LogLevel::kDebug;
  }
  if (name == "info") {
    return LogLevel::kInfo;
  }
  if (name == "warn" || name == "warning") {
    return LogLevel::kWarn;
  }
  if (name == "error") {
    return LogLevel::kError;
  }
  if (name == "fatal") {
    return LogLevel::kFatal;
  }
  return std::nullopt;
}

std::string_view ToString(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kFatal:
      return "fatal";
  }
  return "unknown";
}

}  // namespace vigil::telemetry

// Endpoint URL checks shared by the OTLP options parser and the HTTP exporter.
//
//   if (!otlp::IsHttpUrl(url)) throw std::invalid_argument(...);
//   log("exporting to " + otlp::RedactedUrl(url));  // no credentials, no query
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry::otlp {

// An http:// or https:// URL (scheme case-insensitive) with a host and no whitespace or
// control characters.
inline bool IsHttpUrl(std::string_view url) {
  auto has_scheme = [&](std::string_view scheme) {
    return url.size() > scheme.size() &&
           text::EqualsIgnoreCase(url.substr(0, scheme.size()), scheme);
  };
  std::string_view rest;
  if (has_scheme("http://")) {
    rest = url.substr(7);
  } else if (has_scheme("https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  if (rest.empty() || rest.front() == '/') {
    return false;
  }
  return std::none_of(url.begin(), url.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7F; });
}

// The URL as a log line may show it: without user:password@ and without query or fragment,
// which may carry tokens.
inline std::string RedactedUrl(std::string_view url) {
  std::string out;
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    out.assign(url.substr(0, scheme + 3));
    url.remove_prefix(scheme + 3);
  }
  const std::size_t authority_end = std::min(url.find('/'), url.size());
  if (auto at = url.substr(0, authority_end).rfind('@'); at != std::string_view::npos) {
    url.remove_prefix(at + 1);
  }
  out.append(url.substr(0, url.find_first_of("?#")));
  return out;
}

}  // namespace vigil::telemetry::otlp

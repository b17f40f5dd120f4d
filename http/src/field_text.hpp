// The pieces of RFC 9110's field-value grammar that more than one header reader here needs
// (Accept-Encoding, Vary, Content-Type, If-None-Match). Case-insensitive comparison is
// Beast's `boost::beast::iequals`.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace vigil::http::internal {

// OWS: optional whitespace, spaces and horizontal tabs.
constexpr bool IsOws(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view TrimOws(std::string_view s) noexcept {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// tchar: what tokens (content codings, methods, field names) are made of.
constexpr bool IsTokenChar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace vigil::http::internal

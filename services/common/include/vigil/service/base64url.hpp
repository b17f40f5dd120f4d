// base64url (RFC 4648 section 5) without padding, the encoding JWTs, JWKs and opaque
// tokens use. Decoding is strict: '=' padding, characters outside the URL-safe alphabet
// and impossible lengths are rejected rather than skipped, so a value has exactly one
// accepted spelling.
//
//   std::string text = vigil::service::Base64UrlEncode(bytes);
//   std::optional<std::string> back = vigil::service::Base64UrlDecode(text);
//   if (!back) { /* not base64url */ }
//
// Thread-safety: plain functions without shared state; safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vigil::service {

// Encodes `bytes` as base64url without padding.
std::string Base64UrlEncode(std::span<const unsigned char> bytes);
std::string Base64UrlEncode(std::string_view bytes);

// Decodes unpadded base64url; nullopt on padding, invalid characters or a bad length.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace vigil::service

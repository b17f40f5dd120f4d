// Identifiers for the platform's records: 28 lowercase hex digits, the first 12 the
// creation time in milliseconds and the last 16 random. They sort by creation time (so
// an index on the id serves "newest first" and cursor pagination). They are not secrets:
// access is decided by who asks, never by knowing an id.
//
//   std::string id = service::NewId();      // "0193a1c2d3e4f5a6b7c8d9e0f1a2"
//   if (!service::IsValidId(raw)) throw http::HttpError(404, "no such item");
//
// Thread-safety: both functions may be called from any thread (no global lock).
#pragma once

#include <string>
#include <string_view>

namespace vigil::service {

inline constexpr std::size_t kIdLength = 28;

std::string NewId();
// True for exactly what NewId() produces: kIdLength lowercase hex digits.
bool IsValidId(std::string_view id) noexcept;

}  // namespace vigil::service

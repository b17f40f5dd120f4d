// UTF-8 checks shared by the OTLP encoders.
//
// Protobuf `string` fields must hold valid UTF-8 (Go receivers reject the whole request
// otherwise) and a JSON text must too, so both encoders write each byte that does not
// belong to a well-formed sequence as U+FFFD. The common case, all ASCII, is checked
// eight bytes at a time.
//
//   std::size_t n = otlp::SanitizedUtf8Size(s);    // == s.size() when s is valid
//   if (n != s.size()) p = otlp::WriteSanitizedUtf8(s, p);
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace vigil::telemetry::otlp {

inline constexpr char kReplacementChar[] = "\xEF\xBF\xBD";  // U+FFFD
inline constexpr std::size_t kReplacementSize = 3;

// Length (2 to 4) of the well-formed multi-byte sequence starting at p[0] (a byte >= 0x80),
// or 0 when there is none (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
inline std::size_t Utf8SequenceSize(const unsigned char* p, std::size_t avail) noexcept {
  const unsigned char c = p[0];
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < avail && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (c == 0xE0) {
    return cont(1, 0xA0) && cont(2) ? 3 : 0;
  }
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (c == 0xED) {
    return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  }
  if (c == 0xF0) {
    return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  }
  if (c >= 0xF1 && c <= 0xF3) {
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  if (c == 0xF4) {
    return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// Index of the first byte >= 0x80, or s.size().
inline std::size_t AsciiPrefix(std::string_view s) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    if ((word & 0x8080808080808080ULL) != 0) {
      break;
    }
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) {
    ++i;
  }
  return i;
}

// The size of `s` after replacing every byte outside a well-formed sequence by U+FFFD.
// Equal to s.size() exactly when s is valid UTF-8 (each replacement grows the text).
inline std::size_t SanitizedUtf8Size(std::string_view s) noexcept {
  std::size_t i = AsciiPrefix(s);
  if (i == s.size()) {
    return i;
  }
  std::size_t size = i;
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    if (u[i] < 0x80) {
      ++i;
      ++size;
    } else if (std::size_t n = Utf8SequenceSize(u + i, s.size() - i); n != 0) {
      i += n;
      size += n;
    } else {
      ++i;
      size += kReplacementSize;
    }
  }
  return size;
}

// Writes the sanitized form of `s` at `out`; returns the end. Writes exactly
// SanitizedUtf8Size(s) bytes.
inline char* WriteSanitizedUtf8(std::string_view s, char* out) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    if (u[i] < 0x80) {
      *out++ = s[i++];
    } else if (std::size_t n = Utf8SequenceSize(u + i, s.size() - i); n != 0) {
      std::memcpy(out, s.data() + i, n);
      out += n;
      i += n;
    } else {
      std::memcpy(out, kReplacementChar, kReplacementSize);
      out += kReplacementSize;
      ++i;
    }
  }
  return out;
}

}  // namespace vigil::telemetry::otlp

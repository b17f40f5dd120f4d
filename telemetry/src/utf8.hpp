// UTF-8 validation and repair, shared by everything the SDK writes as text: log lines
// (JSON), OTLP/JSON and OTLP protobuf `string` fields (Go receivers reject a whole request
// over one invalid string).
//
// Invalid input is repaired the way Unicode recommends ("maximal subparts", Unicode 15
// section 3.9): each maximal ill-formed subpart becomes one U+FFFD, so a string is
// repaired the same way in a log line and in a span. Valid UTF-8, the common case, is
// left as it is; ASCII is checked eight bytes at a time.
//
//   std::size_t bad = 0;
//   std::size_t len = utf8::SequenceLength(p, n, &bad);   // 1-4, or 0 and `bad` bytes
//   utf8::Measured m = utf8::Measure(s);                  // m.valid, m.repaired_size
//   if (!m.valid) out = utf8::WriteRepaired(s, out);      // writes m.repaired_size bytes
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace vigil::telemetry::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length (1-4) of the well-formed sequence starting at p[0] (n >= 1 bytes available), or
// 0 when there is none; then *bad is the length of its maximal ill-formed subpart (1-3),
// which is to become one U+FFFD.
inline std::size_t SequenceLength(const unsigned char* p, std::size_t n,
                                  std::size_t* bad) noexcept {
  // Unicode 15, table 3-7 (well-formed UTF-8 byte sequences): the lead byte fixes the
  // length and the range allowed for the second byte; later bytes are 80..BF.
  const unsigned char b0 = p[0];
  std::size_t len;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 < 0x80) {
    return 1;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) {
      lo = 0xA0;  // no overlong forms
    }
    if (b0 == 0xED) {
      hi = 0x9F;  // no surrogates
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) {
      lo = 0x90;  // no overlong forms
    }
    if (b0 == 0xF4) {
      hi = 0x8F;  // nothing above U+10FFFF
    }
  } else {
    *bad = 1;
    return 0;
  }
  std::size_t i = 1;
  for (; i < len && i < n; ++i) {
    const unsigned char min = i == 1 ? lo : 0x80;
    const unsigned char max = i == 1 ? hi : 0xBF;
    if (p[i] < min || p[i] > max) {
      break;
    }
  }
  if (i == len) {
    return len;
  }
  *bad = i;
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

struct Measured {
  bool valid = true;               // s is well-formed UTF-8
  std::size_t repaired_size = 0;  // the size of WriteRepaired(s): s.size() when valid
};

inline Measured Measure(std::string_view s) noexcept {
  Measured m;
  std::size_t i = AsciiPrefix(s);
  m.repaired_size = i;
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    std::size_t bad = 0;
    if (const std::size_t len = SequenceLength(u + i, s.size() - i, &bad); len != 0) {
      i += len;
      m.repaired_size += len;
    } else {
      i += bad;
      m.repaired_size += kReplacement.size();
      m.valid = false;
    }
  }
  return m;
}

// Writes `s` with each maximal ill-formed subpart replaced by U+FFFD at `out`; returns
// the end (Measure(s).repaired_size bytes later).
inline char* WriteRepaired(std::string_view s, char* out) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t bad = 0;
    if (const std::size_t len = SequenceLength(u + i, s.size() - i, &bad); len != 0) {
      std::memcpy(out, s.data() + i, len);
      out += len;
      i += len;
    } else {
      std::memcpy(out, kReplacement.data(), kReplacement.size());
      out += kReplacement.size();
      i += bad;
    }
  }
  return out;
}

}  // namespace vigil::telemetry::utf8

// The JSON pieces of a log line: string escaping with UTF-8 repair, numbers, and the
// key rules (redaction, fixed-key collisions). Nothing here allocates, so the backend
// and a fatal-signal handler can both use it.
//
//   AppendEscaped(out, "caf\xC3\xA9 \"quoted\"\n");   // caf\u00e9 stays as UTF-8 bytes
//   char buf[kMaxNumberSize]; out.Append(buf, FormatDouble(0.1, buf));  // "0.1"
//   IsSensitiveKey("http.request.header.Authorization");  // true
//
// `Out` is any type with `void Append(const char*, std::size_t)`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "utf8.hpp"

namespace vigil::telemetry::internal {

// Enough for any number FormatInt/FormatUint/FormatDouble/FormatDurationNs write.
inline constexpr std::size_t kMaxNumberSize = 32;

std::size_t FormatInt(std::int64_t v, char* out) noexcept;
std::size_t FormatUint(std::uint64_t v, char* out) noexcept;
// Shortest round-trip form (std::to_chars); "null" for NaN and infinities.
std::size_t FormatDouble(double v, char* out) noexcept;
// Nanoseconds as milliseconds with up to six decimals, trailing zeros trimmed:
// 12'400'000 -> "12.4", 3'000'000 -> "3", -1 -> "-0.000001".
std::size_t FormatDurationNs(std::int64_t ns, char* out) noexcept;

// Whether a field's value must be replaced by "[REDACTED]": the key, lowercased, contains
// one of kSensitiveKeyParts.
inline constexpr std::string_view kSensitiveKeyParts[] = {
    "authorization", "cookie", "password", "passwd",      "secret",     "token",
    "api_key",       "apikey", "api-key",  "private_key", "credential", "session",
};
bool IsSensitiveKey(std::string_view key) noexcept;

// The keys every line starts with; a field may not repeat them.
bool IsReservedKey(std::string_view key) noexcept;
inline constexpr std::string_view kReservedKeyPrefix = "attr.";

namespace internal {
// Bytes that need no escaping: printable ASCII other than '"' and '\\'.
inline constexpr auto kPlain = [] {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 0x80; ++c) table[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return table;
}();
inline bool Plain(unsigned char c) noexcept { return kPlain[c]; }

// Index of the first byte in [p, p + n) that is not Plain, or n.
inline std::size_t PlainRun(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
#if defined(__SSE2__)
  // A signed compare with 0x20 catches both control characters and bytes >= 0x80.
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i special =
        _mm_or_si128(_mm_cmplt_epi8(v, space),
                     _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && Plain(p[i])) ++i;
  return i;
}
}  // namespace internal

// Appends `s` as the inside of a JSON string (no surrounding quotes).
template <typename Out>
void AppendEscaped(Out& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size();
  while (n != 0) {
    const std::size_t run = internal::PlainRun(p, n);
    if (run != 0) {
      out.Append(reinterpret_cast<const char*>(p), run);
      p += run;
      n -= run;
      if (n == 0) break;
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      std::size_t len = 6;
      switch (c) {
        case '"':
          esc[1] = '"';
          len = 2;
          break;
        case '\\':
          esc[1] = '\\';
          len = 2;
          break;
        case '\n':
          esc[1] = 'n';
          len = 2;
          break;
        case '\r':
          esc[1] = 'r';
          len = 2;
          break;
        case '\t':
          esc[1] = 't';
          len = 2;
          break;
        default:
          break;
      }
      out.Append(esc, len);
      ++p;
      --n;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t len = utf8::SequenceLength(p, n, &bad);
    if (len != 0) {
      out.Append(reinterpret_cast<const char*>(p), len);
      p += len;
      n -= len;
    } else {
      out.Append(utf8::kReplacement.data(), utf8::kReplacement.size());
      p += bad;
      n -= bad;
    }
  }
}

}  // namespace vigil::telemetry::internal

#include <vigil/http/etag.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::http {

namespace {

using telemetry::text::IsOws;
using telemetry::text::TrimOws;

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ULL;

constexpr std::uint64_t RotateLeft(std::uint64_t x, int r) noexcept {
  return (x << r) | (x >> (64 - r));
}

// Little-endian whatever the host, so that the tag is the same everywhere.
std::uint64_t LoadLittle(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

// Every input bit reaches every output bit (the MurmurHash3 finaliser's constants).
constexpr std::uint64_t Avalanche(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 33;
  return h;
}

bool IsEtagChar(unsigned char c) noexcept { return c == 0x21 || (c >= 0x23 && c != 0x7F); }

// Reads `[W/] DQUOTE *etagc DQUOTE` at `pos`; returns the opaque part with its quotes.
bool ReadEntityTag(std::string_view text, std::size_t& pos, std::string_view& opaque) noexcept {
  if (text.substr(pos, 2) == "W/") pos += 2;
  if (pos >= text.size() || text[pos] != '"') return false;
  const std::size_t start = pos++;
  while (pos < text.size() && IsEtagChar(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos >= text.size() || text[pos] != '"') return false;
  ++pos;
  opaque = text.substr(start, pos - start);
  return true;
}

}  // namespace

std::uint64_t BodyHash(std::string_view body) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  std::size_t n = body.size();
  std::uint64_t h = kPrime3 ^ (static_cast<std::uint64_t>(n) * kPrime1);
  for (; n >= 8; n -= 8, p += 8) {
    h ^= RotateLeft(LoadLittle(p, 8) * kPrime2, 31) * kPrime1;
    h = RotateLeft(h, 27) * kPrime1 + kPrime3;
  }
  if (n > 0) {
    h ^= RotateLeft(LoadLittle(p, n) * kPrime2, 31) * kPrime1;
    h = RotateLeft(h, 27) * kPrime1 + kPrime3;
  }
  return Avalanche(h);
}

std::string StrongEtag(std::string_view body) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t h = BodyHash(body);
  std::string tag(18, '"');
  for (std::size_t i = 16; i > 0; --i, h >>= 4) tag[i] = kHex[h & 0xF];
  return tag;
}

bool IfNoneMatchMatches(std::string_view if_none_match, std::string_view etag) noexcept {
  std::string_view own;
  std::size_t own_pos = 0;
  const std::string_view trimmed_etag = TrimOws(etag);
  if (!ReadEntityTag(trimmed_etag, own_pos, own) || own_pos != trimmed_etag.size()) return false;

  const std::string_view value = TrimOws(if_none_match);
  // "*" matches when the resource has a current representation, which it has: a tag.
  if (value == "*") return true;
  std::size_t pos = 0;
  while (pos < value.size()) {
    // Empty list elements are allowed by the list syntax (RFC 9110 5.6.1).
    if (IsOws(value[pos]) || value[pos] == ',') {
      ++pos;
      continue;
    }
    std::string_view theirs;
    if (!ReadEntityTag(value, pos, theirs)) return false;
    if (theirs == own) return true;
    while (pos < value.size() && IsOws(value[pos])) ++pos;
    if (pos < value.size() && value[pos] != ',') return false;
  }
  return false;
}

}  // namespace vigil::http

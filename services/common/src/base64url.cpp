#include "vigil/service/base64url.hpp"

#include <sodium.h>

#include <algorithm>

namespace vigil::service {

std::string Base64UrlEncode(std::span<const unsigned char> bytes) {
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  // sodium_base64_ENCODED_LEN counts the terminating NUL, which sodium_bin2base64 writes.
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), kVariant);
  out.resize(out.size() - 1);
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  return Base64UrlEncode(std::span<const unsigned char>(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

namespace {

bool IsUrlSafeChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  // libsodium 1.0.18 maps some bytes above 0x7F onto alphabet characters (its
  // constant-time lookup sees them as negative chars): "\xff" decodes like "_". Such a
  // text is not base64url, and letting it through would give a value a second spelling
  // (a bearer token's signature, say), so the alphabet is checked here first.
  if (!std::all_of(text.begin(), text.end(), IsUrlSafeChar)) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t written = 0;
  const char* end = nullptr;
  // ignore = nullptr: no character is skipped, so whitespace and '=' are errors; `end`
  // tells whether decoding stopped early at an invalid character.
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &written, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return std::nullopt;
  }
  if (end != text.data() + text.size()) return std::nullopt;
  out.resize(written);
  return out;
}

}  // namespace vigil::service

// Small ASCII text helpers for the grammars Vigil parses: HTTP field values (RFC 9110),
// W3C trace-context headers and OTEL_* variables. The telemetry SDK's parsers and
// libvigil_http's header readers (Accept, Accept-Encoding, If-None-Match) share them, so
// that one definition of OWS, token and qvalue serves every header.
//
// Everything here is byte-oriented and locale-independent on purpose: these are ASCII
// grammars, and a process-wide setlocale() must not change how they parse. Where two
// grammars disagree (W3C ids accept lowercase hex only, percent-escapes accept either
// case) there are two clearly named functions.
//
//   std::string_view v = text::TrimOws("  gzip\t");           // "gzip"
//   if (text::EqualsIgnoreCase(v, "GZIP")) { ... }
//   std::optional<std::string> raw = text::PercentDecode("a%20b");  // "a b"
//   std::optional<int> q = text::ParseQvalue("0.8");            // 800 (thousandths)
//   std::string_view cut = text::Utf8Prefix("caf\xC3\xA9", 4);    // "caf", not "caf\xC3"
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::telemetry::text {

// HTTP optional whitespace (RFC 9110 OWS): SP / HTAB only, never CR or LF.
constexpr bool IsOws(char c) noexcept { return c == ' ' || c == '\t'; }

// OWS is not part of any field value, list member or variable value.
constexpr std::string_view TrimOws(std::string_view s) noexcept {
  while (!s.empty() && IsOws(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && IsOws(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Value of a hex digit of either case (percent-escapes, RFC 3986), or -1.
constexpr int HexValue(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Value of a lowercase hex digit, or -1: W3C trace and span ids reject "AB" although
// HexValue would accept it.
constexpr int LowerHexValue(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

// std::tolower depends on the C locale; header names and option values must not.
constexpr char AsciiLower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string AsciiLowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = AsciiLower(c);
  }
  return out;
}

// ASCII case-insensitive equality (media types, header names, enum-like variables).
constexpr bool EqualsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) {
      return false;
    }
  }
  return true;
}

// RFC 9110 tchar: what header names, media-type parameters and baggage keys are made of.
constexpr bool IsTokenChar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  for (char t : std::string_view("!#$%&'*+-.^_`|~")) {
    if (c == t) {
      return true;
    }
  }
  return false;
}

// RFC 9110 token = 1*tchar.
constexpr bool IsToken(std::string_view s) noexcept {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!IsTokenChar(c)) {
      return false;
    }
  }
  return true;
}

// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence: cutting text for a limit never splits a character (a valid string stays valid).
constexpr std::string_view Utf8Prefix(std::string_view s, std::size_t max_bytes) noexcept {
  if (s.size() <= max_bytes) {
    return s;
  }
  std::size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
    --n;
  }
  return s.substr(0, n);
}

// RFC 9110 weight: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), the
// whole of `s`, as thousandths (0..1000); nullopt for anything outside that grammar
// ("1.5", "0.0001", ".5", "0,5", a sign or a space).
constexpr std::optional<int> ParseQvalue(std::string_view s) noexcept {
  if (s.empty() || s.size() > 5 || (s[0] != '0' && s[0] != '1')) {
    return std::nullopt;
  }
  int value = s[0] == '1' ? 1000 : 0;
  if (s.size() == 1) {
    return value;
  }
  if (s[1] != '.') {
    return std::nullopt;
  }
  int scale = 100;
  for (std::size_t i = 2; i < s.size(); ++i, scale /= 10) {
    if (s[i] < '0' || s[i] > '9' || (value == 1000 && s[i] != '0')) {
      return std::nullopt;
    }
    value += (s[i] - '0') * scale;
  }
  return value;
}

// RFC 3986 percent-decoding. Strict: a '%' not followed by two hex digits (either case)
// is nullopt rather than passed through, so a truncated escape is reported, not
// silently kept. Every other byte is copied as it is.
inline std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return std::nullopt;
    }
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return out;
}

}  // namespace vigil::telemetry::text

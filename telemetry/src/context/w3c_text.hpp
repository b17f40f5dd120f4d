// Character classes and small text helpers shared by the W3C header parsers.
//
// The traceparent, tracestate and baggage grammars are all byte-oriented ABNF over
// ASCII, so one 256-entry class table answers every "may this byte appear here?"
// question with a single load. The Append*Header functions let a caller that owns a
// reusable buffer (an HTTP client injecting headers) format without a fresh string.
//
//   std::string buf;
//   w3c::AppendTraceStateHeader(ctx.span.trace_state, buf);
//   request.set("tracestate", buf);
//
// Thread-safety: stateless functions and constant tables; safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry::w3c {

enum CharClass : std::uint8_t {
  kLcAlpha = 1 << 0,       // a-z
  kDigit = 1 << 1,         // 0-9
  kKeyChar = 1 << 2,       // tracestate: lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
  kStateValue = 1 << 3,    // tracestate nblk-chr: %x21-2B / %x2D-3C / %x3E-7E
  kToken = 1 << 4,         // RFC 7230 tchar
  kBaggageOctet = 1 << 5,  // %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
  kHexAny = 1 << 6,        // 0-9 a-f A-F (percent-escapes accept either case)
  kStateChr = 1 << 7,      // tracestate chr: %x20 / nblk-chr
};

inline constexpr std::array<std::uint8_t, 256> kCharClass = [] {
  std::array<std::uint8_t, 256> t{};
  for (unsigned c = 0; c < 256; ++c) {
    std::uint8_t bits = 0;
    const bool lower = c >= 'a' && c <= 'z';
    const bool digit = c >= '0' && c <= '9';
    if (lower) bits |= kLcAlpha;
    if (digit) bits |= kDigit;
    if (lower || digit || c == '_' || c == '-' || c == '*' || c == '/' || c == '@') {
      bits |= kKeyChar;
    }
    if (c >= 0x21 && c <= 0x7e && c != ',' && c != '=') bits |= kStateValue | kStateChr;
    if (c == ' ') bits |= kStateChr;
    if (text::IsTokenChar(static_cast<char>(c))) bits |= kToken;
    if (c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\') {
      bits |= kBaggageOctet;
    }
    if (text::HexValue(static_cast<char>(c)) >= 0) bits |= kHexAny;
    t[c] = bits;
  }
  return t;
}();

inline bool Is(char c, std::uint8_t cls) noexcept {
  return (kCharClass[static_cast<unsigned char>(c)] & cls) != 0;
}

// The parsers predate text.hpp and spell these w3c::IsOws / w3c::TrimOws.
using text::IsOws;
using text::TrimOws;

// ExtractTraceContext's tracestate step: parses straight into the context being
// built. Returns why the list was unusable (`out` is then empty) or why members were
// dropped; empty when the whole list was kept.
std::string_view ParseTracestateInto(std::string_view header, TraceState& out);

// Appends the header value of `ts` / `bag` to `out` (ToHeader() without the allocation
// when `out` already has capacity).
void AppendTraceStateHeader(const TraceState& ts, std::string& out);
void AppendBaggageHeader(const Baggage& bag, std::string& out);

}  // namespace vigil::telemetry::w3c

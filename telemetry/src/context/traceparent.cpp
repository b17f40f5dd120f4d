// The traceparent header: parsing, formatting, and extraction together with tracestate.
//
// This runs on every request in both directions, so it neither allocates nor branches
// per character: the ids are decoded and encoded eight hex digits per 64-bit word, and
// the validity of all 50 digits is checked with one test at the end.
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <vigil/telemetry/context.hpp>

#include "context/w3c_text.hpp"

namespace vigil::telemetry {
namespace {

// Offsets of the fields in a version-00 header: "vv-<32>-<16>-ff".
constexpr std::size_t kTraceIdAt = 3;
constexpr std::size_t kSpanIdAt = kTraceIdAt + TraceId::kHexSize + 1;  // 36
constexpr std::size_t kFlagsAt = kSpanIdAt + SpanId::kHexSize + 1;     // 53

// Lowercase hex digit -> 0..15; everything else -> 0xF0, so OR-ing the nibbles of a
// field leaves a high bit set iff some character was not a lowercase hex digit.
constexpr std::array<std::uint8_t, 256> kNibble = [] {
  std::array<std::uint8_t, 256> t{};
  t.fill(0xF0);
  for (unsigned c = '0'; c <= '9'; ++c) t[c] = static_cast<std::uint8_t>(c - '0');
  for (unsigned c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::uint8_t>(c - 'a' + 10);
  return t;
}();

// Decodes two hex digits; `bad` gets a bit above 0x0f if either is not lowercase hex.
inline std::uint8_t DecodeByte(const char* in, unsigned& bad) noexcept {
  const std::uint8_t hi = kNibble[static_cast<unsigned char>(in[0])];
  const std::uint8_t lo = kNibble[static_cast<unsigned char>(in[1])];
  bad |= hi | lo;
  return static_cast<std::uint8_t>((hi << 4) | lo);
}

// Decodes 8 hex digits (one 64-bit load) into 4 bytes, SWAR style: a lookup per
// character costs about four times as much. Sets bits in `bad` unless all 8 characters
// are lowercase hex.
inline void Decode8(const char* in, std::uint8_t* out, std::uint64_t& bad) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  std::uint64_t x;
  std::memcpy(&x, in, sizeof x);
  if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
  // While every byte is below 0x80, adding a per-byte constant below 0x80 cannot carry
  // into the next byte, so each byte's high bit answers "x >= bound". Bytes >= 0x80
  // may carry, but they already mark the input bad.
  const std::uint64_t ge_0 = x + kOnes * (0x80 - '0');
  const std::uint64_t gt_9 = x + kOnes * (0x80 - '9' - 1);
  const std::uint64_t ge_a = x + kOnes * (0x80 - 'a');
  const std::uint64_t gt_f = x + kOnes * (0x80 - 'f' - 1);
  const std::uint64_t ok = ((ge_0 & ~gt_9) | (ge_a & ~gt_f)) & kHigh;
  bad |= (ok ^ kHigh) | (x & kHigh);
  // '0'-'9' are 0x30-0x39 and 'a'-'f' 0x61-0x66: the low nibble, plus 9 for letters
  // (bit 6 set), is the digit's value.
  const std::uint64_t nib = (x & (kOnes * 0x0f)) + 9 * ((x >> 6) & kOnes);
  // Pair the nibbles (first character is the high one), then squeeze the even bytes.
  std::uint64_t t = ((nib << 4) | (nib >> 8)) & 0x00ff00ff00ff00ffULL;
  t = (t | (t >> 8)) & 0x0000ffff0000ffffULL;
  t = (t | (t >> 16)) & 0x00000000ffffffffULL;
  auto word = static_cast<std::uint32_t>(t);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap32(word);
  std::memcpy(out, &word, sizeof word);
}

constexpr char kHexDigits[] = "0123456789abcdef";

// Encodes 4 bytes as 8 lowercase hex digits with one 64-bit store; the inverse of
// Decode8.
inline void Encode8(const std::uint8_t* in, char* out) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  std::uint32_t word;
  std::memcpy(&word, in, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap32(word);
  // Spread the bytes to every other byte, then split each into its two nibbles, high
  // nibble first.
  std::uint64_t x = word;
  x = (x | (x << 16)) & 0x0000ffff0000ffffULL;
  x = (x | (x << 8)) & 0x00ff00ff00ff00ffULL;
  const std::uint64_t nib = ((x >> 4) & (kOnes * 0x0f)) | ((x & (kOnes * 0x0f)) << 8);
  // Bit 4 of nibble+6 is set exactly for 10..15, which need 'a'-'0'-10 = 39 more.
  const std::uint64_t letter = ((nib + kOnes * 6) >> 4) & kOnes;
  std::uint64_t text = nib + kOnes * '0' + letter * 39;
  if constexpr (std::endian::native == std::endian::big) text = __builtin_bswap64(text);
  std::memcpy(out, &text, sizeof text);
}

template <std::size_t N>
inline bool AllZero(const std::array<std::uint8_t, N>& bytes) noexcept {
  static_assert(N % 8 == 0);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < N; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i, sizeof word);
    acc |= word;
  }
  return acc == 0;
}

// constinit: usable even from other translation units' static initialisers.
constinit const ParseResult<SpanContext> kNoSpanContext{};

struct Fields {
  std::array<std::uint8_t, TraceId::kSize> trace;
  std::array<std::uint8_t, SpanId::kSize> span;
  std::uint8_t flags;
};

// Fills `f` from a traceparent value; returns the failure reason, or "" on success.
std::string_view ParseFields(std::string_view header, Fields& f) noexcept {
  header = w3c::TrimOws(header);
  if (header.size() < kTraceparentSize) return "traceparent: shorter than 55 characters";
  const char* p = header.data();

  unsigned bad_byte = 0;
  const std::uint8_t version = DecodeByte(p, bad_byte);
  if (bad_byte > 0x0f || p[2] != '-') {
    return "traceparent: version is not two lowercase hex digits and '-'";
  }
  if (version == 0xff) return "traceparent: version ff is forbidden";
  if (header.size() > kTraceparentSize) {
    // Version 00 has exactly four fields; a later version may append "-<more>", which
    // we must ignore while still using the fields version 00 defines.
    if (version == 0) return "traceparent: version 00 must be 55 characters";
    if (p[kTraceparentSize] != '-') return "traceparent: trace-flags not followed by '-'";
  }
  if (p[kSpanIdAt - 1] != '-' || p[kFlagsAt - 1] != '-') {
    return "traceparent: fields not separated by '-'";
  }

  auto& trace = f.trace;
  auto& span = f.span;
  std::uint64_t bad = 0;
  Decode8(p + kTraceIdAt, trace.data(), bad);
  Decode8(p + kTraceIdAt + 8, trace.data() + 4, bad);
  Decode8(p + kTraceIdAt + 16, trace.data() + 8, bad);
  Decode8(p + kTraceIdAt + 24, trace.data() + 12, bad);
  Decode8(p + kSpanIdAt, span.data(), bad);
  Decode8(p + kSpanIdAt + 8, span.data() + 4, bad);
  f.flags = DecodeByte(p + kFlagsAt, bad_byte);
  if (bad != 0 || bad_byte > 0x0f) return "traceparent: ids and flags must be lowercase hex";
  if (AllZero(trace)) return "traceparent: trace-id is all zeros";
  if (AllZero(span)) return "traceparent: parent-id is all zeros";

  return {};
}

}  // namespace

ParseResult<SpanContext> ParseTraceparent(std::string_view header) noexcept {
  // Every path returns this one named object, so it is built in the caller's slot.
  // Copying a disengaged prototype instead of value-initialising it spares an 88-byte
  // `rep stos` that GCC emits otherwise and that costs a fifth of the whole parse.
  ParseResult<SpanContext> result = kNoSpanContext;
  Fields f;
  result.error = ParseFields(header, f);
  if (result.error.empty()) {
    SpanContext& ctx = result.value.emplace();
    ctx.trace_id = TraceId(f.trace);
    ctx.span_id = SpanId(f.span);
    ctx.flags.bits = f.flags;
    ctx.is_remote = true;
  }
  return result;
}

void FormatTraceparent(const SpanContext& ctx, char* out) noexcept {
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  const std::uint8_t* trace = ctx.trace_id.bytes().data();
  Encode8(trace, out + kTraceIdAt);
  Encode8(trace + 4, out + kTraceIdAt + 8);
  Encode8(trace + 8, out + kTraceIdAt + 16);
  Encode8(trace + 12, out + kTraceIdAt + 24);
  out[kSpanIdAt - 1] = '-';
  Encode8(ctx.span_id.bytes().data(), out + kSpanIdAt);
  Encode8(ctx.span_id.bytes().data() + 4, out + kSpanIdAt + 8);
  out[kFlagsAt - 1] = '-';
  out[kFlagsAt] = kHexDigits[ctx.flags.bits >> 4];
  out[kFlagsAt + 1] = kHexDigits[ctx.flags.bits & 0x0f];
}

std::string FormatTraceparent(const SpanContext& ctx) {
  std::string s(kTraceparentSize, '\0');
  FormatTraceparent(ctx, s.data());
  return s;
}

ParseResult<SpanContext> ExtractTraceContext(std::string_view traceparent,
                                             std::string_view tracestate) {
  ParseResult<SpanContext> result = ParseTraceparent(traceparent);
  // The spec forbids looking at tracestate without a valid traceparent, and a bad
  // tracestate must never cost us the traceparent: it is simply not propagated. What
  // the tracestate step dropped is still worth a debug line, so it becomes the note.
  if (result) result.error = w3c::ParseTracestateInto(tracestate, result.value->trace_state);
  return result;
}

}  // namespace vigil::telemetry

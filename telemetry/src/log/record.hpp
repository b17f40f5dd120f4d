// The binary form of one log call inside a ring: what the caller copies, what the
// backend reads back to format the JSON line. Only this process reads it, so it is
// native-endian and unaligned fields are accessed with memcpy.
//
//   std::size_t size = AlignRecord(EncodedSize(&ctx, msg, fields, n));
//   Encode(ring_space, size, LogLevel::kInfo, ReadStamp(), &ctx, msg, fields, n);
//   RecordReader r(ring_space);  // backend: r.Read<std::uint32_t>() == size, ...
//
// Layout (offsets in bytes):
//   0  u32  record size, including padding up to a multiple of 8
//   4  u8   kind (kLine, or kPadding for the unused tail of the ring before a wrap)
//   5  u8   level
//   6  u8   flags (kHasContext)
//   7  u8   unused
//   8  u64  timestamp (see clock.hpp)
//   16 u32  message length
//   20 u16  field count
//   22      message bytes
//   then, with kHasContext: 16 trace id bytes, 8 span id bytes, u8 request id length,
//   request id bytes
//   then each field: u64 Field::packed_sizes() (key length in bits 0-15, type in 16-23,
//   value length in 32-63), key bytes, value bytes (the string, or the 8 bytes of any
//   other type). The sizes word is the Field's own, so encoding a field's header is one
//   load and one store, and its encoded size is one addition of its two lengths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/log.hpp>

namespace vigil::telemetry::internal {

inline constexpr std::uint8_t kRecordLine = 0;
inline constexpr std::uint8_t kRecordPadding = 1;
inline constexpr std::uint8_t kHasContext = 0x01;

inline constexpr std::size_t kRecordHeaderSize = 22;
inline constexpr std::size_t kContextSize = TraceId::kSize + SpanId::kSize + 1;
inline constexpr std::size_t kMaxKeySize = 0xFFFF;
inline constexpr std::size_t kMaxFields = 0xFFFF;

constexpr std::size_t AlignRecord(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

inline constexpr std::size_t kFieldHeaderSize = 8;

// The parts of Field::packed_sizes(), for the reader, which has the word and no Field.
constexpr std::size_t PackedKeySize(std::uint64_t sizes) noexcept { return sizes & 0xFFFF; }
constexpr Field::Type PackedType(std::uint64_t sizes) noexcept {
  return static_cast<Field::Type>((sizes >> 16) & 0xFF);
}
constexpr std::size_t PackedValueSize(std::uint64_t sizes) noexcept { return sizes >> 32; }

// The layout is Field's (log.hpp); these decoders must read it as its accessors do.
static_assert(PackedKeySize(Field("four", "value").packed_sizes()) == 4);
static_assert(PackedType(Field("four", "value").packed_sizes()) == Field::Type::kString);
static_assert(PackedValueSize(Field("four", "value").packed_sizes()) == 5);
static_assert(PackedType(Field("k", 1.5).packed_sizes()) == Field::Type::kDouble);
static_assert(PackedValueSize(Field("k", 1.5).packed_sizes()) == 8);

// Field keys are at most kMaxKeySize bytes by construction (Field cuts them).
constexpr std::size_t FieldEncodedSize(const Field& f) noexcept {
  const std::uint64_t sizes = f.packed_sizes();
  return kFieldHeaderSize + PackedKeySize(sizes) + PackedValueSize(sizes);
}

// The record size for a call, before alignment. Strings longer than 4 GiB cannot occur:
// the caller drops any record larger than half its ring, and rings are at most 1 GiB.
[[gnu::always_inline]] inline std::size_t EncodedSize(const RequestContext* ctx,
                                                      std::string_view msg, const Field* fields,
                                                      std::size_t count) noexcept {
  std::size_t n = kRecordHeaderSize + msg.size();
  if (ctx != nullptr) n += kContextSize + ctx->request_id.view().size();
  if (count > kMaxFields) count = kMaxFields;
  for (std::size_t i = 0; i < count; ++i) n += FieldEncodedSize(fields[i]);
  return n;
}

// memcpy that the compiler can expand inline for the short strings typical of keys and
// values; a call to the library routine costs more than the copy itself below 32 bytes.
// Copies of up to 32 bytes use two overlapping loads and stores of the largest size
// that fits.
inline char* CopyBytes(char* out, const char* in, std::size_t n) noexcept {
  if (n > 16 && n <= 32) {
    char a[16];
    char b[16];
    std::memcpy(a, in, 16);
    std::memcpy(b, in + n - 16, 16);
    std::memcpy(out, a, 16);
    std::memcpy(out + n - 16, b, 16);
    return out + n;
  }
  if (n <= 16) {
    if (n >= 8) {
      std::uint64_t a;
      std::uint64_t b;
      std::memcpy(&a, in, 8);
      std::memcpy(&b, in + n - 8, 8);
      std::memcpy(out, &a, 8);
      std::memcpy(out + n - 8, &b, 8);
    } else if (n >= 4) {
      std::uint32_t a;
      std::uint32_t b;
      std::memcpy(&a, in, 4);
      std::memcpy(&b, in + n - 4, 4);
      std::memcpy(out, &a, 4);
      std::memcpy(out + n - 4, &b, 4);
    } else if (n >= 2) {
      std::uint16_t a;
      std::uint16_t b;
      std::memcpy(&a, in, 2);
      std::memcpy(&b, in + n - 2, 2);
      std::memcpy(out, &a, 2);
      std::memcpy(out + n - 2, &b, 2);
    } else if (n == 1) {
      *out = *in;
    }
    return out + n;
  }
  std::memcpy(out, in, n);
  return out + n;
}

template <typename T>
inline char* Put(char* out, T v) noexcept {
  std::memcpy(out, &v, sizeof v);
  return out + sizeof v;
}

// Writes the record into `out` (`size` bytes, as returned by AlignRecord(EncodedSize())).
// Always inlined: it is the body of the caller's hot path. Neighbouring header fields
// are written as one wider store where the layout allows.
[[gnu::always_inline]] inline void Encode(char* out, std::size_t size, LogLevel level,
                                          std::uint64_t stamp, const RequestContext* ctx,
                                          std::string_view msg, const Field* fields,
                                          std::size_t count) noexcept {
  if (count > kMaxFields) count = kMaxFields;
  char* p = out;
  // size | kind << 32 | level << 40 | flags << 48 (byte 7 unused)
  p = Put(p, static_cast<std::uint64_t>(size) | (std::uint64_t{kRecordLine} << 32) |
                 (std::uint64_t{static_cast<std::uint8_t>(level)} << 40) |
                 (std::uint64_t{ctx != nullptr ? kHasContext : std::uint8_t{0}} << 48));
  p = Put(p, stamp);
  // msg size (4 bytes) and field count (2 bytes); the two bytes after them are
  // overwritten by the message.
  Put(p, static_cast<std::uint64_t>(msg.size()) | (static_cast<std::uint64_t>(count) << 32));
  p += 6;
  p = CopyBytes(p, msg.data(), msg.size());
  if (ctx != nullptr) {
    std::memcpy(p, ctx->span.trace_id.bytes().data(), TraceId::kSize);
    p += TraceId::kSize;
    std::memcpy(p, ctx->span.span_id.bytes().data(), SpanId::kSize);
    p += SpanId::kSize;
    const std::string_view rid = ctx->request_id.view();
    p = Put(p, static_cast<std::uint8_t>(rid.size()));
    p = CopyBytes(p, rid.data(), rid.size());
  }
  for (std::size_t i = 0; i < count; ++i) {
    const Field& f = fields[i];
    const std::uint64_t sizes = f.packed_sizes();
    p = Put(p, sizes);
    p = CopyBytes(p, f.key().data(), PackedKeySize(sizes));
    if (PackedType(sizes) == Field::Type::kString) {
      p = CopyBytes(p, f.string_value().data(), PackedValueSize(sizes));
    } else {
      p = Put(p, f.value_bits());
    }
  }
}

// Reading side: a cursor over one record, trusting the layout written by Encode.
class RecordReader {
 public:
  explicit RecordReader(const char* p) noexcept : p_(p) {}

  template <typename T>
  T Read() noexcept {
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  std::string_view Bytes(std::size_t n) noexcept {
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  const char* position() const noexcept { return p_; }

 private:
  const char* p_;
};

}  // namespace vigil::telemetry::internal

// JSON line formatting.
#include "log/line_format.hpp"

#include <array>
#include <cstring>
#include <vigil/telemetry/log.hpp>

#include "log/json.hpp"
#include "log/record.hpp"

namespace vigil::telemetry::internal {
namespace {

struct StringOut {
  std::string* s;
  void Append(const char* p, std::size_t n) { s->append(p, n); }
};

template <std::size_t N>
char* Literal(char* out, const char (&text)[N]) noexcept {
  std::memcpy(out, text, N - 1);
  return out + (N - 1);
}

// Lowercase hex, two characters per byte from one table lookup.
constexpr auto kHexPairs = [] {
  constexpr char kDigits[] = "0123456789abcdef";
  std::array<char, 512> table{};
  for (std::size_t i = 0; i < 256; ++i) {
    table[2 * i] = kDigits[i >> 4];
    table[2 * i + 1] = kDigits[i & 0xF];
  }
  return table;
}();

// Writes `n` id bytes as 2n hex digits; false (writing nothing) when they are all zero,
// which W3C Trace Context defines as invalid.
bool WriteId(const char* bytes, std::size_t n, char* out) noexcept {
  unsigned char any = 0;
  for (std::size_t i = 0; i < n; ++i) {
    any = static_cast<unsigned char>(any | bytes[i]);
  }
  if (any == 0) {
    return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(out + 2 * i, &kHexPairs[std::size_t{2} * static_cast<unsigned char>(bytes[i])], 2);
  }
  return true;
}

void AppendNumber(OutBuffer& out, std::size_t (*format)(std::uint64_t, char*), std::uint64_t v) {
  char* p = out.Reserve(kMaxNumberSize);
  out.Advance(format(v, p));
}

// Escapes into a fixed buffer; `overflow` when it does not fit.
struct FixedOut {
  char* data;
  std::size_t capacity;
  std::size_t size = 0;
  bool overflow = false;
  void Append(const char* p, std::size_t n) noexcept {
    if (n > capacity - size) {
      overflow = true;
      return;
    }
    std::memcpy(data + size, p, n);
    size += n;
  }
};

std::uint64_t Load64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Up to 8 bytes as a word, built from overlapping loads (no byte-wise stores to reload,
// which would stall on store forwarding). Equal byte strings of equal length give equal
// words, and every byte takes part.
std::uint64_t LoadUpTo8(const char* p, std::size_t n) noexcept {
  if (n >= 4) {
    std::uint32_t lo;
    std::uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    return lo | (std::uint64_t{hi} << 32);
  }
  if (n == 0) {
    return 0;
  }
  const auto b = [p](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(p[i])}; };
  return b(0) | (b(n / 2) << 8) | (b(n - 1) << 16);
}

// The key as words: whole words, then the last 8 bytes (overlapping the previous word).
template <typename Fn>
void ForEachWord(std::string_view key, Fn&& fn) noexcept {
  const char* p = key.data();
  const std::size_t n = key.size();
  if (n <= 8) {
    fn(LoadUpTo8(p, n));
    return;
  }
  std::size_t i = 0;
  for (; i + 8 < n; i += 8) {
    fn(Load64(p + i));
  }
  fn(Load64(p + n - 8));
}

std::uint64_t HashKey(std::string_view key) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ key.size();
  ForEachWord(key, [&h](std::uint64_t w) { h = (h ^ w) * 0xFF51AFD7ED558CCDULL; });
  return h ^ (h >> 29);
}

bool SameKey(const char* a, std::string_view b) noexcept {
  const char* p = a;
  bool same = true;
  ForEachWord(b, [&](std::uint64_t w) {
    // Walks `a` with the same word layout as `b`.
    const std::size_t n = b.size();
    std::uint64_t v;
    if (n <= 8) {
      v = LoadUpTo8(a, n);
    } else if (p + 8 < a + n) {
      v = Load64(p);
      p += 8;
    } else {
      v = Load64(a + n - 8);
    }
    same = same && v == w;
  });
  return same;
}

// The text that opens a field: ,"key": with the fixed-key prefix and escaping applied.
template <typename Out>
void AppendKey(Out& out, std::string_view key) {
  out.Append(",\"", 2);
  if (IsReservedKey(key)) {
    out.Append(kReservedKeyPrefix.data(), kReservedKeyPrefix.size());
  }
  AppendEscaped(out, key);
  out.Append("\":", 2);
}

}  // namespace

KeyCache::KeyCache() : slots_(new Entry[kSlots]) {}

const KeyCache::Entry* KeyCache::Lookup(std::string_view key) noexcept {
  if (key.size() > kMaxKey) {
    return nullptr;
  }
  Entry& e = slots_[HashKey(key) % kSlots];
  if (e.key_size == key.size() && SameKey(e.key, key)) {
    return &e;
  }
  FixedOut fragment{e.fragment, kMaxFragment};
  AppendKey(fragment, key);
  if (fragment.overflow) {
    e.key_size = 0xFF;
    return nullptr;
  }
  std::memcpy(e.key, key.data(), key.size());
  e.key_size = static_cast<std::uint8_t>(key.size());
  e.fragment_size = static_cast<std::uint8_t>(fragment.size);
  e.redact = IsSensitiveKey(key);
  return &e;
}

LineFormatter::LineFormatter(const LoggerOptions& options) {
  StringOut out{&resource_};
  resource_ = "\",\"service\":\"";
  AppendEscaped(out, options.service);
  resource_ += "\",\"version\":\"";
  AppendEscaped(out, options.version);
  resource_ += "\",\"env\":\"";
  AppendEscaped(out, options.env);
  resource_ += '"';
}

void LineFormatter::Format(const char* record, OutBuffer& out) noexcept {
  RecordReader r(record);
  r.Read<std::uint32_t>();  // size
  r.Read<std::uint8_t>();   // kind
  const auto level = static_cast<LogLevel>(r.Read<std::uint8_t>());
  const auto flags = r.Read<std::uint8_t>();
  r.Read<std::uint8_t>();
  const auto stamp = r.Read<std::uint64_t>();
  const auto msg_size = r.Read<std::uint32_t>();
  const auto field_count = r.Read<std::uint16_t>();
  const std::string_view msg = r.Bytes(msg_size);

  // {"time":"<27>","level":"<name>","msg":"
  char* p = out.Reserve(64);
  char* w = Literal(p, "{\"time\":\"");
  time_.Format(converter_.ToUnixNanos(stamp), w);
  w += TimeFormatter::kSize;
  w = Literal(w, "\",\"level\":\"");
  const std::string_view name = ToString(level);
  std::memcpy(w, name.data(), name.size());
  w += name.size();
  w = Literal(w, "\",\"msg\":\"");
  out.Advance(static_cast<std::size_t>(w - p));
  AppendEscaped(out, msg);
  out.Append(resource_);

  if ((flags & kHasContext) != 0) {
    const char* trace = r.Bytes(TraceId::kSize).data();
    const char* span = r.Bytes(SpanId::kSize).data();
    p = out.Reserve(96);
    w = p;
    static constexpr char kTraceKey[] = ",\"trace_id\":\"";
    static constexpr char kSpanKey[] = ",\"span_id\":\"";
    if (WriteId(trace, TraceId::kSize, w + sizeof kTraceKey - 1)) {
      w = Literal(w, kTraceKey) + TraceId::kHexSize;
      *w++ = '"';
    }
    if (WriteId(span, SpanId::kSize, w + sizeof kSpanKey - 1)) {
      w = Literal(w, kSpanKey) + SpanId::kHexSize;
      *w++ = '"';
    }
    out.Advance(static_cast<std::size_t>(w - p));
    const auto rid_size = r.Read<std::uint8_t>();
    const std::string_view rid = r.Bytes(rid_size);
    if (!rid.empty()) {
      out.Append(",\"request_id\":\"", 15);
      AppendEscaped(out, rid);
      out.Append("\"", 1);
    }
  }

  for (std::uint16_t i = 0; i < field_count; ++i) {
    const auto sizes = r.Read<std::uint64_t>();
    const Field::Type type = PackedType(sizes);
    const std::string_view key = r.Bytes(PackedKeySize(sizes));
    std::string_view text;
    std::uint64_t bits = 0;
    if (type == Field::Type::kString) {
      text = r.Bytes(PackedValueSize(sizes));
    } else {
      bits = r.Read<std::uint64_t>();
    }

    bool redact;
    if (const KeyCache::Entry* cached = keys_.Lookup(key); cached != nullptr) {
      out.Append(cached->fragment, cached->fragment_size);
      redact = cached->redact;
    } else {
      AppendKey(out, key);
      redact = IsSensitiveKey(key);
    }
    if (redact) {
      out.Append("\"[REDACTED]\"", 12);
      continue;
    }
    switch (type) {
      case Field::Type::kString:
        out.Append("\"", 1);
        AppendEscaped(out, text);
        out.Append("\"", 1);
        break;
      case Field::Type::kBool:
        if (bits != 0) {
          out.Append("true", 4);
        } else {
          out.Append("false", 5);
        }
        break;
      case Field::Type::kInt:
        AppendNumber(
            out,
            [](std::uint64_t v, char* o) { return FormatInt(static_cast<std::int64_t>(v), o); },
            bits);
        break;
      case Field::Type::kUint:
        AppendNumber(out, FormatUint, bits);
        break;
      case Field::Type::kDouble:
      case Field::Type::kDurationMs:
        AppendNumber(
            out,
            [](std::uint64_t v, char* o) {
              double d;
              std::memcpy(&d, &v, sizeof d);
              return FormatDouble(d, o);
            },
            bits);
        break;
      case Field::Type::kDurationNs:
        AppendNumber(
            out,
            [](std::uint64_t v, char* o) {
              return FormatDurationNs(static_cast<std::int64_t>(v), o);
            },
            bits);
        break;
    }
  }
  out.Append("}\n", 2);
  out.EndLine();
}

void LineFormatter::Decode(const char* record, LogLineView& line,
                           Field (&fields)[LogLineView::kMaxFields]) noexcept {
  RecordReader r(record);
  r.Read<std::uint32_t>();  // size
  r.Read<std::uint8_t>();   // kind
  line.level = static_cast<LogLevel>(r.Read<std::uint8_t>());
  const auto flags = r.Read<std::uint8_t>();
  r.Read<std::uint8_t>();
  line.time_unix_nano = converter_.ToUnixNanos(r.Read<std::uint64_t>());
  const auto msg_size = r.Read<std::uint32_t>();
  const auto field_count = r.Read<std::uint16_t>();
  line.msg = r.Bytes(msg_size);
  line.has_context = (flags & kHasContext) != 0;
  if (line.has_context) {
    std::array<std::uint8_t, TraceId::kSize> trace;
    std::memcpy(trace.data(), r.Bytes(TraceId::kSize).data(), TraceId::kSize);
    std::array<std::uint8_t, SpanId::kSize> span;
    std::memcpy(span.data(), r.Bytes(SpanId::kSize).data(), SpanId::kSize);
    line.trace_id = TraceId(trace);
    line.span_id = SpanId(span);
    line.request_id = r.Bytes(r.Read<std::uint8_t>());
  }
  std::size_t n = 0;
  for (std::uint16_t i = 0; i < field_count && n < LogLineView::kMaxFields; ++i) {
    const auto sizes = r.Read<std::uint64_t>();
    const Field::Type type = PackedType(sizes);
    const std::string_view key = r.Bytes(PackedKeySize(sizes));
    if (type == Field::Type::kString) {
      fields[n++] = Field(key, r.Bytes(PackedValueSize(sizes)));
    } else {
      fields[n++] = Field::FromBits(key, type, r.Read<std::uint64_t>());
    }
  }
  line.fields = std::span<const Field>(fields, n);
}

}  // namespace vigil::telemetry::internal

// Trace context, baggage and the request context that every hop carries.
//
// The value types here model the W3C Trace Context (`traceparent`, `tracestate`) and
// W3C Baggage headers. Parsing never throws: bad input yields "no context" together
// with a reason a debug log can print. Formatting writes exactly what the specs allow.
//
// A `RequestContext` travels explicitly with each request (a handler receives it, a log
// call takes it); nothing here is thread-local, so coroutines interleaving on one thread
// can never see each other's ids.
//
//   auto parsed = vigil::telemetry::ParseTraceparent(req["traceparent"]);
//   RequestContext ctx = parsed ? RequestContext::ChildOf(*parsed.value)
//                               : RequestContext::NewRoot();
//   log.Info(ctx, "request completed", {"http.route", route});
//
// Thread-safety: every type here is a value type; distinct objects may be used from
// different threads freely, a single object needs external synchronization for writes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::telemetry {

// What a trace id and a span id share: N opaque bytes, where all-zero is invalid (W3C
// Trace Context), written as 2N lowercase hex digits. `Id` is the id type itself, so
// that Random() and FromHex() return it and ids of the two kinds never compare.
template <typename Id, std::size_t N>
class OpaqueId {
 public:
  static constexpr std::size_t kSize = N;
  static constexpr std::size_t kHexSize = 2 * N;

  constexpr OpaqueId() = default;
  explicit constexpr OpaqueId(const std::array<std::uint8_t, N>& bytes) : bytes_(bytes) {}

  // A random valid id (never all-zero). Uses a per-thread generator: no lock.
  static Id Random() noexcept;
  // Parses exactly kHexSize lowercase hex digits; nullopt for anything else or all-zero.
  static std::optional<Id> FromHex(std::string_view hex) noexcept;

  constexpr bool IsValid() const noexcept {
    for (auto b : bytes_) {
      if (b != 0) {
        return true;
      }
    }
    return false;
  }
  constexpr const std::array<std::uint8_t, N>& bytes() const noexcept { return bytes_; }
  // Writes kHexSize lowercase hex digits to `out` (no terminator).
  void ToHex(char* out) const noexcept;
  std::string ToHex() const;

  friend constexpr bool operator==(const OpaqueId&, const OpaqueId&) = default;

 private:
  std::array<std::uint8_t, N> bytes_{};
};

// 16-byte trace id.
class TraceId : public OpaqueId<TraceId, 16> {
 public:
  using OpaqueId::OpaqueId;
};

// 8-byte span id.
class SpanId : public OpaqueId<SpanId, 8> {
 public:
  using OpaqueId::OpaqueId;
};

// Defined in the library for these two ids.
extern template class OpaqueId<TraceId, 16>;
extern template class OpaqueId<SpanId, 8>;

// The traceparent trace-flags byte. Only `sampled` (bit 0) and `random` (bit 1, Trace
// Context Level 2) have a meaning today; other bits are carried through unchanged.
struct TraceFlags {
  static constexpr std::uint8_t kSampled = 0x01;
  static constexpr std::uint8_t kRandom = 0x02;

  std::uint8_t bits = 0;

  constexpr bool sampled() const noexcept { return (bits & kSampled) != 0; }
  friend constexpr bool operator==(TraceFlags, TraceFlags) = default;
};

// W3C `tracestate`: at most 32 list members and 512 bytes as a header, keys unique, most
// recent first. Keys follow Trace Context Level 2: 1-256 characters of a-z 0-9 _ - * / @,
// the first a letter or a digit (this covers Level 1's `tenant-id@system-id` keys).
// Values are 1-256 printable ASCII characters excluding ',' and '=' and not ending in a
// space.
//
// When a list is over the limits, members are dropped by the spec's rule: the rightmost
// member longer than 128 characters ("key=value") first, then the rightmost member,
// until it fits.
class TraceState {
 public:
  static constexpr std::size_t kMaxMembers = 32;
  // The spec asks to propagate at least 512 characters; we propagate exactly that.
  static constexpr std::size_t kMaxBytes = 512;

  struct Member {
    std::string key;
    std::string value;
    friend bool operator==(const Member&, const Member&) = default;
  };

  TraceState() = default;

  // Validates a key or a value against the spec's grammar.
  static bool IsValidKey(std::string_view key) noexcept;
  static bool IsValidValue(std::string_view value) noexcept;

  // The value stored for `key`, if any.
  std::optional<std::string_view> Get(std::string_view key) const noexcept;
  // Adds or updates `key`, moving it to the front (the spec's mutation rule). Returns
  // false, changing nothing, when key or value is invalid or "key=value" alone is longer
  // than 512 bytes. When the list then breaks a limit (a 33rd member, more than 512
  // bytes), other members are dropped by the rule above; the one just set stays.
  bool Set(std::string_view key, std::string_view value);
  // Removes `key`; returns whether it was present.
  bool Erase(std::string_view key);

  const std::vector<Member>& members() const noexcept { return members_; }
  bool empty() const noexcept { return members_.empty(); }
  // The header value: members joined by ',' with no optional whitespace.
  std::string ToHeader() const;

  friend bool operator==(const TraceState&, const TraceState&) = default;

 private:
  friend struct TraceStateParser;
  std::vector<Member> members_;
};

// W3C Baggage: name/value pairs with optional properties, percent-encoded on the wire.
// Limits (the spec's minimums to propagate, applied as maximums here): 64 members and
// 8192 bytes for the whole header as ToHeader() writes it. Values are stored decoded
// (Get() and members() give "DF 28" for `DF%2028`), and ToHeader() percent-encodes every
// byte of a value that is not a baggage-octet (space, '"', ',', ';', backslash,
// controls, non-ASCII) and '%' itself, so any value survives the round trip.
class Baggage {
 public:
  static constexpr std::size_t kMaxMembers = 64;
  static constexpr std::size_t kMaxBytes = 8192;

  struct Member {
    std::string key;
    std::string value;       // percent-decoded
    std::string properties;  // the raw `;`-separated property text, trimmed; may be empty
    friend bool operator==(const Member&, const Member&) = default;
  };

  Baggage() = default;

  std::optional<std::string_view> Get(std::string_view key) const noexcept;
  // Adds or replaces a member. Returns false, changing nothing, when the key is not a
  // valid token or the result would break the limits.
  bool Set(std::string_view key, std::string_view value, std::string_view properties = {});
  bool Erase(std::string_view key);

  const std::vector<Member>& members() const noexcept { return members_; }
  bool empty() const noexcept { return members_.empty(); }
  // The header value; values percent-encoded where the grammar requires it.
  std::string ToHeader() const;

  friend bool operator==(const Baggage&, const Baggage&) = default;

 private:
  friend struct BaggageParser;
  std::vector<Member> members_;
};

// What a span is known by across process boundaries.
struct SpanContext {
  TraceId trace_id;
  SpanId span_id;
  TraceFlags flags;
  TraceState trace_state;
  bool is_remote = false;

  bool IsValid() const noexcept { return trace_id.IsValid() && span_id.IsValid(); }
  bool sampled() const noexcept { return flags.sampled(); }
  friend bool operator==(const SpanContext&, const SpanContext&) = default;
};

// Result of parsing a header: a value, or a short static reason for a debug log. A list
// header (tracestate, baggage) may yield a value and a reason together: the reason then
// says why some members were dropped.
template <typename T>
struct ParseResult {
  std::optional<T> value;
  // Empty when all of the input was used; a string literal otherwise.
  std::string_view error;

  explicit operator bool() const noexcept { return value.has_value(); }
  static ParseResult Ok(T v) { return ParseResult{std::move(v), {}}; }
  static ParseResult Fail(std::string_view why) { return ParseResult{std::nullopt, why}; }
};

// The traceparent header: version "00" exactly, or a higher version parsed as far as
// version 00 defines (a future version may append "-..." fields). Version "ff", bad
// lengths, uppercase hex and all-zero ids are rejected. The result has is_remote = true
// and an empty trace_state.
ParseResult<SpanContext> ParseTraceparent(std::string_view header) noexcept;
// Formats version 00: 55 characters.
static constexpr std::size_t kTraceparentSize = 55;
void FormatTraceparent(const SpanContext& ctx, char* out) noexcept;
std::string FormatTraceparent(const SpanContext& ctx);

// The tracestate header: one field line, or several combined in order with ',' (RFC 9110
// §5.3; the limits apply to the combined list). Empty members (",,") and optional
// whitespace around members are skipped. A member that breaks the grammar (no '=', a bad
// key or value) fails the whole header, which the spec allows for a header it cannot
// parse. A later member repeating an earlier key is dropped and the first kept. A list
// over 32 members or 512 bytes is truncated by the rule above. Drops are reported in
// `error` next to the value.
ParseResult<TraceState> ParseTracestate(std::string_view header);

// Combines parsing of both headers: the tracestate is kept only when traceparent is
// valid, and dropped (without failing) when it is itself invalid. With a valid
// traceparent, `error` is what ParseTracestate would report, if anything.
ParseResult<SpanContext> ExtractTraceContext(std::string_view traceparent,
                                             std::string_view tracestate);

// The baggage header: one field line, or several combined in order with ',' (RFC 9110
// §5.3; the limits apply to the combined list). Members are `key=value` with optional
// `;property` parts; keys are RFC 7230 tokens; values are percent-decoded. Never fails:
// a malformed member (no '=', a bad key, value, property or percent-escape) is dropped
// alone, empty members are skipped, and members are kept in order while they fit the
// limits: one that would make the 65th or take ToHeader() past 8192 bytes is dropped
// (a later, smaller one may still fit). Duplicate keys are kept, in order. `error` names
// the first reason a member was dropped.
ParseResult<Baggage> ParseBaggage(std::string_view header);

// Request ids: 1 to 64 characters of [A-Za-z0-9._:-]. A client-sent id that is not
// well-formed is replaced by a generated one.
class RequestId {
 public:
  static constexpr std::size_t kMaxSize = 64;

  RequestId() = default;
  // A new id: 26-character ULID (time-ordered, Crockford base32), from the per-thread
  // generator.
  static RequestId Generate() noexcept;
  // nullopt when `text` is not well-formed.
  static std::optional<RequestId> FromString(std::string_view text) noexcept;

  std::string_view view() const noexcept { return {data_.data(), size_}; }
  bool empty() const noexcept { return size_ == 0; }
  friend bool operator==(const RequestId& a, const RequestId& b) noexcept {
    return a.view() == b.view();
  }

 private:
  std::array<char, kMaxSize> data_{};
  std::uint8_t size_ = 0;
};

// Everything a request carries through one service: the current span's context, the
// request id and baggage. Handlers receive it and pass it on; log calls and outgoing
// requests read it. Copying is cheap unless tracestate or baggage are present.
struct RequestContext {
  SpanContext span;
  RequestId request_id;
  Baggage baggage;

  // A context with a new random trace and span id, sampled flag set per `sampled`.
  static RequestContext NewRoot(bool sampled = true) noexcept;
  // A context for a new span that is the child of `parent`: same trace id, trace flags
  // and tracestate, a new span id.
  static RequestContext ChildOf(const SpanContext& parent);
};

// Per-thread fast random numbers (xoshiro256++ seeded from the OS); no global lock.
std::uint64_t RandomU64() noexcept;

}  // namespace vigil::telemetry

// A JSON writer for Sentry envelopes that can write into memory it never allocates.
//
// JsonBuffer is either growable (appends to a std::string) or fixed (a caller's array of
// bytes: appending never allocates, and what does not fit is cut off and flagged). The
// writer on top of it uses only the log module's escaping and number formatting, which
// do not allocate either, so the same code serialises an event on the sender thread and
// could serialise one from a crash handler into a buffer reserved at start-up.
//
//   std::string out;
//   JsonBuffer buffer(out);
//   JsonWriter w(buffer);
//   w.BeginObject();
//   w.Key("level");
//   w.String("error");
//   w.EndObject();   // out == R"({"level":"error"})"
//
// Thread-safety: one thread at a time per object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "log/json.hpp"

namespace vigil::telemetry::internal {

// Enough for FormatAddress's text.
inline constexpr std::size_t kMaxAddressSize = 2 + 2 * sizeof(std::uintptr_t);

// "0x" and the lowercase hex digits of `value` without leading zeros, into `out`; returns
// the size written. Async-signal-safe.
inline std::size_t FormatAddress(std::uintptr_t value, char* out) noexcept {
  std::size_t n = 0;
  out[n++] = '0';
  out[n++] = 'x';
  bool started = false;
  for (int shift = static_cast<int>(8 * sizeof value) - 4; shift >= 0; shift -= 4) {
    const auto digit = static_cast<unsigned>((value >> shift) & 0xF);
    if (digit != 0 || started || shift == 0) {
      out[n++] = "0123456789abcdef"[digit];
      started = true;
    }
  }
  return n;
}

class JsonBuffer {
 public:
  // Appends to `out` (grows; may throw std::bad_alloc).
  explicit JsonBuffer(std::string& out) noexcept : string_(&out) {}
  // Writes into [data, data + capacity); never allocates.
  JsonBuffer(char* data, std::size_t capacity) noexcept : data_(data), capacity_(capacity) {}

  void Append(const char* p, std::size_t n) {
    if (n == 0) return;  // p may be null then
    if (string_ != nullptr) {
      string_->append(p, n);
      return;
    }
    const std::size_t room = capacity_ - size_;
    if (n > room) {
      n = room;
      overflowed_ = true;
    }
    std::memcpy(data_ + size_, p, n);
    size_ += n;
  }
  void Append(std::string_view s) { Append(s.data(), s.size()); }
  void Append(char c) { Append(&c, 1); }

  std::size_t size() const noexcept { return string_ != nullptr ? string_->size() : size_; }
  // Overwrites bytes already written (a length patched in place).
  void Overwrite(std::size_t at, std::string_view s) noexcept {
    char* base = string_ != nullptr ? string_->data() : data_;
    const std::size_t end = size();
    for (std::size_t i = 0; i < s.size() && at + i < end; ++i) base[at + i] = s[i];
  }
  // A fixed buffer ran out of room: its content is cut off and must not be used.
  bool overflowed() const noexcept { return overflowed_; }

 private:
  std::string* string_ = nullptr;
  char* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  bool overflowed_ = false;
};

// Commas and nesting are the writer's; keys and values are the caller's, in order. A
// value right after Key() is that key's; elsewhere it is an array element.
class JsonWriter {
 public:
  explicit JsonWriter(JsonBuffer& out) noexcept : out_(out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  void Key(std::string_view key) {
    if (need_comma_) out_.Append(',');
    out_.Append('"');
    AppendEscaped(out_, key);
    out_.Append("\":", 2);
    after_key_ = true;
  }
  void String(std::string_view value) {
    BeforeValue();
    out_.Append('"');
    AppendEscaped(out_, value);
    out_.Append('"');
  }
  void Int(std::int64_t value) {
    BeforeValue();
    char buffer[kMaxNumberSize];
    out_.Append(buffer, FormatInt(value, buffer));
  }
  void Uint(std::uint64_t value) {
    BeforeValue();
    char buffer[kMaxNumberSize];
    out_.Append(buffer, FormatUint(value, buffer));
  }
  void Double(double value) {
    BeforeValue();
    char buffer[kMaxNumberSize];
    out_.Append(buffer, FormatDouble(value, buffer));
  }
  void Bool(bool value) {
    BeforeValue();
    out_.Append(value ? std::string_view("true") : std::string_view("false"));
  }
  // A value written by the caller as is (already valid JSON).
  void Raw(std::string_view json) {
    BeforeValue();
    out_.Append(json);
  }
  // "0x" and lowercase hex digits, as Sentry writes addresses.
  void Address(std::uintptr_t value) {
    BeforeValue();
    char buffer[kMaxAddressSize + 2];
    buffer[0] = '"';
    std::size_t n = 1 + FormatAddress(value, buffer + 1);
    buffer[n++] = '"';
    out_.Append(buffer, n);
  }

  // Shorthands for a key and its value.
  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void FieldInt(std::string_view key, std::int64_t value) {
    Key(key);
    Int(value);
  }

  JsonBuffer& buffer() noexcept { return out_; }
  // Forgets the commas owed: the next value starts a new document.
  void Reset() noexcept {
    need_comma_ = false;
    after_key_ = false;
  }

 private:
  void BeforeValue() {
    if (need_comma_ && !after_key_) out_.Append(',');
    after_key_ = false;
    need_comma_ = true;
  }
  void Open(char c) {
    BeforeValue();
    out_.Append(c);
    need_comma_ = false;
  }
  void Close(char c) {
    out_.Append(c);
    need_comma_ = true;
    after_key_ = false;
  }

  JsonBuffer& out_;
  bool need_comma_ = false;
  bool after_key_ = false;
};

}  // namespace vigil::telemetry::internal

// Turns one encoded record (record.hpp) into one JSON line in an OutBuffer, in the key
// order of docs/conventions.md "Log lines", applying redaction and the fixed-key rule.
//
//   LineFormatter fmt(options);
//   fmt.Format(record_bytes, out);   // {"time":"...","level":"info",...}\n
//
// Thread-safety: none; owned by the holder of the logger's drain lock. Format() does
// not allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vigil/telemetry/log.hpp>

#include "log/clock.hpp"
#include "log/sink.hpp"

namespace vigil::telemetry::internal {

// What a field key turns into, remembered per key: services use a small, fixed set of
// keys, so the escaping, the fixed-key rule and the redaction check run once per key
// instead of once per line. Direct-mapped on a hash of the key; a collision just
// recomputes. Keys longer than kMaxKey are not cached.
class KeyCache {
 public:
  static constexpr std::size_t kSlots = 256;
  static constexpr std::size_t kMaxKey = 48;
  static constexpr std::size_t kMaxFragment = 78;

  struct Entry {
    std::uint8_t key_size = 0xFF;  // 0xFF: empty slot
    std::uint8_t fragment_size = 0;
    bool redact = false;
    char key[kMaxKey];
    char fragment[kMaxFragment];  // ,"<key, prefixed if reserved, escaped>":
  };

  KeyCache();
  // The entry for `key`, or nullptr when it cannot be cached.
  const Entry* Lookup(std::string_view key) noexcept;

 private:
  std::unique_ptr<Entry[]> slots_;
};

class LineFormatter {
 public:
  explicit LineFormatter(const LoggerOptions& options);

  void Format(const char* record, OutBuffer& out) noexcept;
  // The same record for a LogObserver: `line` views the record, its fields are written
  // to `fields` (at most LogLineView::kMaxFields).
  void Decode(const char* record, LogLineView& line,
              Field (&fields)[LogLineView::kMaxFields]) noexcept;
  StampConverter& converter() noexcept { return converter_; }

 private:
  // `","service":"…","version":"…","env":"…"`, escaped once.
  std::string resource_;
  StampConverter converter_;
  TimeFormatter time_;
  KeyCache keys_;
};

}  // namespace vigil::telemetry::internal

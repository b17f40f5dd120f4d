// Fuzzes the SDK's UTF-8 repair (utf8.hpp) and the log line's JSON escaping built on it.
// On any bytes: Measure() agrees with an independent decoder about validity and with
// WriteRepaired() about the size; the repaired text is valid UTF-8 and equals the input
// when that was valid; a log string value made of the bytes parses as strict JSON and
// decodes to exactly the repaired text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <vigil/testing/log_lines.hpp>

#include "log/json.hpp"
#include "utf8.hpp"

namespace {

namespace utf8 = vigil::telemetry::utf8;
namespace li = vigil::telemetry::internal;
namespace ts = vigil::test_support;

// A decoder written from the definition rather than from Unicode's table: the lead
// byte's high bits give the length, each continuation is 10xxxxxx, and the code point
// must need that length, not be a surrogate and not exceed U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b >> 5) == 0x6) {
      len = 2, cp = b & 0x1Fu, min = 0x80;
    } else if ((b >> 4) == 0xE) {
      len = 3, cp = b & 0x0Fu, min = 0x800;
    } else if ((b >> 3) == 0x1E) {
      len = 4, cp = b & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 0x2) return false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

struct StringOut {
  std::string s;
  void Append(const char* p, std::size_t n) { s.append(p, n); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const utf8::Measured m = utf8::Measure(input);
  if (m.valid != IsValidUtf8(input)) __builtin_trap();
  std::string repaired(m.repaired_size, '\0');
  if (utf8::WriteRepaired(input, repaired.data()) != repaired.data() + repaired.size()) {
    __builtin_trap();
  }
  if (!IsValidUtf8(repaired)) __builtin_trap();
  if (m.valid && repaired != input) __builtin_trap();
  if (!utf8::Measure(repaired).valid) __builtin_trap();

  StringOut line;
  line.Append("{\"v\":\"", 6);
  li::AppendEscaped(line, input);
  line.Append("\"}", 2);
  const auto parsed = ts::ParseLogLine(line.s);
  if (!parsed || parsed->members.size() != 1) __builtin_trap();
  const ts::JsonScalar& v = parsed->members[0].second;
  if (v.kind != ts::JsonScalar::Kind::kString || v.text != repaired) __builtin_trap();
  return 0;
}

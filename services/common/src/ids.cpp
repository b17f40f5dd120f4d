#include <vigil/service/ids.hpp>

#include <cstdint>
#include <vigil/service/clock.hpp>
#include <vigil/telemetry/context.hpp>

namespace vigil::service {

namespace {
constexpr char kHex[] = "0123456789abcdef";

void PutHex(std::uint64_t value, int digits, char* out) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHex[value & 0xF];
    value >>= 4;
  }
}
}  // namespace

std::string NewId() {
  const std::int64_t ms = WallClockMillis();
  std::string id(kIdLength, '0');
  PutHex(static_cast<std::uint64_t>(ms), 12, id.data());
  PutHex(telemetry::RandomU64(), 16, id.data() + 12);
  return id;
}

bool IsValidId(std::string_view id) noexcept {
  if (id.size() != kIdLength) return false;
  for (const char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace vigil::service

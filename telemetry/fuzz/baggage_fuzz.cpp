// Fuzzes ParseBaggage: no crash on any bytes; what parses stays within the limits and
// survives ToHeader() -> parse unchanged (values are valid UTF-8 after decoding, so
// percent-encoding them again is lossless).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>

namespace vt = vigil::telemetry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto first = vt::ParseBaggage(input);
  if (!first) {
    if (first.error.empty()) __builtin_trap();
    return 0;
  }
  const vt::Baggage& bag = *first.value;
  if (bag.members().size() > vt::Baggage::kMaxMembers) __builtin_trap();

  const std::string header = bag.ToHeader();
  if (header.size() > vt::Baggage::kMaxBytes) __builtin_trap();
  const auto second = vt::ParseBaggage(header);
  if (!second || !(*second.value == bag)) __builtin_trap();
  if (second.value->ToHeader() != header) __builtin_trap();

  // Re-setting every member in place must succeed and change nothing but duplicates.
  vt::Baggage copy = bag;
  for (const auto& m : bag.members()) {
    if (!copy.Set(m.key, m.value, m.properties)) __builtin_trap();
  }
  if (copy.ToHeader().size() > vt::Baggage::kMaxBytes) __builtin_trap();
  return 0;
}

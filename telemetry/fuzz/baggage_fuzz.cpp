// Fuzzes ParseBaggage: no crash on any bytes; it always yields a value (bad members are
// dropped alone), which stays within the limits and survives ToHeader() -> parse
// unchanged and without drops (values are valid UTF-8 after decoding, so percent-encoding
// them again is lossless).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/text.hpp>

namespace vt = vigil::telemetry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto first = vt::ParseBaggage(input);
  if (!first) __builtin_trap();
  const vt::Baggage& bag = *first.value;
  if (bag.members().size() > vt::Baggage::kMaxMembers) __builtin_trap();
  for (const auto& m : bag.members()) {
    if (!vt::text::IsToken(m.key)) __builtin_trap();
  }

  const std::string header = bag.ToHeader();
  if (header.size() > vt::Baggage::kMaxBytes) __builtin_trap();
  const auto second = vt::ParseBaggage(header);
  if (!second || !second.error.empty() || !(*second.value == bag)) __builtin_trap();
  if (second.value->ToHeader() != header) __builtin_trap();

  // Every member kept from a list is kept, in order, from that list followed by more.
  const auto longer = vt::ParseBaggage(std::string(input) + ",\t" + std::string(input));
  if (!longer || longer.value->members().size() < bag.members().size()) __builtin_trap();
  for (std::size_t i = 0; i < bag.members().size(); ++i) {
    if (!(longer.value->members()[i] == bag.members()[i])) __builtin_trap();
  }

  // Re-setting every member in place must succeed and change nothing but duplicates.
  vt::Baggage copy = bag;
  for (const auto& m : bag.members()) {
    if (!copy.Set(m.key, m.value, m.properties)) __builtin_trap();
  }
  if (copy.ToHeader().size() > vt::Baggage::kMaxBytes) __builtin_trap();
  return 0;
}

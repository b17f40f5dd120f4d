// Fuzzes ParseTracestate: no crash on any bytes; what parses satisfies the TraceState
// invariants and survives ToHeader() -> parse unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>

namespace vt = vigil::telemetry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto first = vt::ParseTracestate(input);
  if (!first) {
    if (first.error.empty()) __builtin_trap();
    return 0;
  }
  const vt::TraceState& ts = *first.value;
  if (ts.members().size() > vt::TraceState::kMaxMembers) __builtin_trap();
  for (const auto& m : ts.members()) {
    if (!vt::TraceState::IsValidKey(m.key) || !vt::TraceState::IsValidValue(m.value)) {
      __builtin_trap();
    }
    if (ts.Get(m.key) != std::string_view(m.value)) __builtin_trap();  // keys are unique
  }

  const std::string header = ts.ToHeader();
  const auto second = vt::ParseTracestate(header);
  if (!second || !(*second.value == ts)) __builtin_trap();

  // Mutation keeps the invariants too.
  vt::TraceState copy = ts;
  if (!copy.Set("fuzz", "v") || copy.members().front().key != "fuzz") __builtin_trap();
  if (copy.members().size() > vt::TraceState::kMaxMembers) __builtin_trap();
  const auto third = vt::ParseTracestate(copy.ToHeader());
  if (!third || !(*third.value == copy)) __builtin_trap();
  return 0;
}

// Fuzzes ParseTracestate: no crash on any bytes; what parses satisfies the TraceState
// invariants (valid unique keys, at most 32 members and 512 bytes as a header) and
// survives ToHeader() -> parse unchanged and without drops.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>

namespace vt = vigil::telemetry;

namespace {

void CheckInvariants(const vt::TraceState& ts) {
  if (ts.members().size() > vt::TraceState::kMaxMembers) __builtin_trap();
  for (const auto& m : ts.members()) {
    if (!vt::TraceState::IsValidKey(m.key) || !vt::TraceState::IsValidValue(m.value)) {
      __builtin_trap();
    }
    if (ts.Get(m.key) != std::string_view(m.value)) __builtin_trap();  // keys are unique
  }
  const std::string header = ts.ToHeader();
  if (header.size() > vt::TraceState::kMaxBytes) __builtin_trap();
  const auto again = vt::ParseTracestate(header);
  if (!again || !again.error.empty() || !(*again.value == ts)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto first = vt::ParseTracestate(input);
  if (!first) {
    if (first.error.empty()) __builtin_trap();
    return 0;
  }
  const vt::TraceState& ts = *first.value;
  CheckInvariants(ts);

  // Joining the list with itself (a field line sent twice) adds nothing: every member of
  // the second copy repeats a key of the first.
  const std::string twice = std::string(input) + "," + std::string(input);
  const auto doubled = vt::ParseTracestate(twice);
  if (!doubled || !(*doubled.value == ts)) __builtin_trap();

  // Mutation keeps the invariants too.
  vt::TraceState copy = ts;
  if (!copy.Set("fuzz", "v") || copy.members().front().key != "fuzz") __builtin_trap();
  CheckInvariants(copy);
  // A longer value for the oldest member moves it to the front and may push others out.
  if (!ts.members().empty() &&
      ts.members().back().key.size() + 1 + 256 <= vt::TraceState::kMaxBytes) {
    const auto& last = ts.members().back();
    if (!copy.Set(last.key, std::string(256, 'x')) || copy.members().front().key != last.key) {
      __builtin_trap();
    }
    CheckInvariants(copy);
  }
  return 0;
}

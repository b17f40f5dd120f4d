// Fuzzes ParseTraceparent and ExtractTraceContext: no crash on any bytes, and whatever
// parses must format to a header that parses back to the same context.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vigil/telemetry/context.hpp>

namespace vt = vigil::telemetry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const auto first = vt::ParseTraceparent(input);
  if (first) {
    if (!first.error.empty() || !first.value->IsValid() || !first.value->is_remote) {
      __builtin_trap();
    }
    char buf[vt::kTraceparentSize];
    vt::FormatTraceparent(*first.value, buf);
    const auto second = vt::ParseTraceparent(std::string_view(buf, sizeof buf));
    if (!second || !(*second.value == *first.value)) __builtin_trap();
  } else if (first.error.empty()) {
    __builtin_trap();
  }

  // The same bytes split into a traceparent and a tracestate at the first newline.
  const std::size_t nl = input.find('\n');
  if (nl != std::string_view::npos) {
    const auto both = vt::ExtractTraceContext(input.substr(0, nl), input.substr(nl + 1));
    const auto alone = vt::ParseTraceparent(input.substr(0, nl));
    if (static_cast<bool>(both) != static_cast<bool>(alone)) __builtin_trap();
    if (both) {
      const auto state = vt::ParseTracestate(input.substr(nl + 1));
      const vt::TraceState expected = state ? *state.value : vt::TraceState{};
      if (!(both.value->trace_state == expected)) __builtin_trap();
    }
  }
  return 0;
}

// The crash envelopes an earlier run of the program left in its outbox (crash.hpp), read
// back and made ready to send: each raw frame is named (function, file, line) by finding
// its module, by build id, among the modules this process has loaded, and its offset in
// that module. A frame whose module is not loaded here, or was rebuilt since (another
// build id), keeps only its address: Sentry can still symbolicate it from uploaded debug
// files with the event's debug_meta.
//
//   for (const std::filesystem::path& file : OutboxFiles(dir)) {
//     std::string error;
//     if (auto crash = ReadCrashEnvelope(ReadFile(file), Symbolizer::Instance(), &error)) ...
//   }
//
// Thread-safety: the functions are safe to call from any thread (the symbolizer
// serialises itself).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/telemetry/context.hpp>

#include "errors/symbolize.hpp"

namespace vigil::telemetry::internal {

// A crash report ready to go: its event payload (JSON, frames named), with what the
// envelope header needs.
struct OutboxEvent {
  std::string event_id;
  TraceId trace_id;  // invalid when the crash happened outside a request
  std::string payload;
};

// The largest file the outbox reader accepts (a crash envelope is at most 256 KiB).
inline constexpr std::uintmax_t kMaxOutboxFile = 1024 * 1024;

// The envelope files (*.envelope) in `dir`, oldest name first (event ids carry no order:
// by modification time). Files of interrupted writes (.*.tmp) older than a minute are
// removed. Empty when
// `dir` does not exist; throws std::filesystem::filesystem_error when it cannot be read.
std::vector<std::filesystem::path> OutboxFiles(const std::filesystem::path& dir);

// The event of a crash envelope, its frames named with `symbols`. nullopt when `text` is
// not a crash envelope (the reason in *error, when given).
std::optional<OutboxEvent> ReadCrashEnvelope(std::string_view text, Symbolizer& symbols,
                                             std::string* error = nullptr);

}  // namespace vigil::telemetry::internal

// From raw return addresses to what Sentry shows: function, file and line of each frame
// (the compiler's libbacktrace reading the binaries' symbol tables and, where present,
// their DWARF line tables, inlined calls included), and the loaded modules with their GNU
// build ids (debug_meta), so that Sentry can symbolicate itself when debug files are
// uploaded.
//
//   Symbolizer& symbols = Symbolizer::Instance();
//   std::vector<StackFrame> frames = symbols.Frames(stack);   // innermost first
//   std::vector<DebugImage> images = symbols.Images();
//
// Runs off the request path (the reporter's thread): the first use reads the symbol
// tables of every loaded module.
//
// Thread-safety: the instance serialises its calls with a mutex of its own.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/telemetry/errors.hpp>

struct backtrace_state;

namespace vigil::telemetry::internal {

// Sentry's debug id of an ELF build id: its first 16 bytes (zero-padded) read as a
// little-endian GUID, written as a UUID ("a1b2c3d4-...").
std::string DebugIdOfBuildId(std::span<const std::uint8_t> build_id);

// "St12out_of_range" -> "std::out_of_range"; the name itself when it is not mangled.
std::string Demangle(const char* name);

class Symbolizer {
 public:
  static Symbolizer& Instance();

  // One frame per address, and one more for each call inlined at it (innermost first).
  std::vector<StackFrame> Frames(const RawStack& stack);
  // The frames of one address of this process (innermost first, inlined calls included).
  // A return address (`return_address`) names the call just before it; otherwise the
  // instruction at `address` itself (where a signal came from).
  std::vector<StackFrame> FramesAt(std::uintptr_t address, bool return_address);
  // Where `offset` from the start of the module with GNU build id `code_id` (hex) is in
  // this process; nullopt when no loaded module has that build id.
  std::optional<std::uintptr_t> Relocate(std::string_view code_id, std::uint64_t offset);
  // Every loaded module (read again when a frame's address fell outside those known).
  std::vector<DebugImage> Images();

 private:
  struct Module {
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    DebugImage image;
    bool main = false;
  };

  Symbolizer();
  void LoadModules();
  const Module* ModuleOf(std::uintptr_t address);
  void AppendFrames(std::uintptr_t address, std::uintptr_t pc, std::vector<StackFrame>& out);

  std::mutex mu_;
  backtrace_state* state_ = nullptr;  // libbacktrace's; it has no destructor
  std::vector<Module> modules_;
};

}  // namespace vigil::telemetry::internal

#include "errors/symbolize.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

// libbacktrace's header, by its full path (telemetry/CMakeLists.txt says why).
#include VIGIL_BACKTRACE_HEADER

namespace vigil::telemetry::internal {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void IgnoreError(void*, const char*, int) {}

// What libbacktrace reports for one pc: one entry per inlined call, then the caller.
struct PcInfo {
  struct Entry {
    std::string function;
    std::string file;
    int line = 0;
  };
  std::vector<Entry> entries;
};

int OnPcInfo(void* data, std::uintptr_t, const char* filename, int lineno, const char* function) {
  auto* info = static_cast<PcInfo*>(data);
  if (filename == nullptr && function == nullptr) return 0;
  info->entries.push_back({function != nullptr ? Demangle(function) : std::string(),
                           filename != nullptr ? filename : "", lineno});
  return 0;
}

void OnSymInfo(void* data, std::uintptr_t, const char* symname, std::uintptr_t, std::uintptr_t) {
  if (symname != nullptr) *static_cast<std::string*>(data) = Demangle(symname);
}

// Library and runtime code, which Sentry folds away: everything outside the program,
// and the standard library and Boost inlined or instantiated inside it.
bool InApp(bool main_module, const std::string& function) {
  if (!main_module) return false;
  for (const std::string_view prefix : {"std::", "__gnu_cxx::", "__cxa", "boost::", "void std::",
                                        "void boost::", "_Unwind", "__libc"}) {
    if (function.starts_with(prefix)) return false;
  }
  return function.find("boost::asio::") == std::string::npos;
}

std::string ExecutablePath() {
  char buffer[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

// The GNU build id among a segment's notes, as hex; empty when there is none.
std::string BuildIdOfNotes(const char* notes, std::size_t size, std::string* debug_id) {
  std::size_t at = 0;
  const auto align4 = [](std::size_t n) { return (n + 3) & ~std::size_t{3}; };
  while (at + sizeof(ElfW(Nhdr)) <= size) {
    ElfW(Nhdr) header;
    std::memcpy(&header, notes + at, sizeof header);
    const std::size_t name_at = at + sizeof header;
    const std::size_t desc_at = name_at + align4(header.n_namesz);
    const std::size_t next = desc_at + align4(header.n_descsz);
    if (next > size) break;
    if (header.n_type == NT_GNU_BUILD_ID && header.n_namesz == 4 &&
        std::memcmp(notes + name_at, "GNU", 4) == 0) {
      const auto* id = reinterpret_cast<const std::uint8_t*>(notes + desc_at);
      std::string hex;
      for (std::size_t i = 0; i < header.n_descsz; ++i) {
        hex.push_back(kHex[id[i] >> 4]);
        hex.push_back(kHex[id[i] & 0xF]);
      }
      *debug_id = DebugIdOfBuildId({id, header.n_descsz});
      return hex;
    }
    at = next;
  }
  return {};
}

}  // namespace

std::string DebugIdOfBuildId(std::span<const std::uint8_t> build_id) {
  std::uint8_t bytes[16] = {};
  if (!build_id.empty()) {
    std::memcpy(bytes, build_id.data(), std::min<std::size_t>(16, build_id.size()));
  }
  // The first three fields of a little-endian GUID, in the byte order of a UUID.
  std::reverse(bytes, bytes + 4);
  std::reverse(bytes + 4, bytes + 6);
  std::reverse(bytes + 6, bytes + 8);
  std::string out;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xF]);
  }
  return out;
}

std::string Demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(name);
}

Symbolizer& Symbolizer::Instance() {
  static Symbolizer* instance = new Symbolizer();  // libbacktrace's state is never freed
  return *instance;
}

Symbolizer::Symbolizer() {
  // Not threaded: the mutex serialises every use.
  state_ = backtrace_create_state(nullptr, 0, &IgnoreError, nullptr);
}

void Symbolizer::LoadModules() {
  modules_.clear();
  const auto visit = [](dl_phdr_info* info, std::size_t, void* data) -> int {
    auto* modules = static_cast<std::vector<Module>*>(data);
    Module m;
    m.main = modules->empty();
    std::uintptr_t low = UINTPTR_MAX;
    std::uintptr_t high = 0;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD) {
        low = std::min<std::uintptr_t>(low, ph.p_vaddr);
        high = std::max<std::uintptr_t>(high, ph.p_vaddr + ph.p_memsz);
      } else if (ph.p_type == PT_NOTE && m.image.code_id.empty()) {
        m.image.code_id =
            BuildIdOfNotes(reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr), ph.p_memsz,
                           &m.image.debug_id);
      }
    }
    if (high <= low) return 0;
    m.start = info->dlpi_addr + low;
    m.end = info->dlpi_addr + high;
    m.image.image_addr = m.start;
    m.image.image_size = high - low;
    m.image.code_file = info->dlpi_name != nullptr ? info->dlpi_name : "";
    if (m.main && m.image.code_file.empty()) m.image.code_file = ExecutablePath();
    modules->push_back(std::move(m));
    return 0;
  };
  dl_iterate_phdr(visit, &modules_);
}

const Symbolizer::Module* Symbolizer::ModuleOf(std::uintptr_t address) {
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 || modules_.empty()) LoadModules();
    for (const Module& m : modules_) {
      if (address >= m.start && address < m.end) return &m;
    }
  }
  return nullptr;
}

std::vector<StackFrame> Symbolizer::Frames(const RawStack& stack) {
  std::lock_guard lock(mu_);
  std::vector<StackFrame> frames;
  for (std::uint32_t i = 0; i < stack.size; ++i) {
    // A return address is just past its call; the call is what to name.
    AppendFrames(stack.frames[i], stack.frames[i] - 1, frames);
  }
  return frames;
}

std::vector<StackFrame> Symbolizer::FramesAt(std::uintptr_t address, bool return_address) {
  std::lock_guard lock(mu_);
  std::vector<StackFrame> frames;
  AppendFrames(address, return_address ? address - 1 : address, frames);
  return frames;
}

std::optional<std::uintptr_t> Symbolizer::Relocate(std::string_view code_id, std::uint64_t offset) {
  std::lock_guard lock(mu_);
  if (modules_.empty()) LoadModules();
  for (const Module& m : modules_) {
    if (!code_id.empty() && m.image.code_id == code_id && offset < m.image.image_size) {
      return m.start + offset;
    }
  }
  return std::nullopt;
}

void Symbolizer::AppendFrames(std::uintptr_t address, std::uintptr_t pc,
                              std::vector<StackFrame>& frames) {
  const Module* module = ModuleOf(address);
  PcInfo info;
  std::string symbol;
  if (state_ != nullptr) {
    backtrace_pcinfo(state_, pc, &OnPcInfo, &IgnoreError, &info);
    backtrace_syminfo(state_, pc, &OnSymInfo, &IgnoreError, &symbol);
  }
  // The line tables give file and line and the calls inlined at pc; the symbol table
  // gives the function's full name (DWARF without linkage names has only "TestBody").
  if (info.entries.empty()) info.entries.emplace_back();
  if (!symbol.empty()) info.entries.back().function = std::move(symbol);
  for (PcInfo::Entry& entry : info.entries) {
    StackFrame frame;
    frame.address = address;
    frame.function = std::move(entry.function);
    frame.file = std::move(entry.file);
    frame.line = entry.line;
    if (module != nullptr) frame.module = module->image.code_file;
    frame.in_app = InApp(module != nullptr && module->main, frame.function);
    frames.push_back(std::move(frame));
  }
}

std::vector<DebugImage> Symbolizer::Images() {
  std::lock_guard lock(mu_);
  if (modules_.empty()) LoadModules();
  std::vector<DebugImage> images;
  for (const Module& m : modules_) {
    if (!m.image.code_id.empty()) images.push_back(m.image);
  }
  return images;
}

}  // namespace vigil::telemetry::internal

// Process-wide hooks shared by every logger: the registry of live loggers that fatal
// signals and exit() drain, the fatal-signal handlers and the SIGHUP counter.
//
//   RegisterLive(core);          // constructor: exit() and fatal signals now flush it
//   InstallFatalHandlers();      // once per process, when a logger asks for it
//   UnregisterLive(core);        // destructor: returns once no hook uses `core`
//
// The registry holds at most kMaxLiveLoggers loggers; more still work, they are just not
// drained by the hooks.
//
// Thread-safety: all functions are safe from any thread. The handlers only use
// async-signal-safe operations (atomics, write(2), clock_gettime, sigaction, raise).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vigil::telemetry::internal {

class LoggerCore;

inline constexpr std::size_t kMaxLiveLoggers = 256;

void RegisterLive(LoggerCore* core) noexcept;
void UnregisterLive(LoggerCore* core) noexcept;

// SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT: drain every live logger on the faulting
// thread, then let the signal take its previous course. Installed once; later calls do
// nothing.
void InstallFatalHandlers() noexcept;
// SIGHUP: bumps HupGeneration() (loggers with a file sink reopen it) and calls the
// previous handler if it was a function. Installed once.
void InstallHupHandler() noexcept;
std::uint32_t HupGeneration() noexcept;

}  // namespace vigil::telemetry::internal

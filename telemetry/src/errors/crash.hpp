// Crashes as Sentry events, written in the crashing process and sent by the next start.
//
// A process that receives SIGSEGV, SIGABRT, SIGBUS, SIGFPE or SIGILL cannot be trusted to
// allocate, take locks or talk HTTP. So everything a crash report needs that is known
// beforehand is prepared when the handler is installed: the event id, the service's
// attributes, the loaded modules with their build ids, the output buffer, the file's
// path. The handler itself then only reads registers and the stack, formats into the
// buffer and calls open(2), write(2), close(2) and rename(2), all async-signal-safe:
//
//   1. the faulting pc (from the signal's context) and the return addresses above it
//      (the unwinder, warmed up at installation so that it does not allocate);
//   2. one envelope with a fatal event: the signal, its code and faulting address, the
//      raw frames each with its module's load address and path, the build ids
//      (debug_meta), the service's tags, and the trace and request ids of the request
//      the crashing thread was serving (SetCrashRequest), if any;
//   3. written to <outbox>/.<event_id>.tmp, renamed to <event_id>.envelope (a file that
//      is there is whole);
//   4. the previous action restored and the signal raised again, so that the process
//      ends as it would have (a core dump, the exit status a supervisor expects), or the
//      handler that was there before (a sanitizer's) runs.
//
// The envelope is valid as written: Sentry could take it as is and symbolicate with
// uploaded debug files. The next start of the program reads it back (outbox.hpp), finds
// each frame's module by its build id among the modules it has loaded itself, names the
// frames (function, file, line) and sends it.
//
// One handler per process: the first reporter to install it owns it until it is
// destroyed. Each thread that serves requests gets an alternate signal stack on first
// use, so that a stack overflow is reported too; other threads' overflows are not.
//
// Thread-safety: Install/Uninstall from one thread at a time (the reporter's
// constructor and destructor); SetCrashRequest from any thread, for itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vigil/telemetry/errors.hpp>

namespace vigil::telemetry::internal {

// What the crash event says about the process, fixed when the handler is installed.
struct CrashAttributes {
  std::string event_id;  // the crash's event id (one crash per process)
  std::string dsn;       // public DSN for the envelope header
  std::string release;
  std::string environment;
  std::string server_name;
  std::string sdk_version;
  std::string service;
  std::string version;
};

// The request a thread is serving, as a crash report names it.
struct CrashRequest {
  TraceId trace_id;
  SpanId span_id;
  RequestId request_id;
};

// The largest crash envelope; a crash with more to say is cut (frames, then modules).
inline constexpr std::size_t kMaxCrashEnvelope = 256 * 1024;

class CrashHandler {
 public:
  // Prepares the state and installs the handler for the five signals, unless another
  // handler owns the process: then installed() is false. Creates `outbox` when missing.
  // Throws std::runtime_error when the outbox cannot be created.
  CrashHandler(std::string outbox, CrashAttributes attributes);
  // Restores the actions that were there before, when it installed them.
  ~CrashHandler();
  CrashHandler(const CrashHandler&) = delete;
  CrashHandler& operator=(const CrashHandler&) = delete;

  bool installed() const noexcept { return installed_; }
  // The file this process's crash would be written to.
  const std::string& path() const noexcept { return path_; }

 private:
  bool installed_ = false;
  std::string path_;
};

// The envelope a crash of signal `signo` (si_code `code`, faulting address `address`)
// writes, with `frames` (innermost first: the faulting pc, then return addresses) and
// the request the thread was serving (`request`, its ids invalid when none), into
// [out, out + capacity). Returns the size written, 0 when it did not fit. The handler's
// own formatting, callable outside a handler for tests. Async-signal-safe.
std::size_t FormatCrashEnvelope(const CrashAttributes& attributes,
                                std::span<const DebugImage> images, int signo, int code,
                                std::uintptr_t address, std::span<const std::uintptr_t> frames,
                                const CrashRequest& request, std::int64_t time_unix_nano, char* out,
                                std::size_t capacity) noexcept;

}  // namespace vigil::telemetry::internal

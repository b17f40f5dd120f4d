#include "errors/crash.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <vector>

#include "errors/envelope.hpp"
#include "errors/symbolize.hpp"
#include "errors/throw_stack.hpp"

namespace vigil::telemetry::internal {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
constexpr std::size_t kSignalCount = std::size(kSignals);
// A thread's alternate signal stack: room for the handler and the unwinder.
constexpr std::size_t kAltStackSize = 64 * 1024;
// How long a second crashing thread waits for the first one's report.
constexpr int kWaitForOtherMs = 2000;

struct State {
  CrashAttributes attributes;
  std::vector<DebugImage> images;
  std::string temporary_path;  // <outbox>/.<event_id>.tmp
  std::string path;            // <outbox>/<event_id>.envelope
  std::unique_ptr<char[]> buffer;
  struct sigaction previous[kSignalCount] = {};
};

std::atomic<State*> g_state{nullptr};
std::atomic<bool> g_crashing{false};
std::atomic<bool> g_written{false};

constinit thread_local CrashRequest t_request{};
constinit thread_local bool t_has_request = false;

// The alternate stack of a thread that serves requests, unmapped when the thread ends.
struct AltStack {
  void* memory = nullptr;
  ~AltStack() {
    if (memory == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
    ::munmap(memory, kAltStackSize);
  }
};

void EnsureAltStack() noexcept {
  thread_local AltStack stack;
  thread_local bool checked = false;
  if (checked) return;
  checked = true;
  stack_t current{};
  if (::sigaltstack(nullptr, &current) != 0 || !(current.ss_flags & SS_DISABLE)) return;
  void* memory =
      ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return;
  stack_t ss{};
  ss.ss_sp = memory;
  ss.ss_size = kAltStackSize;
  if (::sigaltstack(&ss, nullptr) != 0) {
    ::munmap(memory, kAltStackSize);
    return;
  }
  stack.memory = memory;
}

std::string_view SignalName(int signo) noexcept {
  switch (signo) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    default:
      return "signal";
  }
}

std::string_view SignalDescription(int signo) noexcept {
  switch (signo) {
    case SIGSEGV:
      return "Segmentation fault";
    case SIGABRT:
      return "Aborted";
    case SIGBUS:
      return "Bus error";
    case SIGFPE:
      return "Floating-point exception";
    case SIGILL:
      return "Illegal instruction";
    default:
      return "Fatal signal";
  }
}

// The name of si_code `code` of `signo` (signal.h), empty when unknown.
std::string_view CodeName(int signo, int code) noexcept {
  switch (code) {
    case SI_USER:
      return "SI_USER";
    case SI_QUEUE:
      return "SI_QUEUE";
    case SI_TKILL:
      return "SI_TKILL";
    default:
      break;
  }
  if (signo == SIGSEGV) {
    if (code == SEGV_MAPERR) return "SEGV_MAPERR";
    if (code == SEGV_ACCERR) return "SEGV_ACCERR";
  } else if (signo == SIGBUS) {
    if (code == BUS_ADRALN) return "BUS_ADRALN";
    if (code == BUS_ADRERR) return "BUS_ADRERR";
    if (code == BUS_OBJERR) return "BUS_OBJERR";
  } else if (signo == SIGFPE) {
    if (code == FPE_INTDIV) return "FPE_INTDIV";
    if (code == FPE_INTOVF) return "FPE_INTOVF";
    if (code == FPE_FLTDIV) return "FPE_FLTDIV";
    if (code == FPE_FLTOVF) return "FPE_FLTOVF";
    if (code == FPE_FLTUND) return "FPE_FLTUND";
    if (code == FPE_FLTRES) return "FPE_FLTRES";
    if (code == FPE_FLTINV) return "FPE_FLTINV";
  } else if (signo == SIGILL) {
    if (code == ILL_ILLOPC) return "ILL_ILLOPC";
    if (code == ILL_ILLOPN) return "ILL_ILLOPN";
    if (code == ILL_ILLADR) return "ILL_ILLADR";
    if (code == ILL_PRVOPC) return "ILL_PRVOPC";
  }
  return {};
}

// A fixed-size text assembled in a signal handler.
class SmallText {
 public:
  void Add(std::string_view s) noexcept {
    const std::size_t n = std::min(s.size(), sizeof data_ - size_);
    std::memcpy(data_ + size_, s.data(), n);
    size_ += n;
  }
  void AddAddress(std::uintptr_t value) noexcept {
    char hex[kMaxAddressSize];
    Add(std::string_view(hex, FormatAddress(value, hex)));
  }
  std::string_view view() const noexcept { return {data_, size_}; }

 private:
  char data_[160];
  std::size_t size_ = 0;
};

// Whether the kernel raised the signal for an instruction (a fault, with an address),
// rather than a process sending it (kill, raise, abort).
bool FromFault(int signo, int code) noexcept { return code > 0 && signo != SIGABRT; }

const DebugImage* ImageOf(std::span<const DebugImage> images, std::uintptr_t address) noexcept {
  for (const DebugImage& image : images) {
    if (address >= image.image_addr && address - image.image_addr < image.image_size) return &image;
  }
  return nullptr;
}

void WriteException(JsonWriter& w, std::span<const DebugImage> images, int signo, int code,
                    std::uintptr_t address, std::span<const std::uintptr_t> frames) {
  const std::string_view code_name = CodeName(signo, code);
  SmallText value;
  value.Add(SignalDescription(signo));
  if (!code_name.empty()) {
    value.Add(" (");
    value.Add(code_name);
    value.Add(")");
  }
  if (FromFault(signo, code)) {
    value.Add(" at ");
    value.AddAddress(address);
  }
  w.Key("exception");
  w.BeginObject();
  w.Key("values");
  w.BeginArray();
  w.BeginObject();
  w.Field("type", SignalName(signo));
  w.Field("value", value.view());
  w.Key("mechanism");
  w.BeginObject();
  w.Field("type", "signalhandler");
  w.Key("handled");
  w.Bool(false);
  w.Key("synthetic");
  w.Bool(true);
  w.Key("meta");
  w.BeginObject();
  w.Key("signal");
  w.BeginObject();
  w.FieldInt("number", signo);
  w.FieldInt("code", code);
  w.Field("name", SignalName(signo));
  if (!code_name.empty()) w.Field("code_name", code_name);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.Key("stacktrace");
  w.BeginObject();
  w.Key("frames");
  w.BeginArray();
  // Outermost first, as Sentry lists them; the module of each, for the next start.
  for (std::size_t i = frames.size(); i-- > 0;) {
    w.BeginObject();
    w.Key("instruction_addr");
    w.Address(frames[i]);
    if (const DebugImage* image = ImageOf(images, frames[i])) {
      w.Key("image_addr");
      w.Address(image->image_addr);
      w.Field("package", image->code_file);
    }
    w.EndObject();
  }
  w.EndArray();
  // The innermost frame is where the signal came from, the others return addresses.
  w.Field("instruction_addr_adjustment", "all_but_first");
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
}

void WriteFile(const State& state, const char* data, std::size_t size) noexcept {
  const int fd =
      ::open(state.temporary_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  bool ok = true;
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (ok) {
    ::rename(state.temporary_path.c_str(), state.path.c_str());
  } else {
    ::unlink(state.temporary_path.c_str());
  }
}

std::uintptr_t FaultingPc(const void* context) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;
#endif
}

void Report(const State& state, int signo, const siginfo_t* info, void* context) noexcept {
  const std::uintptr_t pc = FaultingPc(context);
  RawStack stack;
  CaptureStack(stack, 0);
  // The frames up to the signal's are the handler's own: the crash starts at the pc.
  std::uint32_t first = 0;
  while (first < stack.size && stack.frames[first] != pc) ++first;
  std::uintptr_t frames[RawStack::kMaxFrames + 1];
  std::size_t count = 0;
  if (first == stack.size) {
    // The unwinder did not cross the signal frame: the pc alone.
    if (pc != 0) frames[count++] = pc;
  } else {
    for (std::uint32_t i = first; i < stack.size; ++i) frames[count++] = stack.frames[i];
  }
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const std::int64_t nanos = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  const CrashRequest request = t_has_request ? t_request : CrashRequest{};
  const std::size_t size = FormatCrashEnvelope(
      state.attributes, state.images, signo, info != nullptr ? info->si_code : 0,
      info != nullptr ? reinterpret_cast<std::uintptr_t>(info->si_addr) : 0,
      std::span(frames, count), request, nanos, state.buffer.get(), kMaxCrashEnvelope);
  if (size > 0) WriteFile(state, state.buffer.get(), size);
}

std::size_t SignalIndex(int signo) noexcept {
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    if (kSignals[i] == signo) return i;
  }
  return 0;
}

void OnSignal(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  State* state = g_state.load(std::memory_order_acquire);
  if (state == nullptr) {
    ::signal(signo, SIG_DFL);
    ::raise(signo);
    return;
  }
  if (!g_crashing.exchange(true)) {
    Report(*state, signo, info, context);
    g_written.store(true);
  } else {
    // Another thread is writing the report: let it finish before the process ends.
    for (int waited = 0; waited < kWaitForOtherMs && !g_written.load(); ++waited) {
      timespec ms{0, 1'000'000};
      ::nanosleep(&ms, nullptr);
    }
  }
  // What was there before takes over: the default action ends the process as the signal
  // would have; a previous handler (a sanitizer's) runs.
  ::sigaction(signo, &state->previous[SignalIndex(signo)], nullptr);
  // A fault happens again when the instruction is retried; a sent signal is sent again.
  if (info == nullptr || !FromFault(signo, info->si_code)) ::raise(signo);
  errno = saved_errno;
}

}  // namespace

std::size_t FormatCrashEnvelope(const CrashAttributes& attributes,
                                std::span<const DebugImage> images, int signo, int code,
                                std::uintptr_t address, std::span<const std::uintptr_t> frames,
                                const CrashRequest& request, std::int64_t time_unix_nano, char* out,
                                std::size_t capacity) noexcept {
  JsonBuffer buffer(out, capacity);
  EnvelopeHeader header;
  header.event_id = attributes.event_id;
  header.dsn = attributes.dsn;
  header.sent_at_unix_nano = time_unix_nano;
  header.sdk_version = attributes.sdk_version;
  EnvelopeWriter envelope(buffer, header);
  JsonWriter& w = envelope.BeginItem("event");
  w.BeginObject();
  WriteEventHead(
      w, attributes.event_id, time_unix_nano, ErrorLevel::kFatal, "vigil.crash",
      {attributes.release, attributes.environment, attributes.server_name, attributes.sdk_version});
  WriteException(w, images, signo, code, address, frames);
  w.Key("tags");
  w.BeginObject();
  if (!attributes.service.empty()) w.Field("service", attributes.service);
  if (!attributes.version.empty()) w.Field("version", attributes.version);
  if (!attributes.environment.empty()) w.Field("env", attributes.environment);
  if (!request.request_id.empty()) w.Field("request_id", request.request_id.view());
  w.EndObject();
  if (request.trace_id.IsValid()) {
    w.Key("contexts");
    w.BeginObject();
    WriteTraceContext(w, request.trace_id, request.span_id, SpanId());
    w.EndObject();
  }
  WriteDebugMeta(w, images);
  w.EndObject();
  envelope.EndItem();
  return buffer.overflowed() ? 0 : buffer.size();
}

CrashHandler::CrashHandler(std::string outbox, CrashAttributes attributes) {
  if (g_state.load() != nullptr) return;  // another reporter's
  std::error_code error;
  std::filesystem::create_directories(outbox, error);
  if (error) {
    throw std::runtime_error("cannot create the crash outbox " + outbox + ": " + error.message());
  }
  auto state = std::make_unique<State>();
  state->images = Symbolizer::Instance().Images();
  state->temporary_path = outbox + "/." + attributes.event_id + ".tmp";
  state->path = outbox + "/" + attributes.event_id + ".envelope";
  state->attributes = std::move(attributes);
  state->buffer = std::make_unique<char[]>(kMaxCrashEnvelope);
  // The unwinder reads (and caches) the modules' unwind tables on its first use: now,
  // not in the handler.
  RawStack warm_up;
  CaptureStack(warm_up, 0);
  EnsureAltStack();

  struct sigaction action {};
  action.sa_sigaction = &OnSignal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  g_crashing.store(false);
  g_written.store(false);
  g_state.store(state.get(), std::memory_order_release);
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    ::sigaction(kSignals[i], &action, &state->previous[i]);
  }
  path_ = state->path;
  state.release();  // owned through g_state until the destructor
  installed_ = true;
}

CrashHandler::~CrashHandler() {
  if (!installed_) return;
  State* state = g_state.load();
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    ::sigaction(kSignals[i], &state->previous[i], nullptr);
  }
  g_state.store(nullptr);
  delete state;
}

}  // namespace vigil::telemetry::internal

namespace vigil::telemetry {

void SetCrashRequest(const RequestContext& ctx) noexcept {
  if (internal::g_state.load(std::memory_order_relaxed) == nullptr) return;
  internal::EnsureAltStack();
  internal::t_request.trace_id = ctx.span.trace_id;
  internal::t_request.span_id = ctx.span.span_id;
  internal::t_request.request_id = ctx.request_id;
  internal::t_has_request = true;
}

void ClearCrashRequest() noexcept { internal::t_has_request = false; }

}  // namespace vigil::telemetry

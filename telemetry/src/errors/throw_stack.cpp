#include "errors/throw_stack.hpp"

#include <dlfcn.h>
#include <unwind.h>

#include <atomic>
#include <cstdlib>

namespace vigil::telemetry::internal {
namespace {

std::atomic<int> g_enabled{0};

struct ThrowRecord {
  const void* object;
  const std::type_info* type;
  RawStack stack;
};

// Trivially constructible: no guard on access, no constructor per thread.
thread_local ThrowRecord t_recent[kRecentThrows];
thread_local unsigned t_next;

struct UnwindState {
  RawStack* out;
  unsigned skip;
};

_Unwind_Reason_Code OnFrame(_Unwind_Context* context, void* arg) {
  auto* state = static_cast<UnwindState*>(arg);
  const std::uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  if (state->skip > 0) {
    --state->skip;
    return _URC_NO_REASON;
  }
  RawStack& out = *state->out;
  out.frames[out.size++] = ip;
  return out.size == RawStack::kMaxFrames ? _URC_END_OF_STACK : _URC_NO_REASON;
}

}  // namespace

void EnableThrowStacks() noexcept { g_enabled.fetch_add(1); }
void DisableThrowStacks() noexcept { g_enabled.fetch_sub(1); }
bool ThrowStacksEnabled() noexcept { return g_enabled.load(std::memory_order_relaxed) > 0; }

// Not inlined: its own frame is the one skipped beyond `skip`.
__attribute__((noinline)) void CaptureStack(RawStack& out, unsigned skip) noexcept {
  out.size = 0;
  out.at_throw = false;
  UnwindState state{&out, skip + 1};
  _Unwind_Backtrace(&OnFrame, &state);
}

bool TakeThrowStack(const void* object, const std::type_info* type, RawStack& out) noexcept {
  for (ThrowRecord& record : t_recent) {
    if (record.object == object && record.type != nullptr && *record.type == *type) {
      out = record.stack;
      out.at_throw = true;
      record.object = nullptr;  // taken: a later exception at this address is another one
      return true;
    }
  }
  return false;
}

// Called by the hook below; a function of its own so that the hook stays small.
__attribute__((noinline)) void RecordThrow(void* object, std::type_info* type) noexcept {
  ThrowRecord& record = t_recent[t_next++ % kRecentThrows];
  record.object = object;
  record.type = type;
  // Skipped: this function and __cxa_throw; the first frame is the throwing function.
  CaptureStack(record.stack, 2);
  // Not a tail call, which would take this function's frame off the stack it counts on.
  asm volatile("" ::: "memory");
}

}  // namespace vigil::telemetry::internal

namespace {

// The C++ runtime's __cxa_throw, as the compiler itself declares it (the type_info as
// void*).
using CxaThrow = void (*)(void*, void*, void (*)(void*));

CxaThrow FindRuntimeThrow() noexcept {
  auto* next = reinterpret_cast<CxaThrow>(dlsym(RTLD_NEXT, "__cxa_throw"));
  if (next == nullptr) std::abort();  // no C++ runtime after us: nothing can be thrown
  return next;
}

// Resolved before main, so that the first throw (maybe a bad_alloc) does not call dlsym.
const CxaThrow g_runtime_throw = FindRuntimeThrow();

}  // namespace

// Every throw expression calls this (see throw_stack.hpp).
extern "C" __attribute__((noreturn)) void __cxa_throw(void* object, void* type,
                                                      void (*destructor)(void*)) {
  if (vigil::telemetry::internal::ThrowStacksEnabled()) {
    vigil::telemetry::internal::RecordThrow(object, static_cast<std::type_info*>(type));
  }
  // A throw during static initialisation, before g_runtime_throw is set, looks it up.
  static const CxaThrow runtime = g_runtime_throw != nullptr ? g_runtime_throw : FindRuntimeThrow();
  runtime(object, type, destructor);
  __builtin_unreachable();
}

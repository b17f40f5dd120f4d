// Where an exception was thrown: raw return addresses recorded at the throw, kept per
// thread until the exception is caught and reported.
//
// The C++ runtime has no hook for "an exception is thrown", but every throw calls
// __cxa_throw. This module defines __cxa_throw in the program itself, which the dynamic
// linker then prefers for every caller, libstdc++'s own throws (std::vector::at, ...)
// included; ours records the stack and calls the C++ runtime's (found with
// dlsym(RTLD_NEXT), which under AddressSanitizer is ASan's interceptor, which calls on).
// The alternative, `-Wl,--wrap=__cxa_throw`, would miss throws inside libstdc++.so and
// need a flag on every program's link line.
//
// While no reporter has switched it on, the hook costs one relaxed load per throw. When
// on, a throw unwinds its own stack once (_Unwind_Backtrace, the unwinder the throw itself
// uses, no allocation) into the thread's ring of the last kRecent throws. The catch site
// then finds its exception's stack by the exception object's address and type:
//
//   } catch (const std::exception& e) {
//     RawStack stack;
//     if (!TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack)) {
//       CaptureStack(stack, /*skip=*/1);   // crossed threads: the catch site will do
//     }
//
// A throw on one thread that is caught on another (an exception_ptr handed over) is not
// found there; the reporter then records the catch site and says so.
//
// Thread-safety: everything is per thread, apart from the switch.
#pragma once

#include <cstdint>
#include <typeinfo>
#include <vigil/telemetry/errors.hpp>

namespace vigil::telemetry::internal {

inline constexpr std::size_t kRecentThrows = 4;

// Switches recording on (counted: as long as one reporter wants it) or off.
void EnableThrowStacks() noexcept;
void DisableThrowStacks() noexcept;
bool ThrowStacksEnabled() noexcept;

// The calling thread's stack, innermost first, without the `skip` innermost frames
// (CaptureStack's own is never included). No allocation, no lock.
void CaptureStack(RawStack& out, unsigned skip) noexcept;

// The stack recorded when `object` (the thrown object, most-derived address) of type
// `type` was thrown on this thread, if it is among the last kRecentThrows throws.
bool TakeThrowStack(const void* object, const std::type_info* type, RawStack& out) noexcept;

}  // namespace vigil::telemetry::internal

// Counts heap allocations in a test program, to prove that a hot path makes none.
//
// Include it in exactly one source file of a test executable: it replaces the global
// operator new and delete (which must be defined once per program).
//
//   EXPECT_EQ(vigil::test_support::AllocationsDuring([&] { router.Find("GET", "/x"); }), 0);
//
// Thread-safety: the counter is atomic; allocations on other threads are counted too.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

// The replacements below pair malloc with free; GCC cannot see that operator new is
// replaced and warns about free() on memory from "new" once delete is inlined.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace vigil::test_support {
inline std::atomic<long> g_allocations{0};

// How many times operator new ran while `fn` did.
long AllocationsDuring(const auto& fn) {
  const long before = g_allocations.load();
  fn();
  return g_allocations.load() - before;
}
}  // namespace vigil::test_support

void* operator new(std::size_t size) {
  vigil::test_support::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) {
    size = 1;
  }
  if (void* p = std::malloc(size)) {
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return operator new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

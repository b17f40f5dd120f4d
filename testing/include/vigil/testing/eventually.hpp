// Test support: waiting for something another thread or process will make true, by
// looking at it every few milliseconds until a deadline (for conditions nothing signals).
//
//   ASSERT_TRUE(vigil::test_support::Eventually([&] { return exporter.count() == 3; }));
#pragma once

#include <chrono>
#include <thread>

namespace vigil::test_support {

// True as soon as `condition()` holds; false if it still does not after `timeout`.
template <typename Condition>
bool Eventually(Condition condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace vigil::test_support

// Test support: a loopback TCP port with nothing listening on it, for a server a test
// starts later or for a peer that refuses connections.
//
//   const std::uint16_t port = vigil::test_support::UnusedPort();
//   options.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>

namespace vigil::test_support {

// A port the kernel just gave out on 127.0.0.1 and took back: connections to it are
// refused until someone binds it, which another program may do at any time. Throws
// std::system_error when no socket can be bound.
std::uint16_t UnusedPort();

}  // namespace vigil::test_support

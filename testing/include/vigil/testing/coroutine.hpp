// Test support: running one Asio coroutine to its end on the test's own thread, for code
// under test that is a coroutine but needs no server.
//
//   const service::PurgeReport report =
//       vigil::test_support::RunCoroutine([&] { return auth.retention().Run(); });
//
// Thread-safety: runs on the calling thread; what the coroutine touches is its own affair.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>

namespace vigil::test_support {

// Runs the coroutine `make()` returns on a fresh io_context until nothing is left to run,
// and returns what it returned; rethrows what it threw. Throws std::logic_error when the
// io_context ran out of work before the coroutine ended (it waits on something that
// never comes back to this io_context).
template <typename Make>
auto RunCoroutine(Make make) {
  boost::asio::io_context io;
  auto done = boost::asio::co_spawn(io, make(), boost::asio::use_future);
  io.run();
  if (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    throw std::logic_error("the coroutine did not run to its end");
  }
  return done.get();
}

}  // namespace vigil::test_support

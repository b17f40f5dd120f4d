#include "vigil/service/blocking.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vigil/testing/coroutine.hpp>
#include <vigil/testing/threads.hpp>

namespace vigil::service {
namespace {

std::string ThisThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

// A coroutine that waits for something that never comes would end the io_context with
// its assertions unrun: RunCoroutine throws then, which fails the test.
using test_support::RunCoroutine;

TEST(BlockingPoolTest, WorkRunsOnANamedPoolThreadAndResumesOnTheCallersThread) {
  BlockingPool pool(2);
  EXPECT_EQ(test_support::ThreadsNamed("vigil-blocking"), 2);
  const auto caller = std::this_thread::get_id();
  RunCoroutine([&]() -> asio::awaitable<void> {
    const auto [name, id] =
        co_await pool.Run([] { return std::pair(ThisThreadName(), std::this_thread::get_id()); });
    EXPECT_EQ(name, "vigil-blocking");
    EXPECT_NE(id, caller);
    EXPECT_EQ(std::this_thread::get_id(), caller);
  });
}

TEST(BlockingPoolTest, AnExceptionFromTheWorkReachesTheCaller) {
  BlockingPool pool(1);
  std::string caught;
  RunCoroutine([&]() -> asio::awaitable<void> {
    try {
      co_await pool.Run([]() -> int { throw std::runtime_error("disk on fire"); });
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
  });
  EXPECT_EQ(caught, "disk on fire");
}

TEST(BlockingPoolTest, AFullQueueAnswers503AtOnce) {
  BlockingPool pool(1, 1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  unsigned status = 0;
  asio::io_context io;
  // The first call occupies the only slot until released; the second finds the queue
  // full and fails without waiting for it.
  asio::co_spawn(io, pool.Run([released] { released.wait(); }), asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await pool.Run([] {});
        } catch (const http::HttpError& e) {
          status = e.status();
        }
        release.set_value();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(status, 503u);
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(BlockingPoolTest, EveryCallCompletesAndDestructionEndsTheThreads) {
  const long before = test_support::ThreadsNamed("vigil-blocking");
  std::atomic<int> done{0};
  {
    BlockingPool pool(2);
    EXPECT_EQ(test_support::ThreadsNamed("vigil-blocking"), before + 2);
    asio::io_context io;
    for (int i = 0; i < 8; ++i) {
      asio::co_spawn(io, pool.Run([&done] { done.fetch_add(1); }), asio::detached);
    }
    io.run();
  }
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(test_support::ThreadsNamed("vigil-blocking"), before);
}

}  // namespace
}  // namespace vigil::service

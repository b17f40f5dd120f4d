// A small pool of threads for CPU-heavy or blocking work (password hashing, a blocking
// library call) that must never run on an HTTP worker, where it would stall every other
// request of that worker.
//
//   service::BlockingPool pool(2);
//   std::string hash = co_await pool.Run([&] { return service::HashPassword(password); });
//
// The coroutine resumes on its own executor with the result (or the exception the work
// threw). At most `max_queued` calls wait at once; beyond that Run() answers 503 at once,
// so that a burst cannot pile up unbounded work and memory. The threads are named
// `vigil-blocking` (top -H, perf, gdb); destruction waits for the calls under way.
//
// Thread-safety: Run() may be called from any thread or coroutine.
#pragma once

#include <pthread.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <thread>
#include <type_traits>
#include <vector>
#include <vigil/http/exchange.hpp>

namespace vigil::service {

namespace asio = boost::asio;

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads, std::size_t max_queued = 256)
      : work_(asio::make_work_guard(context_)), max_queued_(max_queued) {
    threads_.reserve(threads);
    try {
      for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this] { context_.run(); });
        // Named here rather than by the thread, so the name is set when this returns.
        pthread_setname_np(threads_.back().native_handle(), "vigil-blocking");
      }
    } catch (...) {
      Join();
      throw;
    }
  }
  ~BlockingPool() { Join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `work()` on a pool thread. Throws http::HttpError 503 when the queue is full.
  template <typename Work>
  asio::awaitable<std::invoke_result_t<Work&>> Run(Work work) {
    if (queued_.fetch_add(1, std::memory_order_relaxed) >= max_queued_) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      throw http::HttpError(503, "the server is busy; try again shortly")
          .WithErrorType("overloaded");
    }
    struct Leave {
      std::atomic<std::size_t>& queued;
      ~Leave() { queued.fetch_sub(1, std::memory_order_relaxed); }
    } leave{queued_};
    // co_spawn runs the work on the pool and delivers its completion through the
    // awaiting coroutine's executor, which is how we get back to our worker.
    co_return co_await asio::co_spawn(
        context_.get_executor(),
        [&work]() -> asio::awaitable<std::invoke_result_t<Work&>> { co_return work(); },
        asio::use_awaitable);
  }

  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }

 private:
  // Lets run() return once the queued work is done, then waits for the threads.
  void Join() noexcept {
    work_.reset();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::size_t max_queued_;
  std::atomic<std::size_t> queued_{0};
};

}  // namespace vigil::service

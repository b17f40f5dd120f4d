// A small pool of threads for CPU-heavy or blocking work (password hashing, a blocking
// library call) that must never run on an HTTP worker, where it would stall every other
// request of that worker.
//
//   service::BlockingPool pool(2);
//   std::string hash = co_await pool.Run([&] { return service::HashPassword(password); });
//
// The coroutine resumes on its own executor with the result (or the exception the work
// threw). At most `max_queued` calls wait at once; beyond that Run() answers 503 at once,
// so that a burst cannot pile up unbounded work and memory.
//
// Thread-safety: Run() may be called from any thread or coroutine.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <type_traits>
#include <vigil/http/exchange.hpp>

namespace vigil::service {

namespace asio = boost::asio;

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads, std::size_t max_queued = 256)
      : pool_(threads), max_queued_(max_queued) {}
  ~BlockingPool() { pool_.join(); }
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
        pool_.get_executor(),
        [&work]() -> asio::awaitable<std::invoke_result_t<Work&>> { co_return work(); },
        asio::use_awaitable);
  }

  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }

 private:
  asio::thread_pool pool_;
  std::size_t max_queued_;
  std::atomic<std::size_t> queued_{0};
};

}  // namespace vigil::service

// Database::Transact and Database::TransactBlocking: how a transaction travels to a
// database thread and how its outcome comes back. database.hpp includes this file at its
// end; include database.hpp, not this.
//
// Transact suspends the calling coroutine, queues the work with Database::Submit and,
// once a database thread has run it, posts the completion to the coroutine's own
// executor, where co_await returns the work's result or rethrows its exception. The
// executor is kept busy meanwhile (outstanding work), so an io_context whose only
// coroutine waits on the database does not return from run().
//
//   std::int64_t n = co_await db.Transact(ctx, [&](storage::Session& s) {
//     return s.Query(kCount).FirstRow()->Int(0);
//   });
//
// Thread-safety: as Database.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vigil/telemetry/context.hpp>

namespace vigil::storage {
namespace internal {

// The work's result between the database thread, which writes it, and the caller, which
// takes it after the completion has been handed over.
template <typename R>
class Outcome {
 public:
  template <typename Work>
  void Run(Work& work, Session& session) {
    value_.emplace(work(session));
  }
  R Take() { return std::move(*value_); }

 private:
  std::optional<R> value_;
};

template <>
class Outcome<void> {
 public:
  template <typename Work>
  void Run(Work& work, Session& session) {
    work(session);
  }
  void Take() {}
};

}  // namespace internal

template <typename Work>
asio::awaitable<std::invoke_result_t<Work&, Session&>> Database::Transact(
    const telemetry::RequestContext& context, Work work) {
  return TransactCopied<std::invoke_result_t<Work&, Session&>, Work>(context, std::move(work));
}

// g++ 12 flags the coroutine frame of a template defined in a header when it holds a
// lambda (a type without linkage) as a parameter copy; the frame is never named outside
// this instantiation, so there is nothing to warn about.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
template <typename R, typename Work>
asio::awaitable<R> Database::TransactCopied(telemetry::RequestContext context, Work work) {
  static_assert(!std::is_reference_v<R>,
                "a transaction's work must return a value, not a reference");
  auto outcome = std::make_shared<internal::Outcome<R>>();
  co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr)>(
      // Runs once the coroutine is suspended; its frame (context, work, outcome) stays
      // put until the handler resumes it.
      [this, &context, &work, &outcome](auto handler) {
        using Handler = decltype(handler);
        auto tracked = asio::prefer(asio::get_associated_executor(handler),
                                    asio::execution::outstanding_work.tracked);
        using Executor = decltype(tracked);
        struct Completion {
          Handler handler;
          Executor executor;
        };
        // Shared: std::function needs a copyable callable, the handler is move-only.
        auto completion =
            std::make_shared<Completion>(Completion{std::move(handler), std::move(tracked)});
        // Runs on the database thread. Once the post is made the coroutine may resume,
        // finish and its io_context be destroyed before this thread returns, so nothing
        // left here may refer to that context: the handler and the tracked executor move
        // into the posted function (and are destroyed where it runs), and the post goes
        // through an untracked copy, whose destruction does not touch the context.
        auto finish = [completion](std::exception_ptr error) {
          const auto target =
              asio::prefer(completion->executor, asio::execution::outstanding_work.untracked);
          asio::post(target, [resume = std::move(*completion), error]() mutable {
            std::move(resume.handler)(error);
          });
        };
        try {
          Submit(
              context, [&work, outcome](Session& session) { outcome->Run(work, session); }, finish);
        } catch (...) {
          // Submit refused the call (Unavailable): nothing was queued, complete here.
          finish(std::current_exception());
        }
      },
      asio::use_awaitable);
  if constexpr (std::is_void_v<R>) {
    co_return;
  } else {
    co_return outcome->Take();
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

template <typename Work>
std::invoke_result_t<Work&, Session&> Database::TransactBlocking(
    const telemetry::RequestContext& context, Work work) {
  using R = std::invoke_result_t<Work&, Session&>;
  static_assert(!std::is_reference_v<R>,
                "a transaction's work must return a value, not a reference");
  // Shared with the database thread, which may still be returning from `done` when this
  // thread wakes and leaves.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
    internal::Outcome<R> outcome;
  };
  auto waiter = std::make_shared<Waiter>();
  Submit(
      context, [&work, waiter](Session& session) { waiter->outcome.Run(work, session); },
      [waiter](std::exception_ptr error) {
        std::lock_guard lock(waiter->mu);
        waiter->error = std::move(error);
        waiter->done = true;
        waiter->cv.notify_all();
      });
  {
    std::unique_lock lock(waiter->mu);
    waiter->cv.wait(lock, [&] { return waiter->done; });
  }
  if (waiter->error) std::rethrow_exception(waiter->error);
  return waiter->outcome.Take();
}

}  // namespace vigil::storage

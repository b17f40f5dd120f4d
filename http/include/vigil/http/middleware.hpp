// Middleware: the cross-cutting steps every request passes through, composed in order.
//
// A middleware is a small object with two hooks. The pipeline calls every Before() in
// the order the middleware were added, then the route's handler (unless someone already
// answered), then every After() in reverse order. So a service's main() reads top to
// bottom as the order a request meets them:
//
//   http::Pipeline pipeline;
//   pipeline.Add<http::RequestIdMiddleware>();
//   pipeline.Add<http::TracingMiddleware>(telemetry.tracer());
//   pipeline.Add<http::MetricsMiddleware>(telemetry.metrics());
//   pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
//   pipeline.Add<http::ErrorMiddleware>(telemetry.log());
//
// A middleware whose decision waits on I/O (a rate limit shared through Redis) says so
// with waits() and implements BeforeAsync(), which the pipeline awaits in Before()'s
// place; the others cost no coroutine.
//
// Every Before() runs, even when an earlier one answered, so that identification and
// observation always happen; a Before() that would answer checks responded() first. A
// request the server rejects while reading it (431, 400, 408, 413) runs the same
// pipeline with the rejection in the handler's place, so it is logged, counted and
// traced like any other.
//
// Thread-safety: hooks are called concurrently from every worker thread; a middleware
// keeps per-request state in the Exchange, never in itself.
#pragma once

#include <memory>
#include <utility>
#include <vector>
#include <vigil/http/exchange.hpp>

namespace vigil::http {

class Middleware {
 public:
  virtual ~Middleware() = default;
  // Called before the handler. May read the request, set context, add response headers,
  // or answer (which skips the handler).
  virtual void Before(Exchange& exchange) = 0;
  // True when BeforeAsync() replaces Before(): asked once, when the pipeline is built.
  virtual bool waits() const noexcept { return false; }
  // Before() for a middleware that waits; the default calls Before().
  virtual asio::awaitable<void> BeforeAsync(Exchange& exchange) {
    Before(exchange);
    co_return;
  }
  // Called after the handler, with the response decided (and, for a streamed response,
  // already sent). Must not throw.
  virtual void After(Exchange& exchange) noexcept = 0;
};

class Pipeline {
 public:
  template <typename M, typename... Args>
  M& Add(Args&&... args) {
    auto m = std::make_unique<M>(std::forward<Args>(args)...);
    M& ref = *m;
    waits_.push_back(ref.waits());
    middleware_.push_back(std::move(m));
    return ref;
  }

  // Runs Before hooks, then `handler` (an awaitable-returning callable taking the
  // Exchange) unless the exchange was answered, then After hooks. An exception from a
  // Before hook or the handler is stored with set_error() and never escapes.
  template <typename Handler>
  asio::awaitable<void> Run(Exchange& exchange, Handler&& handler) const {
    std::size_t ran = 0;
    try {
      for (; ran < middleware_.size(); ++ran) {
        if (waits_[ran]) {
          co_await middleware_[ran]->BeforeAsync(exchange);
        } else {
          middleware_[ran]->Before(exchange);
        }
      }
    } catch (...) {
      exchange.set_error(std::current_exception());
    }
    if (!exchange.responded() && !exchange.error()) {
      try {
        co_await handler(exchange);
      } catch (...) {
        exchange.set_error(std::current_exception());
      }
    }
    // A Before that threw still gets its After: hooks must tolerate partial state.
    std::size_t to_unwind = ran < middleware_.size() ? ran + 1 : ran;
    while (to_unwind > 0) middleware_[--to_unwind]->After(exchange);
  }

  bool empty() const noexcept { return middleware_.empty(); }

 private:
  std::vector<std::unique_ptr<Middleware>> middleware_;
  std::vector<bool> waits_;
};

}  // namespace vigil::http

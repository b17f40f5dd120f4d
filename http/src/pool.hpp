// The keep-alive connections of one worker to one upstream: what http::Upstream holds
// per worker and the client's send loop (send.hpp) takes connections from. Internal to
// libvigil_http.
//
//   auto connection = co_await pool.Acquire();  // an idle one still open, or a new one
//   ...                                          // one request, one complete response
//   pool.Release(std::move(connection), response.base());
//
// Thread-safety: a ConnectionPool and its ClientConnections are used on their worker's
// thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/fields.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::http::internal {

class Deadline;

// One open connection to an upstream, checked out of a pool.
class ClientConnection {
 public:
  explicit ClientConnection(asio::ip::tcp::socket socket);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  asio::ip::tcp::socket& socket() noexcept { return socket_; }
  beast::flat_buffer& buffer() noexcept { return buffer_; }
  // Room for a request's start line and fields, reused by every request it carries.
  std::string& head_buffer() noexcept { return head_buffer_; }
  // True when this connection served an earlier request: a failure before any response
  // byte may then mean the upstream closed it while idle, and a retry is safe.
  bool reused() const noexcept { return uses_ > 1; }
  // Pending operations are cancelled `timeout` from now; expired() then tells why.
  void SetDeadline(std::chrono::steady_clock::duration timeout);
  bool expired() const noexcept;

 private:
  friend class ConnectionPool;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string head_buffer_;
  std::unique_ptr<Deadline> deadline_;
  std::chrono::steady_clock::time_point expires_;  // while idle: when it may no longer be used
  std::uint64_t uses_ = 0;
};

// The gauges of one upstream's pools (all workers).
struct PoolGauges {
  telemetry::Gauge* idle = nullptr;
  telemetry::Gauge* active = nullptr;
};

// The connections of one worker to one upstream.
class ConnectionPool {
 public:
  ConnectionPool(asio::io_context& context, const UpstreamAddress& address, PoolOptions options,
                 PoolGauges gauges);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // The most recently used idle connection still within its idle lifetime that the
  // upstream has not closed, or a new one. Each idle candidate is checked with one
  // non-blocking peek at its socket: end of stream, an error or unexpected bytes mean the
  // upstream closed it (or broke it) while idle, and it is closed instead of used.
  // Throws boost::system::system_error: asio::error::timed_out when connecting took
  // longer than connect_timeout, or the connection or resolution error.
  asio::awaitable<std::unique_ptr<ClientConnection>> Acquire();
  // A new connection, never an idle one (for the retry after a reused one failed).
  asio::awaitable<std::unique_ptr<ClientConnection>> Connect();
  // Gives back a connection whose last response (`response`, its header) was read
  // completely and which the upstream keeps alive; it is kept for reuse (or closed when
  // the pool is full) for IdleLifetime(response, idle_timeout).
  void Release(std::unique_ptr<ClientConnection> connection,
               const beast::http::fields& response) noexcept;
  // Drops a connection that cannot be reused.
  void Discard(std::unique_ptr<ClientConnection> connection) noexcept;

  std::size_t idle() const noexcept { return idle_.size(); }

 private:
  void EvictExpired(std::chrono::steady_clock::time_point now) noexcept;

  asio::io_context& context_;
  const UpstreamAddress& address_;
  PoolOptions options_;
  PoolGauges gauges_;
  // Most recently released last. Lifetimes differ per connection (Keep-Alive), so this is
  // not ordered by expiry: next_expiry_ (the earliest, or later) saves scanning it.
  std::vector<std::unique_ptr<ClientConnection>> idle_;
  std::chrono::steady_clock::time_point next_expiry_ = std::chrono::steady_clock::time_point::max();
  std::vector<asio::ip::tcp::endpoint> endpoints_;  // resolved once, on first connect
};

// The seconds of a `Keep-Alive: timeout=N` field value ("timeout=5, max=100"; the
// parameter name in any case, the value a token or a quoted string), or nullopt when it
// has none that is a whole number.
std::optional<std::chrono::seconds> KeepAliveTimeout(std::string_view value) noexcept;

// How long a connection may stay idle in a pool whose own limit is `idle_timeout`, after
// a response with these fields: `idle_timeout`, or less when the upstream announces with
// Keep-Alive that it closes idle connections after N seconds: then N less a margin for
// the time a request takes to reach it (half of N, at most 1 s), so that a request is
// not sent on a connection the upstream is closing. 0: do not keep it.
std::chrono::milliseconds IdleLifetime(const beast::http::fields& response,
                                       std::chrono::milliseconds idle_timeout) noexcept;

}  // namespace vigil::http::internal

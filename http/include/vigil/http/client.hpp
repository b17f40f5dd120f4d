// The client side of HTTP/1.1: pooled keep-alive connections to upstreams, and the
// instrumentation every outgoing call carries.
//
// An Upstream is one `http://host:port` with a connection pool per worker thread, so a
// request never waits for a lock or another thread's connection. A ClientCall wraps
// one request: a CLIENT span (child of the caller's span), the W3C trace context and
// X-Request-Id injected into the request's headers, and on Finish() the span's outcome
// and `http_client_request_duration_seconds`. A Client puts them together for a handler
// that calls another service (the gateway's proxy uses the parts to stream):
//
//   http::Upstream catalog(runtime, http::UpstreamAddress::Parse("http://127.0.0.1:8082"),
//                          http::PoolOptions::FromEnv(), telemetry.metrics());
//   http::ClientInstruments instruments(telemetry.metrics());
//   http::Client client(catalog, telemetry.tracer(), instruments);
//   http::Client::Request req{beast::http::verb::get, "/items/7", 11};
//   http::Client::Response res = co_await client.Send(ex.worker(), ex.context(), std::move(req));
//
// Thread-safety: an Upstream may be shared by all workers; each ConnectionPool and each
// ClientConnection is used only on its own worker's thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

class Runtime;

namespace internal {
class Deadline;
}

// Where an upstream listens.
struct UpstreamAddress {
  std::string host;         // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string authority;    // "host:port" as it appears in URLs and metric labels

  // "http://host[:port]" with an optional trailing '/'. Throws std::invalid_argument
  // naming the URL when it is anything else (another scheme, a path, a bad port).
  static UpstreamAddress Parse(std::string_view url);
};

struct PoolOptions {
  // Idle connections kept per worker; more are closed when released.
  std::size_t max_idle = 64;
  // An idle connection older than this is closed instead of reused; sooner when the
  // upstream's `Keep-Alive: timeout=N` says it closes them sooner (see IdleLifetime).
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds connect_timeout{2000};

  // VIGIL_UPSTREAM_MAX_IDLE, VIGIL_UPSTREAM_IDLE_TIMEOUT, VIGIL_UPSTREAM_CONNECT_TIMEOUT.
  static PoolOptions FromEnv();
};

// One open connection to an upstream, checked out of a pool.
class ClientConnection {
 public:
  explicit ClientConnection(asio::ip::tcp::socket socket);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  asio::ip::tcp::socket& socket() noexcept { return socket_; }
  beast::flat_buffer& buffer() noexcept { return buffer_; }
  // Room for a request's start line and fields (http::WriteMessage's scratch).
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
  std::unique_ptr<internal::Deadline> deadline_;
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
  std::shared_ptr<bool> alive_;
};

// One upstream: its address and a pool per worker. Create it at start-up, after the
// Runtime, and destroy it before the Runtime.
class Upstream {
 public:
  Upstream(Runtime& runtime, UpstreamAddress address, PoolOptions options,
           telemetry::Registry& registry);
  ~Upstream();
  Upstream(const Upstream&) = delete;  // the pools refer to address_
  Upstream& operator=(const Upstream&) = delete;
  const UpstreamAddress& address() const noexcept { return address_; }
  ConnectionPool& pool(std::size_t worker) noexcept { return *pools_[worker]; }

 private:
  UpstreamAddress address_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;
};

// The client metrics of a process:
//   http_client_request_duration_seconds{http_request_method, server_address,
//                                        http_response_status_code}
//   http_client_open_connections{http_connection_state, server_address}
class ClientInstruments {
 public:
  explicit ClientInstruments(telemetry::Registry& registry);
  telemetry::Family<telemetry::Histogram>& duration;
};

// One outgoing request's telemetry. Create it just before sending; call Finish() once
// the outcome is known (the destructor finishes a call that was not, as an error).
class ClientCall {
 public:
  ClientCall(const telemetry::Tracer& tracer, ClientInstruments& instruments,
             const telemetry::RequestContext& parent, std::string_view method_label,
             const UpstreamAddress& upstream, std::string_view target);
  ~ClientCall();
  ClientCall(const ClientCall&) = delete;
  ClientCall& operator=(const ClientCall&) = delete;

  // Sets traceparent (this call's span), tracestate, baggage and X-Request-Id.
  void Inject(beast::http::fields& fields) const;
  // The same headers appended as "name: value\r\n" lines to a head laid out by hand
  // (which must not hold them already).
  void AppendPropagation(std::string& head) const;
  const telemetry::RequestContext& context() const noexcept { return context_; }
  telemetry::Span& span() noexcept { return span_; }
  // `status` 0: no response arrived; `error_type` then says why ("timeout", ...).
  void Finish(unsigned status, std::string_view error_type = {}) noexcept;

 private:
  ClientInstruments& instruments_;
  std::string_view method_label_;
  const UpstreamAddress& upstream_;
  telemetry::Span span_;
  telemetry::RequestContext context_;
  std::chrono::steady_clock::time_point start_;
  bool finished_ = false;
};

// ---- Failures and retries, shared by every caller of an upstream ----------------------

// Throws the HttpError that answers a failed upstream call, after finishing `call` with
// the same cause: 504 "timeout" when `timed_out` (or `ec` is a timeout), else 502
// "connection_refused", "invalid_response" or "connection_reset". `timeout` is named in
// the detail; the upstream's address never is.
[[noreturn]] void ThrowUpstreamFailure(ClientCall& call, const boost::system::error_code& ec,
                                       bool timed_out, std::chrono::milliseconds timeout);

// True for the methods a request may be repeated with (RFC 9110 section 9.2.2).
bool IsIdempotent(beast::http::verb method) noexcept;

// True when `ec`, before any response byte, means that a reused connection had been
// closed by the upstream while idle. Sending again on a new connection is then safe for
// an idempotent method, and for any method when nothing of the request had left the
// process (WriteBuffers' `sent` was 0): an upstream cannot act on a request it never got.
// A request that was sent (even in part) and not answered may have been processed before
// the connection died (a crash looks the same), so a POST is never sent again then.
bool IsStaleConnection(const boost::system::error_code& ec) noexcept;

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

// After writing a request failed, how long to wait for the answer the upstream may have
// sent before it stopped reading (a 413 for a body over its limit, say). Such an answer
// is normally in the socket's buffer already, ahead of the reset that failed the write.
inline constexpr std::chrono::milliseconds kEarlyResponseWait{500};

// A small client for one upstream, for handlers that call another service: one request,
// the whole response in memory. Pooled connections, a CLIENT span, injected context,
// metrics, one retry on a stale connection (idempotent methods), and failures as
// HttpError 502/504 (so a handler that lets them propagate answers its caller the same).
//
//   http::Client catalog(upstream, telemetry.tracer(), instruments);
//   auto res = co_await catalog.Send(ex, beast::http::verb::get, "/items/7", {});
//
// Thread-safety: Send may be called from every worker; each call uses its worker's pool.
class Client {
 public:
  using Request = beast::http::request<beast::http::string_body>;
  using Response = beast::http::response<beast::http::string_body>;

  Client(Upstream& upstream, telemetry::Tracer tracer, ClientInstruments& instruments,
         std::chrono::milliseconds timeout = std::chrono::milliseconds(5000),
         std::uint64_t max_response_bytes = 16 * 1024 * 1024) noexcept;

  // Sends `request` (target, method, fields and body set by the caller) as a child of
  // `context`, on the pool of `worker`. Host, Content-Length and the propagation fields
  // are set here.
  asio::awaitable<Response> Send(std::size_t worker, const telemetry::RequestContext& context,
                                 Request request);

 private:
  Upstream& upstream_;
  telemetry::Tracer tracer_;
  ClientInstruments& instruments_;
  std::chrono::milliseconds timeout_;
  std::uint64_t max_response_bytes_;
};

}  // namespace vigil::http

// The client side of HTTP/1.1: pooled keep-alive connections to upstreams, requests sent
// or forwarded on them, and the instrumentation every outgoing request carries.
//
// An Upstream is one `http://host:port` with a connection pool per worker thread, so a
// request never waits for a lock or another thread's connection. A Client sends requests
// to one upstream: Send() for a handler that calls another service (the whole response
// in memory), Forward() for a proxy (the inbound request and the response streamed). Both
// go through the same send loop, and each request gets a CLIENT span (child of the
// caller's span), the W3C trace context and X-Request-Id in its head, and an observation
// of `http_client_request_duration_seconds`.
//
//   http::Upstream catalog(runtime, http::UpstreamAddress::Parse("http://127.0.0.1:8082"),
//                          http::PoolOptions::FromEnv(), telemetry.metrics());
//   http::ClientInstruments instruments(telemetry.metrics());
//   http::Client client(catalog, telemetry.tracer(), instruments);
//   http::Client::Request req{beast::http::verb::get, "/items/7", 11};
//   http::Client::Response res = co_await client.Send(ex.worker(), ex.context(), std::move(req));
//
// Thread-safety: Upstream and Client may be shared by all workers; a request uses the
// connections of its own worker only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
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
class Exchange;

namespace internal {
class ConnectionPool;
}

// Where an upstream listens.
struct UpstreamAddress {
  std::string host;         // a name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string authority;    // "host:port" as it appears in URLs and metric labels

  // "http://host[:port]" with an optional trailing '/', the host a name, an IPv4 address
  // or an IPv6 address in brackets. Throws std::invalid_argument naming the URL when it is
  // anything else (another scheme, a path, a bad port, other characters in the host).
  static UpstreamAddress Parse(std::string_view url);
  bool operator==(const UpstreamAddress&) const = default;
};

struct PoolOptions {
  // Idle connections kept per worker; more are closed when released.
  std::size_t max_idle = 64;
  // An idle connection older than this is closed instead of reused; sooner when the
  // upstream's `Keep-Alive: timeout=N` says it closes them sooner: then N less a margin
  // (half of N, at most 1 s), so that a request never races the upstream's close.
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds connect_timeout{2000};

  // VIGIL_UPSTREAM_MAX_IDLE, VIGIL_UPSTREAM_IDLE_TIMEOUT, VIGIL_UPSTREAM_CONNECT_TIMEOUT.
  static PoolOptions FromEnv();
};

// One upstream: its address and a pool per worker. Create it at start-up, after the
// Runtime, and destroy it before the Runtime. An idle pooled connection is peeked at
// (one non-blocking recv) before it is reused, so that one the upstream closed while idle
// is never written to.
class Upstream {
 public:
  Upstream(Runtime& runtime, UpstreamAddress address, PoolOptions options,
           telemetry::Registry& registry);
  ~Upstream();
  Upstream(const Upstream&) = delete;  // the pools refer to address_
  Upstream& operator=(const Upstream&) = delete;
  const UpstreamAddress& address() const noexcept { return address_; }

 private:
  friend class Client;
  internal::ConnectionPool& pool(std::size_t worker) noexcept { return *pools_[worker]; }

  UpstreamAddress address_;
  std::vector<std::unique_ptr<internal::ConnectionPool>> pools_;
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

// The fields a ForwardPolicy adds to a forwarded request, written straight into the
// bytes of its head (no allocation of their own).
class ForwardFields {
 public:
  explicit ForwardFields(std::string& head) noexcept : head_(head) {}
  // Adds `name: value`, the value given as pieces joined in order (so that
  // "X-Forwarded-For: <earlier>, <peer>" needs no string of its own). Neither the name
  // nor the value may hold CR or LF.
  template <typename... Pieces>
  void Add(std::string_view name, const Pieces&... value) {
    head_.append(name).append(": ");
    (head_.append(std::string_view(value)), ...);
    head_.append("\r\n");
  }

 private:
  std::string& head_;
};

// A proxy's header policy for Client::Forward, beyond what HTTP requires of every
// intermediary (which Forward applies itself: hop-by-hop fields and those named by
// Connection dropped both ways, framing decided per hop, Expect answered by the server,
// traceparent/tracestate/baggage/X-Request-Id those of the forward's CLIENT span).
//
// Thread-safety: Forward calls it on the request's worker, while the head is laid out.
class ForwardPolicy {
 public:
  // True when the client's request field `name` (as sent, any case) must not reach the
  // upstream: one the policy sets itself, or a claim only the proxy may make.
  virtual bool Drops(std::string_view name) const noexcept = 0;
  // Adds the policy's own fields to the upstream request, after the client's.
  virtual void AddFields(ForwardFields& fields) const = 0;

 protected:
  ~ForwardPolicy() = default;
};

// A client for one upstream. Pooled connections, a CLIENT span, injected context,
// metrics, one retry on a stale connection (when it is safe: see Send), and failures as
// HttpError 502/504 (so a handler that lets them propagate answers its caller the same).
//
//   http::Client orders(upstream, telemetry.tracer(), instruments, route_timeout);
//   co_await orders.Forward(ex, "/orders/7", policy);  // a streamed route's handler
//
// Thread-safety: Send and Forward may be called from every worker at once; each call
// uses its worker's pool.
class Client {
 public:
  using Request = beast::http::request<beast::http::string_body>;
  using Response = beast::http::response<beast::http::string_body>;

  // `timeout` bounds sending a request and receiving its response (for Forward, each
  // piece of a streamed body); connecting is bounded by PoolOptions::connect_timeout.
  // `max_response_bytes` bounds the body Send reads into memory (Forward streams any size).
  Client(Upstream& upstream, telemetry::Tracer tracer, ClientInstruments& instruments,
         std::chrono::milliseconds timeout = std::chrono::milliseconds(5000),
         std::uint64_t max_response_bytes = 16 * 1024 * 1024) noexcept;

  // Sends `request` (target, method, fields and body set by the caller) as a child of
  // `context`, on the pool of `worker`, and reads the whole response. Host,
  // Content-Length and the propagation fields are set here. A reused connection the
  // upstream had closed is replaced once by a new one: for any method when nothing of
  // the request had left, for an idempotent one when no response byte had come back.
  // Throws HttpError: 502 (refused, reset, invalid response, body over
  // max_response_bytes), 504 (no answer within the timeout).
  asio::awaitable<Response> Send(std::size_t worker, const telemetry::RequestContext& context,
                                 Request request);

  // Forwards the request of `ex` (a route added with BodyMode::kStreamed, whose
  // max_body_bytes bounds the request body) to `target` (origin form) on the upstream,
  // and relays the response through `ex`, as a child of ex.context(). The upstream's head
  // is the method, `target`, the client's end-to-end fields less those `policy` drops,
  // the policy's fields, the CLIENT span's propagation fields and the framing. A body
  // with a known length up to 64 KiB is read first and sent with the head in one write
  // (it can then be sent again on a retry, as Send's); a larger or chunked one streams
  // through a 64 KiB buffer, and so do responses over 64 KiB or of unknown length, so a
  // 1 GiB body never sits in memory. An answer the upstream sent before taking the whole
  // body (a 413) is relayed, and both connections close after it.
  // Throws HttpError as Send (nothing was sent to the client then) and as ex.ReadSome
  // (413, 408, 400). When the upstream fails after the response's head went out, the
  // client's connection is closed after the truncated body instead (the request's
  // error.type "timeout" or "connection_reset"; the CLIENT span's "response_truncated").
  asio::awaitable<void> Forward(Exchange& ex, std::string_view target, const ForwardPolicy& policy);

 private:
  Upstream& upstream_;
  telemetry::Tracer tracer_;
  ClientInstruments& instruments_;
  std::chrono::milliseconds timeout_;
  std::uint64_t max_response_bytes_;
};

}  // namespace vigil::http

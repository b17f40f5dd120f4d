#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <vigil/http/client.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/http/read.hpp>
#include <vigil/http/server.hpp>
#include <vigil/http/write.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/text.hpp>

#include "deadline.hpp"

namespace vigil::http {

namespace tel = vigil::telemetry;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;

// ---------------------------------------------------------------------------- address

UpstreamAddress UpstreamAddress::Parse(std::string_view url) {
  auto fail = [&](const char* why) {
    throw std::invalid_argument("upstream \"" + std::string(url) + "\" is not valid: " + why);
  };
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) fail("expected http://host[:port]");
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) fail("the host is missing");
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    fail("expected only http://host[:port], without path, query or credentials");
  }
  UpstreamAddress a;
  std::string_view port_text;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) fail("unterminated IPv6 literal");
    a.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') fail("expected ':' after the IPv6 literal");
      port_text = rest.substr(1);
    }
  } else {
    const auto colon = rest.rfind(':');
    a.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (a.host.empty()) fail("the host is missing");
  if (!port_text.empty() || rest.find(':') != std::string_view::npos) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      fail("the port must be from 1 to 65535");
    }
    a.port = static_cast<std::uint16_t>(port);
  }
  const bool v6 = a.host.find(':') != std::string::npos;
  a.authority = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
  return a;
}

PoolOptions PoolOptions::FromEnv() {
  PoolOptions o;
  o.max_idle =
      static_cast<std::size_t>(tel::env::Integer("VIGIL_UPSTREAM_MAX_IDLE", 64, 0, 100000));
  o.idle_timeout = tel::env::Millis("VIGIL_UPSTREAM_IDLE_TIMEOUT", o.idle_timeout);
  o.connect_timeout = tel::env::Millis("VIGIL_UPSTREAM_CONNECT_TIMEOUT", o.connect_timeout);
  if (o.connect_timeout.count() == 0) {
    throw tel::ConfigError("VIGIL_UPSTREAM_CONNECT_TIMEOUT",
                           "0 is not valid: expected a timeout of at least 1 ms");
  }
  return o;
}

// ---------------------------------------------------------------------------- connection

ClientConnection::ClientConnection(tcp::socket socket)
    : socket_(std::move(socket)),
      deadline_(std::make_unique<internal::Deadline>(socket_.get_executor(), socket_)) {}

ClientConnection::~ClientConnection() { deadline_->Stop(); }

void ClientConnection::SetDeadline(std::chrono::steady_clock::duration timeout) {
  deadline_->Set(timeout);
}

bool ClientConnection::expired() const noexcept { return deadline_->expired(); }

// ---------------------------------------------------------------------------- pool

ConnectionPool::ConnectionPool(asio::io_context& context, const UpstreamAddress& address,
                               PoolOptions options, PoolGauges gauges)
    : context_(context),
      address_(address),
      options_(options),
      gauges_(gauges),
      alive_(std::make_shared<bool>(true)) {}

ConnectionPool::~ConnectionPool() {
  *alive_ = false;
  if (gauges_.idle != nullptr) gauges_.idle->Dec(static_cast<double>(idle_.size()));
}

void ConnectionPool::EvictExpired(std::chrono::steady_clock::time_point now) noexcept {
  if (now < next_expiry_) return;
  std::size_t kept = 0;
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto& c : idle_) {
    if (c->expires_ <= now) continue;  // closed by its destructor below
    next = std::min(next, c->expires_);
    idle_[kept++] = std::move(c);
  }
  const std::size_t evicted = idle_.size() - kept;
  idle_.resize(kept);
  next_expiry_ = next;
  if (evicted != 0 && gauges_.idle != nullptr) gauges_.idle->Dec(static_cast<double>(evicted));
}

namespace {

// True when an idle connection shows no sign of having been closed by its upstream: the
// socket has nothing to read and no error. One non-blocking peek (a syscall, ~1 us) per
// reuse; it finds what a write would not: a write on a connection whose FIN arrived
// succeeds, and the request would be lost with the connection. Bytes an upstream sent
// unasked mean it is out of step (or answering a request we never sent): unusable too.
bool StillOpen(tcp::socket& socket) noexcept {
  char byte;
  for (;;) {
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

}  // namespace

asio::awaitable<std::unique_ptr<ClientConnection>> ConnectionPool::Acquire() {
  EvictExpired(std::chrono::steady_clock::now());
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (gauges_.idle != nullptr) gauges_.idle->Dec();
    if (!StillOpen(c->socket_)) continue;  // closed by its destructor; try the next one
    if (gauges_.active != nullptr) gauges_.active->Inc();
    ++c->uses_;
    co_return c;
  }
  co_return co_await Connect();
}

asio::awaitable<std::unique_ptr<ClientConnection>> ConnectionPool::Connect() {
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  if (endpoints_.empty()) {
    tcp::resolver resolver(context_);
    auto [ec, results] =
        co_await resolver.async_resolve(address_.host, std::to_string(address_.port), kTuple);
    if (ec) throw boost::system::system_error(ec, "resolving " + address_.host);
    for (const auto& r : results) endpoints_.push_back(r.endpoint());
  }
  auto c = std::make_unique<ClientConnection>(tcp::socket(context_));
  c->SetDeadline(options_.connect_timeout);
  auto [ec, endpoint] = co_await asio::async_connect(c->socket_, endpoints_, kTuple);
  (void)endpoint;
  if (ec) {
    // The next attempt resolves again: the name may point elsewhere now.
    endpoints_.clear();
    if (c->expired()) ec = asio::error::timed_out;
    throw boost::system::system_error(ec, "connecting to " + address_.authority);
  }
  c->deadline_->Clear();
  error_code ignored;
  c->socket_.set_option(tcp::no_delay(true), ignored);
  c->uses_ = 1;
  if (gauges_.active != nullptr) gauges_.active->Inc();
  co_return c;
}

void ConnectionPool::Release(std::unique_ptr<ClientConnection> c,
                             const bhttp::fields& response) noexcept {
  if (!c) return;
  if (gauges_.active != nullptr) gauges_.active->Dec();
  const auto lifetime = IdleLifetime(response, options_.idle_timeout);
  if (idle_.size() >= options_.max_idle || !c->socket_.is_open() || c->buffer_.size() != 0 ||
      lifetime.count() <= 0) {
    return;  // closed by the destructor
  }
  c->deadline_->Clear();
  c->expires_ = std::chrono::steady_clock::now() + lifetime;
  try {
    idle_.push_back(std::move(c));
  } catch (...) {
    return;
  }
  next_expiry_ = std::min(next_expiry_, idle_.back()->expires_);
  if (gauges_.idle != nullptr) gauges_.idle->Inc();
}

void ConnectionPool::Discard(std::unique_ptr<ClientConnection> c) noexcept {
  if (c && gauges_.active != nullptr) gauges_.active->Dec();
}

// ---------------------------------------------------------------------------- upstream

Upstream::Upstream(Runtime& runtime, UpstreamAddress address, PoolOptions options,
                   tel::Registry& registry)
    : address_(std::move(address)) {
  auto& family = registry.GaugeFamily(
      "http_client_open_connections",
      "Connections to upstreams held by the client pools, by state (active or idle).",
      {"http_connection_state", "server_address"});
  PoolGauges gauges{&family.WithLabels({"idle", address_.authority}),
                    &family.WithLabels({"active", address_.authority})};
  for (std::size_t i = 0; i < runtime.size(); ++i) {
    pools_.push_back(
        std::make_unique<ConnectionPool>(runtime.context(i), address_, options, gauges));
  }
}

Upstream::~Upstream() = default;

// ---------------------------------------------------------------------------- telemetry

ClientInstruments::ClientInstruments(tel::Registry& registry)
    : duration(registry.HistogramFamily(
          "http_client_request_duration_seconds", "Duration of HTTP client requests.",
          {"http_request_method", "server_address", "http_response_status_code"})) {}

ClientCall::ClientCall(const tel::Tracer& tracer, ClientInstruments& instruments,
                       const tel::RequestContext& parent, std::string_view method_label,
                       const UpstreamAddress& upstream, std::string_view target)
    : instruments_(instruments),
      method_label_(method_label),
      upstream_(upstream),
      span_(tracer.StartSpan(method_label == "_OTHER" ? std::string_view("HTTP") : method_label,
                             parent.span, tel::SpanKind::kClient)),
      context_(tel::WithSpan(parent, span_)),
      start_(std::chrono::steady_clock::now()) {
  if (span_.IsRecording()) {
    span_.SetAttribute("http.request.method", method_label);
    span_.SetAttribute("server.address", std::string_view(upstream.host));
    span_.SetAttribute("server.port", static_cast<std::int64_t>(upstream.port));
    // url.full without a heap allocation for the usual short URL.
    char stack[256];
    std::string heap;
    std::string_view url;
    const std::size_t size = 7 + upstream.authority.size() + target.size();
    char* out = stack;
    if (size > sizeof stack) {
      heap.resize(size);
      out = heap.data();
    }
    std::memcpy(out, "http://", 7);
    std::memcpy(out + 7, upstream.authority.data(), upstream.authority.size());
    std::memcpy(out + 7 + upstream.authority.size(), target.data(), target.size());
    url = std::string_view(out, size);
    span_.SetAttribute("url.full", url);
  }
}

ClientCall::~ClientCall() {
  if (!finished_) Finish(0, "cancelled");
}

namespace {

// Calls fn(name, value) for each header that carries `context` to the next hop.
template <typename Fn>
void ForEachPropagationField(const tel::RequestContext& context, Fn&& fn) {
  char traceparent[tel::kTraceparentSize];
  tel::FormatTraceparent(context.span, traceparent);
  fn("traceparent", std::string_view(traceparent, sizeof traceparent));
  if (!context.span.trace_state.empty()) fn("tracestate", context.span.trace_state.ToHeader());
  if (!context.baggage.empty()) fn("baggage", context.baggage.ToHeader());
  if (!context.request_id.empty()) fn("X-Request-Id", context.request_id.view());
}

}  // namespace

void ClientCall::Inject(beast::http::fields& fields) const {
  fields.erase("tracestate");
  fields.erase("baggage");
  ForEachPropagationField(context_, [&](std::string_view name, std::string_view value) {
    fields.set(beast::string_view(name.data(), name.size()),
               beast::string_view(value.data(), value.size()));
  });
}

void ClientCall::AppendPropagation(std::string& head) const {
  ForEachPropagationField(context_, [&](std::string_view name, std::string_view value) {
    AppendField(head, name, value);
  });
}

void ClientCall::Finish(unsigned status, std::string_view error_type) noexcept {
  if (finished_) return;
  finished_ = true;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char code[3];
  const std::string_view code_text = StatusLabel(status, code);
  try {
    instruments_.duration.WithLabels({method_label_, upstream_.authority, code_text})
        .Observe(seconds, context_.span);
  } catch (...) {
  }
  if (span_.IsRecording()) {
    if (status != 0)
      span_.SetAttribute("http.response.status_code", static_cast<std::int64_t>(status));
    if (status == 0 || status >= 400) {
      span_.SetStatus(tel::StatusCode::kError);
      span_.SetAttribute("error.type",
                         !error_type.empty() ? error_type : std::string_view(code_text));
    }
  }
  span_.End();
}

// ---------------------------------------------------------------------------- failures

void ThrowUpstreamFailure(ClientCall& call, const error_code& ec, bool timed_out,
                          std::chrono::milliseconds timeout) {
  if (timed_out || ec == asio::error::timed_out) {
    call.Finish(0, "timeout");
    throw HttpError(
        504, "The upstream did not answer within " + std::to_string(timeout.count()) + " ms.")
        .WithErrorType("timeout");
  }
  if (ec == asio::error::connection_refused) {
    call.Finish(0, "connection_refused");
    throw HttpError(502, "The upstream refused the connection.")
        .WithErrorType("connection_refused");
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    call.Finish(0, "invalid_response");
    throw HttpError(502, "The upstream sent an invalid HTTP response.")
        .WithErrorType("invalid_response");
  }
  call.Finish(0, "connection_reset");
  throw HttpError(502, "The upstream closed the connection without a complete response.")
      .WithErrorType("connection_reset");
}

bool IsIdempotent(bhttp::verb v) noexcept {
  switch (v) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::put:
    case bhttp::verb::delete_:
    case bhttp::verb::options:
    case bhttp::verb::trace:
      return true;
    default:
      return false;
  }
}

bool IsStaleConnection(const error_code& ec) noexcept {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == bhttp::error::partial_message;
}

// ---------------------------------------------------------------------------- keep-alive

std::optional<std::chrono::seconds> KeepAliveTimeout(std::string_view value) noexcept {
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string_view param = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    if (!tel::text::EqualsIgnoreCase(tel::text::TrimOws(param.substr(0, eq)), "timeout")) continue;
    std::string_view number = tel::text::TrimOws(param.substr(eq + 1));
    if (number.size() >= 2 && number.front() == '"' && number.back() == '"') {
      number = number.substr(1, number.size() - 2);
    }
    std::uint32_t seconds = 0;
    const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), seconds);
    if (ec == std::errc::result_out_of_range) return std::chrono::seconds(UINT32_MAX);
    if (ec != std::errc() || ptr != number.data() + number.size() || number.empty()) {
      return std::nullopt;
    }
    return std::chrono::seconds(seconds);
  }
  return std::nullopt;
}

std::chrono::milliseconds IdleLifetime(const bhttp::fields& response,
                                       std::chrono::milliseconds idle_timeout) noexcept {
  const auto field = response.find(bhttp::field::keep_alive);
  if (field == response.end()) return idle_timeout;
  const auto timeout = KeepAliveTimeout({field->value().data(), field->value().size()});
  if (!timeout) return idle_timeout;
  // The upstream's clock starts when it finished writing the response, ours a little
  // later, and a request needs time to reach it: N exactly would race its close.
  const std::chrono::milliseconds announced = *timeout;
  const auto margin = std::min<std::chrono::milliseconds>(announced / 2, std::chrono::seconds(1));
  return std::min(idle_timeout, announced - margin);
}

// ---------------------------------------------------------------------------- client

Client::Client(Upstream& upstream, tel::Tracer tracer, ClientInstruments& instruments,
               std::chrono::milliseconds timeout, std::uint64_t max_response_bytes) noexcept
    : upstream_(upstream),
      tracer_(std::move(tracer)),
      instruments_(instruments),
      timeout_(timeout),
      max_response_bytes_(max_response_bytes) {}

asio::awaitable<Client::Response> Client::Send(std::size_t worker,
                                               const tel::RequestContext& context,
                                               Request request) {
  ConnectionPool& pool = upstream_.pool(worker);
  const std::string target(request.target());
  ClientCall call(tracer_, instruments_, context, MethodLabel(request.method()),
                  upstream_.address(), target);
  call.Inject(request);
  request.version(11);
  if (request.find(bhttp::field::host) == request.end()) {
    request.set(bhttp::field::host, upstream_.address().authority);
  }
  request.prepare_payload();

  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<ClientConnection> conn;
    try {
      // (No co_await inside ?: here: g++ 12 mis-handles it.)
      if (attempt == 0) {
        conn = co_await pool.Acquire();
      } else {
        conn = co_await pool.Connect();
      }
    } catch (const boost::system::system_error& e) {
      ThrowUpstreamFailure(call, e.code(), false, timeout_);
    }
    conn->SetDeadline(timeout_);
    SerializeHead(request.base(), conn->head_buffer());
    std::size_t sent = 0;
    error_code ec =
        co_await WriteBuffers(conn->socket(), conn->head_buffer(), request.body(), sent);
    const bool write_failed = static_cast<bool>(ec);
    const bool write_timed_out = conn->expired();
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_response_bytes_);
    if (request.method() == bhttp::verb::head) parser.skip(true);
    // A reused connection that failed before the kernel took a byte of the request: the
    // upstream cannot have seen it, so any method may go again on a new connection.
    if (write_failed && sent == 0 && attempt == 0 && conn->reused() && !write_timed_out &&
        IsStaleConnection(ec)) {
      pool.Discard(std::move(conn));
      continue;
    }
    if (write_failed) {
      // The upstream may have answered before it stopped reading (and that answer is
      // then in the socket's buffer): it is the response, not a failure.
      conn->SetDeadline(std::min<std::chrono::milliseconds>(timeout_, kEarlyResponseWait));
      const error_code early =
          co_await ReadMessage(conn->socket(), conn->buffer(), parser, ReadUntil::kMessage);
      if (!early) {
        Response response = parser.release();
        pool.Discard(std::move(conn));  // the rest of the request is still unsent
        call.Finish(response.result_int());
        co_return response;
      }
    } else {
      ec = co_await ReadMessage(conn->socket(), conn->buffer(), parser, ReadUntil::kMessage);
    }
    if (!ec) {
      Response response = parser.release();
      if (response.keep_alive()) {
        pool.Release(std::move(conn), response);
      } else {
        pool.Discard(std::move(conn));
      }
      call.Finish(response.result_int());
      co_return response;
    }
    const bool timed_out = write_failed ? write_timed_out : conn->expired();
    // Otherwise only an idempotent request is sent again (see IsStaleConnection).
    const bool retry = attempt == 0 && conn->reused() && !timed_out && !parser.got_some() &&
                       IsIdempotent(request.method()) && IsStaleConnection(ec);
    pool.Discard(std::move(conn));
    if (!retry) ThrowUpstreamFailure(call, ec, timed_out, timeout_);
  }
}

}  // namespace vigil::http

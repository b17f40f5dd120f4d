#include "proxy.hpp"

#include "auth.hpp"

#include <vigil/http/read.hpp>
#include <vigil/http/write.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <charconv>

namespace vigil::gateway {

namespace bhttp = boost::beast::http;
namespace tel = vigil::telemetry;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Bodies up to this size are read whole and sent in one write; larger ones stream.
constexpr std::uint64_t kSmallBody = 64 * 1024;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;

// Header names listed in a Connection header (lower-cased), which are hop-by-hop too.
struct ConnectionTokens {
  std::array<std::string_view, 8> names{};
  std::size_t count = 0;
  bool all_unlisted_dropped = true;  // more than 8 tokens: drop every non-standard header

  explicit ConnectionTokens(const bhttp::fields& fields) {
    for (auto it = fields.find(bhttp::field::connection);
         it != fields.end() && it->name() == bhttp::field::connection; ++it) {
      std::string_view v(it->value().data(), it->value().size());
      while (!v.empty()) {
        const auto comma = v.find(',');
        std::string_view token = v.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
        if (!token.empty()) {
          if (count < names.size()) {
            names[count++] = token;
          } else {
            all_unlisted_dropped = false;
          }
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
  }

  bool Names(boost::beast::string_view header) const noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (boost::beast::iequals(header, boost::beast::string_view(names[i].data(), names[i].size()))) {
        return true;
      }
    }
    return false;
  }
};

// Hop-by-hop (RFC 9110 section 7.6.1) and the fields the proxy sets itself.
bool IsHopByHop(bhttp::field f) noexcept {
  switch (f) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::upgrade:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authorization:
    case bhttp::field::content_length:  // framing is decided per hop
      return true;
    default:
      return false;
  }
}

bool SetByProxy(bhttp::field f) noexcept {
  switch (f) {
    case bhttp::field::expect:  // 100-continue is answered by the gateway itself
      return true;
    default:
      return false;
  }
}

bool SetByProxy(boost::beast::string_view name) noexcept {
  return boost::beast::iequals(name, "x-forwarded-for") ||
         boost::beast::iequals(name, "x-forwarded-proto") ||
         boost::beast::iequals(name, "x-request-id") || boost::beast::iequals(name, "traceparent") ||
         boost::beast::iequals(name, "tracestate") || boost::beast::iequals(name, "baggage") ||
         // Only the gateway vouches for a caller: a client's own claim is dropped.
         boost::beast::iequals(name, "x-vigil-identity");
}

// Calls sink(name, value) for each end-to-end field of `from`: not hop-by-hop, not named
// by its Connection header, and for a request not one the proxy sets itself. For a
// response, fields `preset` already holds (X-Request-Id, set by the middleware) keep that
// value and are skipped.
template <bool isRequest, typename Sink>
void ForEachEndToEnd(const bhttp::header<isRequest>& from, const bhttp::fields* preset,
                     Sink&& sink) {
  const ConnectionTokens tokens(from);
  std::array<boost::beast::string_view, 8> taken{};
  std::size_t taken_count = 0;
  if (preset != nullptr) {
    for (const auto& field : *preset) {
      if (taken_count < taken.size()) taken[taken_count++] = field.name_string();
    }
  }
  for (const auto& field : from) {
    const bhttp::field f = field.name();
    if (IsHopByHop(f)) continue;
    if constexpr (isRequest) {
      if (SetByProxy(f) || (f == bhttp::field::unknown && SetByProxy(field.name_string()))) {
        continue;
      }
    }
    bool is_taken = false;
    for (std::size_t i = 0; i < taken_count && !is_taken; ++i) {
      is_taken = boost::beast::iequals(taken[i], field.name_string());
    }
    if (is_taken) continue;
    if (f != bhttp::field::host && tokens.Names(field.name_string())) continue;
    sink(field.name_string(), field.value());
  }
}

// Copies the end-to-end fields of a response into `to`, keeping those `to` already has.
void CopyEndToEnd(const bhttp::response_header<>& from, bhttp::fields& to) {
  ForEachEndToEnd(from, &to, [&](boost::beast::string_view name, boost::beast::string_view value) {
    to.insert(name, value);
  });
}

void AppendDecimal(std::string& out, std::uint64_t n) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

// The upstream's target: a view into the client's target, or `storage` when it must be
// rebuilt: the prefix was the whole path ("/api?x" becomes "/?x"), or the upstream URL
// has a path of its own ("/api/orders/7" to "http://orders/orders" becomes "/orders/7").
std::string_view RewriteTarget(const http::Exchange& ex, const RouteConfig& route,
                               std::string& storage) {
  std::string_view target = ex.target();
  if (route.strip_prefix && route.prefix != "/") target.remove_prefix(route.prefix.size());
  if (route.upstream_path.empty()) {
    if (!target.empty() && target.front() == '/') return target;
    storage.reserve(1 + target.size());
    storage.append("/").append(target);
    return storage;
  }
  storage.reserve(route.upstream_path.size() + target.size());
  storage.append(route.upstream_path);
  if (!target.empty() && target.front() != '/' && target.front() != '?') storage.push_back('/');
  storage.append(target);
  return storage;
}

// Copies the rest of the client's request body to the upstream: as is when its length
// was declared, otherwise in chunks (Beast's chunk encoder), ending with the last chunk.
asio::awaitable<error_code> StreamRequestBody(http::Exchange& ex, http::ClientConnection& conn,
                                              const RouteConfig& route, bool has_length) {
  std::unique_ptr<char[]> chunk(new char[kChunk]);
  for (;;) {
    const std::size_t n = co_await ex.ReadSome(chunk.get(), kChunk);
    conn.SetDeadline(route.timeout);
    error_code ec;
    if (has_length) {
      if (n == 0) co_return error_code{};
      ec = co_await http::WriteBuffers(conn.socket(), {}, std::string_view(chunk.get(), n));
    } else if (n == 0) {
      auto [wec, wn] = co_await asio::async_write(conn.socket(), bhttp::make_chunk_last(), kTuple);
      (void)wn;
      co_return wec;
    } else {
      auto [wec, wn] = co_await asio::async_write(
          conn.socket(), bhttp::make_chunk(asio::const_buffer(chunk.get(), n)), kTuple);
      (void)wn;
      ec = wec;
    }
    if (ec) co_return ec;
  }
}

}  // namespace

Proxy::Proxy(http::Runtime& runtime, const GatewayConfig& config, tel::Telemetry& telemetry,
             http::PoolOptions pool, Authenticator* auth)
    : tracer_(telemetry.tracer()), instruments_(telemetry.metrics()), auth_(auth) {
  for (const RouteConfig& route : config.routes) {
    auto t = std::make_unique<Target>();
    t->config = route;
    t->upstream = std::make_unique<http::Upstream>(runtime, route.upstream, pool, telemetry.metrics());
    targets_.push_back(std::move(t));
  }
}

Proxy::~Proxy() = default;

void Proxy::AddRoutes(http::Routes& routes) {
  for (const auto& t : targets_) {
    const std::string pattern = t->config.prefix == "/" ? "/*" : t->config.prefix + "/*";
    const Target* target = t.get();
    routes.Add("*", pattern,
               [this, target](http::Exchange& ex) { return Forward(ex, *target); },
               {.body = http::BodyMode::kStreamed, .max_body_bytes = t->config.max_body_bytes});
  }
}

asio::awaitable<void> Proxy::Forward(http::Exchange& ex, const Target& target) {
  const RouteConfig& route = target.config;
  http::ConnectionPool& pool = target.upstream->pool(ex.worker());
  const auto& in = ex.request();
  std::string identity;
  if (auth_ != nullptr && !ex.header("authorization").empty()) {
    identity = co_await auth_->Identify(ex);
  }

  // A small body with a known length is read first, so that it goes out in one write
  // and can be replayed on a retry; anything else streams.
  const auto length = ex.content_length();
  const bool has_body = ex.has_body();
  const bool stream_request = has_body && (!length || *length > kSmallBody);
  std::string small_body;
  if (has_body && !stream_request) small_body = co_await ex.ReadAll();

  // The upstream request's head, laid out directly as bytes: the client's end-to-end
  // fields, then those the proxy sets, then the framing.
  std::string rewritten;
  const std::string_view upstream_target = RewriteTarget(ex, route, rewritten);
  http::ClientCall call(tracer_, instruments_, ex.context(), ex.method_label(),
                        target.upstream->address(), upstream_target);
  std::string head;
  head.reserve(512);
  head.append(ex.method()).append(" ").append(upstream_target).append(" HTTP/1.1\r\n");
  ForEachEndToEnd(in, nullptr, [&](boost::beast::string_view name, boost::beast::string_view value) {
    http::AppendField(head, {name.data(), name.size()}, {value.data(), value.size()});
  });
  head.append("X-Forwarded-For: ");
  if (const auto earlier = ex.header("x-forwarded-for"); !earlier.empty()) {
    head.append(earlier).append(", ");
  }
  head.append(ex.peer_address()).append("\r\nX-Forwarded-Proto: http\r\n");
  if (!identity.empty()) http::AppendField(head, service::kIdentityHeader, identity);
  call.AppendPropagation(head);
  if (!stream_request && has_body) {
    head.append("Content-Length: ");
    AppendDecimal(head, small_body.size());
    head.append("\r\n");
  } else if (stream_request && length) {
    head.append("Content-Length: ");
    AppendDecimal(head, *length);
    head.append("\r\n");
  } else if (stream_request) {
    head.append("Transfer-Encoding: chunked\r\n");
  }
  head.append("\r\n");

  std::unique_ptr<http::ClientConnection> conn;
  std::optional<bhttp::response_parser<bhttp::empty_body>> response;
  // The upstream answered before it took the whole request (a 413 for a body over its
  // limit, say): the answer is relayed, then both connections close, since neither
  // stream is at a message boundary.
  bool answered_early = false;
  for (int attempt = 0;; ++attempt) {
    try {
      // (No co_await inside ?: here: g++ 12 mis-handles it.)
      if (attempt == 0) {
        conn = co_await pool.Acquire();
      } else {
        conn = co_await pool.Connect();
      }
    } catch (const boost::system::system_error& e) {
      http::ThrowUpstreamFailure(call, e.code(), false, route.timeout);
    }
    conn->SetDeadline(route.timeout);
    std::size_t sent = 0;
    error_code ec = co_await http::WriteBuffers(conn->socket(), head, small_body, sent);
    // A reused connection that failed before the kernel took a byte of the request: the
    // upstream cannot have seen it, and no byte of a streamed body was read from the
    // client yet, so any request goes again on a new connection (see IsStaleConnection).
    if (ec && sent == 0 && attempt == 0 && conn->reused() && !conn->expired() &&
        http::IsStaleConnection(ec)) {
      pool.Discard(std::move(conn));
      continue;
    }
    if (stream_request && !ec) ec = co_await StreamRequestBody(ex, *conn, route, length.has_value());
    const bool write_failed = static_cast<bool>(ec);
    const bool write_timed_out = conn->expired();
    response.emplace();
    response->header_limit(kUpstreamHeaderLimit);
    response->body_limit(boost::none);
    if (in.method() == bhttp::verb::head) response->skip(true);
    if (write_failed) {
      // An upstream that stops reading (it closed, reset, or stalled) may have answered
      // first, and that answer is then in the socket's buffer ahead of the reset: it is
      // the response, not a failure.
      conn->SetDeadline(
          std::min<std::chrono::milliseconds>(route.timeout, http::kEarlyResponseWait));
      const error_code early = co_await http::ReadMessage(conn->socket(), conn->buffer(), *response,
                                                          http::ReadUntil::kHeader);
      if (!early) {
        answered_early = true;
        break;
      }
    } else {
      ec = co_await http::ReadMessage(conn->socket(), conn->buffer(), *response,
                                      http::ReadUntil::kHeader);
      if (!ec) break;
    }
    // A reused connection the upstream had closed while idle: one retry on a fresh one,
    // when the request can be sent again safely: an idempotent method whose body is
    // still at hand (see IsStaleConnection).
    const bool timed_out = write_failed ? write_timed_out : conn->expired();
    if (attempt == 0 && conn->reused() && !timed_out && !response->got_some() && !stream_request &&
        http::IsIdempotent(in.method()) && http::IsStaleConnection(ec)) {
      pool.Discard(std::move(conn));
      response.reset();
      continue;
    }
    pool.Discard(std::move(conn));
    http::ThrowUpstreamFailure(call, ec, timed_out, route.timeout);
  }
  if (answered_early) ex.CloseAfterResponse();

  // The response: small ones whole (one write to the client), others streamed.
  const unsigned status = response->get().result_int();
  const auto response_length = response->content_length();
  const bool no_body = response->is_done();
  if (no_body || (response_length && *response_length <= kSmallBody)) {
    bhttp::response_parser<bhttp::string_body> whole(std::move(*response));
    if (!no_body) {
      conn->SetDeadline(route.timeout);
      const error_code ec = co_await http::ReadMessage(conn->socket(), conn->buffer(), whole,
                                                       http::ReadUntil::kMessage);
      if (ec) {
        const bool timed_out = conn->expired();
        pool.Discard(std::move(conn));
        http::ThrowUpstreamFailure(call, ec, timed_out, route.timeout);
      }
    }
    const bool reusable = whole.keep_alive();
    auto& msg = whole.get();
    const auto type = msg[bhttp::field::content_type];
    ex.Respond(status, std::move(msg.body()), std::string_view(type.data(), type.size()));
    if (type.empty()) ex.response().erase(bhttp::field::content_type);
    msg.erase(bhttp::field::content_type);
    CopyEndToEnd(msg, ex.response());
    if (in.method() == bhttp::verb::head && msg.has_content_length()) {
      ex.response().set(bhttp::field::content_length, msg[bhttp::field::content_length]);
    }
    if (reusable && !answered_early) {
      pool.Release(std::move(conn), msg);
    } else {
      pool.Discard(std::move(conn));
    }
    call.Finish(status);
    co_return;
  }

  bhttp::response_parser<bhttp::buffer_body> body(std::move(*response));
  http::ResponseHeader out_head;
  out_head.result(status);
  CopyEndToEnd(body.get(), out_head);
  // Decided before the co_await: with this ?: among the co_await's operands, g++ 12's
  // code dereferenced the empty length of a chunked response (Boost's assertion fails in
  // a build with assertions on; ProxyTest.StreamsLargeAndChunkedBodiesBothWays).
  std::optional<std::uint64_t> out_length;
  if (response_length) out_length = *response_length;
  co_await ex.SendHead(out_head, out_length);
  std::unique_ptr<char[]> chunk(new char[kChunk]);
  // Beast reads at most the buffer's free capacity per call: room for a full chunk.
  if (conn->buffer().capacity() - conn->buffer().size() < kChunk) {
    conn->buffer().reserve(conn->buffer().size() + kChunk);
  }
  while (!body.is_done()) {
    body.get().body().data = chunk.get();
    body.get().body().size = kChunk;
    conn->SetDeadline(route.timeout);
    auto [ec, n] = co_await bhttp::async_read_some(conn->socket(), conn->buffer(), body, kTuple);
    (void)n;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      // The head is out: the client sees the connection end before the body does.
      ex.set_error_type(conn->expired() ? "timeout" : "connection_reset");
      pool.Discard(std::move(conn));
      call.Finish(status, "response_truncated");
      ex.CloseAfterResponse();
      co_return;
    }
    const std::size_t got = kChunk - body.get().body().size;
    if (got > 0) co_await ex.SendBody(chunk.get(), got);
  }
  co_await ex.Finish();
  if (body.keep_alive() && !answered_early) {
    pool.Release(std::move(conn), body.get());
  } else {
    pool.Discard(std::move(conn));
  }
  call.Finish(status);
}

}  // namespace vigil::gateway

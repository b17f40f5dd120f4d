#include "proxy.hpp"

#include "auth.hpp"

#include <vigil/http/read.hpp>
#include <vigil/http/write.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

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

// Copies the end-to-end fields of `from`. For a response, fields the middleware already
// set on `to` (X-Request-Id, ...) keep the middleware's value.
template <bool isRequest>
void CopyEndToEnd(const bhttp::header<isRequest>& from, bhttp::fields& to) {
  const ConnectionTokens tokens(from);
  std::array<boost::beast::string_view, 8> preset{};
  std::size_t preset_count = 0;
  if constexpr (!isRequest) {
    for (const auto& field : to) {
      if (preset_count < preset.size()) preset[preset_count++] = field.name_string();
    }
  }
  for (const auto& field : from) {
    const bhttp::field f = field.name();
    if (IsHopByHop(f)) continue;
    if constexpr (isRequest) {
      if (SetByProxy(f) || (f == bhttp::field::unknown && SetByProxy(field.name_string()))) {
        continue;
      }
    } else {
      bool taken = false;
      for (std::size_t i = 0; i < preset_count && !taken; ++i) {
        taken = boost::beast::iequals(preset[i], field.name_string());
      }
      if (taken) continue;
    }
    if (f != bhttp::field::host && tokens.Names(field.name_string())) continue;
    to.insert(field.name_string(), field.value());
  }
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

  // The upstream request's head.
  std::string rewritten;
  const std::string_view upstream_target = RewriteTarget(ex, route, rewritten);
  bhttp::request_header<> head;
  head.method_string(in.method_string());
  head.target(boost::beast::string_view(upstream_target.data(), upstream_target.size()));
  head.version(11);
  CopyEndToEnd(in, head);
  if (const auto earlier = ex.header("x-forwarded-for"); earlier.empty()) {
    head.set("X-Forwarded-For", boost::beast::string_view(ex.peer_address().data(), ex.peer_address().size()));
  } else {
    std::string forwarded_for;
    forwarded_for.reserve(earlier.size() + 2 + ex.peer_address().size());
    forwarded_for.append(earlier).append(", ").append(ex.peer_address());
    head.set("X-Forwarded-For", forwarded_for);
  }
  head.set("X-Forwarded-Proto", "http");
  if (!identity.empty()) head.set(service::kIdentityHeader, identity);

  http::ClientCall call(tracer_, instruments_, ex.context(), ex.method_label(),
                        target.upstream->address(), upstream_target);
  call.Inject(head);

  // A small body with a known length is read first, so that it goes out in one write
  // and can be replayed on a retry; anything else streams.
  const auto length = ex.content_length();
  const bool has_body = ex.has_body();
  const bool stream_request = has_body && (!length || *length > kSmallBody);
  std::string small_body;
  if (has_body && !stream_request) small_body = co_await ex.ReadAll();

  std::unique_ptr<http::ClientConnection> conn;
  std::optional<bhttp::response_parser<bhttp::empty_body>> response;
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
    error_code ec;
    if (!stream_request) {
      if (has_body) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, small_body.size()).ptr;
        head.set(bhttp::field::content_length, boost::beast::string_view(digits, static_cast<std::size_t>(end - digits)));
      }
      ec = co_await http::WriteMessage(conn->socket(), head, small_body, conn->head_buffer());
    } else {
      bhttp::request<bhttp::buffer_body> req(std::move(head));
      if (length) {
        req.content_length(*length);
      } else {
        req.chunked(true);
      }
      bhttp::request_serializer<bhttp::buffer_body> sr(req);
      auto [hec, hn] = co_await bhttp::async_write_header(conn->socket(), sr, kTuple);
      (void)hn;
      ec = hec;
      std::unique_ptr<char[]> chunk(new char[kChunk]);
      while (!ec) {
        const std::size_t n = co_await ex.ReadSome(chunk.get(), kChunk);
        req.body().data = n == 0 ? nullptr : chunk.get();
        req.body().size = n;
        req.body().more = n != 0;
        conn->SetDeadline(route.timeout);
        auto [bec, bn] = co_await bhttp::async_write(conn->socket(), sr, kTuple);
        (void)bn;
        ec = bec == bhttp::error::need_buffer ? error_code{} : bec;
        if (n == 0) break;
      }
    }
    if (!ec) {
      response.emplace();
      response->header_limit(kUpstreamHeaderLimit);
      response->body_limit(boost::none);
      if (in.method() == bhttp::verb::head) response->skip(true);
      ec = co_await http::ReadMessage(conn->socket(), conn->buffer(), *response,
                                      http::ReadUntil::kHeader);
    }
    if (!ec) break;
    // A reused connection the upstream had closed while idle: one retry on a fresh one,
    // when the request can be sent again safely.
    const bool nothing_received = !response || !response->got_some();
    if (attempt == 0 && conn->reused() && !conn->expired() && nothing_received &&
        !stream_request && http::IsIdempotent(in.method()) && http::IsStaleConnection(ec)) {
      pool.Discard(std::move(conn));
      response.reset();
      continue;
    }
    const bool timed_out = conn->expired();
    pool.Discard(std::move(conn));
    http::ThrowUpstreamFailure(call, ec, timed_out, route.timeout);
  }

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
    if (reusable) {
      pool.Release(std::move(conn));
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
  co_await ex.SendHead(out_head, response_length ? std::optional<std::uint64_t>(*response_length)
                                                 : std::nullopt);
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
  if (body.keep_alive()) {
    pool.Release(std::move(conn));
  } else {
    pool.Discard(std::move(conn));
  }
  call.Finish(status);
}

}  // namespace vigil::gateway

// Client::Forward: a proxied request, streamed both ways through the client's send loop.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <charconv>
#include <optional>
#include <vigil/http/client.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/telemetry/text.hpp>

#include "client_call.hpp"
#include "pool.hpp"
#include "read.hpp"
#include "send.hpp"
#include "write.hpp"

namespace vigil::http {

namespace bhttp = boost::beast::http;
using boost::system::error_code;
using internal::Answer;
using internal::ClientCall;
using internal::ClientConnection;
using internal::ConnectionPool;
using internal::Outgoing;
using internal::ReadUntil;

namespace {

// Bodies up to this size are read whole and sent in one write; larger ones stream.
constexpr std::uint64_t kSmallBody = 64 * 1024;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;

// Header names listed in a Connection header (lower-cased), which are hop-by-hop too.
struct ConnectionTokens {
  std::array<std::string_view, 8> names{};
  std::size_t count = 0;
  // More than 8 tokens (no real client sends that many): the names past the 8th are not
  // kept, so every field without a standard name is treated as listed and dropped.
  bool overflow = false;

  explicit ConnectionTokens(const bhttp::fields& fields) {
    for (auto it = fields.find(bhttp::field::connection);
         it != fields.end() && it->name() == bhttp::field::connection; ++it) {
      std::string_view v(it->value().data(), it->value().size());
      while (!v.empty()) {
        const auto comma = v.find(',');
        const std::string_view token = telemetry::text::TrimOws(v.substr(0, comma));
        if (!token.empty()) {
          if (count < names.size()) {
            names[count++] = token;
          } else {
            overflow = true;
          }
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
  }

  bool Names(bhttp::field field, boost::beast::string_view header) const noexcept {
    if (overflow && field == bhttp::field::unknown) return true;
    for (std::size_t i = 0; i < count; ++i) {
      if (boost::beast::iequals(header,
                                boost::beast::string_view(names[i].data(), names[i].size()))) {
        return true;
      }
    }
    return false;
  }
};

// Hop-by-hop (RFC 9110 section 7.6.1), and the framing, which is decided per hop.
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
    case bhttp::field::content_length:
      return true;
    default:
      return false;
  }
}

// The request fields the forward sets itself: Expect (100-continue is answered by the
// server, which reads the body) and those of the CLIENT span (ClientCall).
bool SetByForward(const bhttp::fields::value_type& field) noexcept {
  if (field.name() == bhttp::field::expect) return true;
  if (field.name() != bhttp::field::unknown) return false;
  const auto name = field.name_string();
  return boost::beast::iequals(name, "x-request-id") ||
         boost::beast::iequals(name, "traceparent") || boost::beast::iequals(name, "tracestate") ||
         boost::beast::iequals(name, "baggage");
}

// Calls sink(name, value) for each end-to-end field of `from`: not hop-by-hop, not named
// by its Connection header (Host always goes on), and not one `skip(field)` is true for.
template <bool isRequest, typename Skip, typename Sink>
void ForEachEndToEnd(const bhttp::header<isRequest>& from, Skip&& skip, Sink&& sink) {
  const ConnectionTokens tokens(from);
  for (const auto& field : from) {
    const bhttp::field f = field.name();
    if (IsHopByHop(f) || skip(field)) continue;
    if (f != bhttp::field::host && tokens.Names(f, field.name_string())) continue;
    sink(field.name_string(), field.value());
  }
}

// Copies the end-to-end fields of a response into `to` (the exchange's response, or the
// head a streamed answer starts with), except those the exchange already `held` (set by
// the proxy's middleware: X-Request-Id, ...), which keep the proxy's value.
void CopyEndToEnd(const bhttp::response_header<>& from, bhttp::fields& to, bhttp::fields& held) {
  // The service's own rate-limit fields say more than the proxy's (its 429 names the
  // policy that refused): they replace those the proxy's middleware set
  // (docs/conventions.md, "HTTP").
  if (from.find("RateLimit") != from.end() || from.find("RateLimit-Policy") != from.end()) {
    held.erase("RateLimit");
    held.erase("RateLimit-Policy");
  }
  // Vary lists what the answer depends on: the proxy's reasons (Origin) and the service's
  // (Accept-Encoding) together.
  const auto upstream_vary = from.find(bhttp::field::vary);
  const auto held_vary = held.find(bhttp::field::vary);
  if (upstream_vary != from.end() && held_vary != held.end()) {
    const std::string both =
        std::string(held_vary->value()) + ", " + std::string(upstream_vary->value());
    held.set(bhttp::field::vary, both);
  }
  // Any other field the exchange already holds (X-Request-Id, ...) is the proxy's alone.
  std::array<boost::beast::string_view, 32> taken{};
  std::size_t taken_count = 0;
  for (const auto& field : held) {
    if (taken_count < taken.size()) taken[taken_count++] = field.name_string();
  }
  ForEachEndToEnd(
      from,
      [&](const bhttp::fields::value_type& field) {
        for (std::size_t i = 0; i < taken_count; ++i) {
          if (boost::beast::iequals(taken[i], field.name_string())) return true;
        }
        return false;
      },
      [&](boost::beast::string_view name, boost::beast::string_view value) {
        to.insert(name, value);
      });
}

void AppendDecimal(std::string& out, std::uint64_t n) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

// The upstream request of a forward: its head laid out from the inbound one, and the
// parser that reads the response's head (the body is relayed after).
class Forwarded final : public Outgoing {
 public:
  // `small_body`: what goes with the head; `streamed`: whether the rest of the body is
  // read from `ex` after it; `content_length`: the body's length, when known (none: no
  // body, or a chunked one).
  Forwarded(Exchange& ex, std::string_view target, const ForwardPolicy& policy,
            const ClientCall& call, std::string_view small_body, bool streamed,
            std::optional<std::uint64_t> content_length) noexcept
      : Outgoing(ex.request().method(), small_body, streamed ? &ex : nullptr,
                 content_length.has_value()),
        ex_(ex),
        target_(target),
        policy_(policy),
        call_(call),
        content_length_(content_length) {}

  // The client's end-to-end fields, then the policy's, then the CLIENT span's, then the
  // framing.
  void LayOutHead(std::string& out) const override {
    out.clear();
    out.append(ex_.method()).append(" ").append(target_).append(" HTTP/1.1\r\n");
    ForEachEndToEnd(
        ex_.request(),
        [&](const bhttp::fields::value_type& field) {
          const auto name = field.name_string();
          return SetByForward(field) || policy_.Drops({name.data(), name.size()});
        },
        [&](boost::beast::string_view name, boost::beast::string_view value) {
          internal::AppendField(out, {name.data(), name.size()}, {value.data(), value.size()});
        });
    ForwardFields added(out);
    policy_.AddFields(added);
    call_.AppendPropagation(out);
    if (content_length_) {
      out.append("Content-Length: ");
      AppendDecimal(out, *content_length_);
      out.append("\r\n");
    } else if (stream != nullptr) {
      out.append("Transfer-Encoding: chunked\r\n");
    }
    out.append("\r\n");
  }

  bhttp::basic_parser<false>& NewParser() override {
    parser.emplace();
    parser->header_limit(kUpstreamHeaderLimit);
    parser->body_limit(boost::none);
    return *parser;
  }

  std::optional<bhttp::response_parser<bhttp::empty_body>> parser;

 private:
  Exchange& ex_;
  std::string_view target_;
  const ForwardPolicy& policy_;
  const ClientCall& call_;
  std::optional<std::uint64_t> content_length_;
};

}  // namespace

asio::awaitable<void> Client::Forward(Exchange& ex, std::string_view target,
                                      const ForwardPolicy& policy) {
  ConnectionPool& pool = upstream_.pool(ex.worker());
  const auto& in = ex.request();

  // A small body with a known length is read first, so that it goes out in one write
  // and can be replayed on a retry; anything else streams.
  const auto length = ex.content_length();
  const bool has_body = ex.has_body();
  const bool stream_request = has_body && (!length || *length > kSmallBody);
  std::string small_body;
  if (has_body && !stream_request) small_body = co_await ex.ReadAll();
  std::optional<std::uint64_t> content_length;
  if (stream_request) {
    content_length = length;
  } else if (has_body) {
    content_length = small_body.size();
  }

  ClientCall call(tracer_, instruments_, ex.context(), ex.method_label(), upstream_.address(),
                  target);
  Forwarded request(ex, target, policy, call, small_body, stream_request, content_length);
  Answer answer = co_await internal::SendRequest(pool, call, timeout_, request, ReadUntil::kHeader);
  std::unique_ptr<ClientConnection> conn = std::move(answer.connection);
  bhttp::response_parser<bhttp::empty_body>& response = *request.parser;
  // An early answer is relayed, then both connections close: neither stream is at a
  // message boundary.
  if (answer.early) ex.CloseAfterResponse();

  // The response: small ones whole (one write to the client), others streamed.
  const unsigned status = response.get().result_int();
  const auto response_length = response.content_length();
  const bool no_body = response.is_done();
  if (no_body || (response_length && *response_length <= kSmallBody)) {
    bhttp::response_parser<bhttp::string_body> whole(std::move(response));
    if (!no_body) {
      conn->SetDeadline(timeout_);
      const error_code ec = co_await internal::ReadMessage(conn->socket(), conn->buffer(), whole,
                                                           ReadUntil::kMessage);
      if (ec) {
        const bool timed_out = conn->expired();
        pool.Discard(std::move(conn));
        internal::ThrowUpstreamFailure(call, ec, timed_out, timeout_);
      }
    }
    const bool reusable = whole.keep_alive();
    auto& msg = whole.get();
    const auto type = msg[bhttp::field::content_type];
    ex.Respond(status, std::move(msg.body()), std::string_view(type.data(), type.size()));
    if (type.empty()) ex.response().erase(bhttp::field::content_type);
    msg.erase(bhttp::field::content_type);
    CopyEndToEnd(msg, ex.response(), ex.response());
    if (in.method() == bhttp::verb::head && msg.has_content_length()) {
      ex.response().set(bhttp::field::content_length, msg[bhttp::field::content_length]);
    }
    if (reusable && !answer.early) {
      pool.Release(std::move(conn), msg);
    } else {
      pool.Discard(std::move(conn));
    }
    call.Finish(status);
    co_return;
  }

  bhttp::response_parser<bhttp::buffer_body> body(std::move(response));
  ResponseHeader out_head;
  out_head.result(status);
  CopyEndToEnd(body.get(), out_head, ex.response());
  // Decided before the co_await: with this ?: among the co_await's operands, g++ 12's
  // code dereferenced the empty length of a chunked response (Boost's assertion fails in
  // a build with assertions on; ProxyTest.StreamsLargeAndChunkedBodiesBothWays).
  std::optional<std::uint64_t> out_length;
  if (response_length) out_length = *response_length;
  try {
    co_await ex.SendHead(out_head, out_length);
    std::unique_ptr<char[]> chunk(new char[kChunk]);
    // Beast reads at most the buffer's free capacity per call: room for a full chunk.
    if (conn->buffer().capacity() - conn->buffer().size() < kChunk) {
      conn->buffer().reserve(conn->buffer().size() + kChunk);
    }
    while (!body.is_done()) {
      body.get().body().data = chunk.get();
      body.get().body().size = kChunk;
      conn->SetDeadline(timeout_);
      auto [ec, n] = co_await bhttp::async_read_some(conn->socket(), conn->buffer(), body,
                                                     asio::as_tuple(asio::use_awaitable));
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
  } catch (...) {
    pool.Discard(std::move(conn));  // the client's side failed (it went away, say)
    throw;
  }
  if (body.keep_alive() && !answer.early) {
    pool.Release(std::move(conn), body.get());
  } else {
    pool.Discard(std::move(conn));
  }
  call.Finish(status);
}

}  // namespace vigil::http

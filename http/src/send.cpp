#include "send.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <vigil/http/exchange.hpp>

#include "write.hpp"

namespace vigil::http::internal {

namespace bhttp = boost::beast::http;
using boost::system::error_code;

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

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// Copies the rest of the inbound request's body to the upstream: as is when its length
// was declared, otherwise in chunks (Beast's chunk encoder), ending with the last chunk.
asio::awaitable<error_code> StreamBody(Exchange& from, ClientConnection& conn,
                                       std::chrono::milliseconds timeout, bool has_length) {
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  std::unique_ptr<char[]> chunk(new char[kChunk]);
  for (;;) {
    const std::size_t n = co_await from.ReadSome(chunk.get(), kChunk);
    conn.SetDeadline(timeout);
    error_code ec;
    if (has_length) {
      if (n == 0) co_return error_code{};
      ec = co_await WriteBuffers(conn.socket(), {}, std::string_view(chunk.get(), n));
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

asio::awaitable<Answer> SendRequest(ConnectionPool& pool, ClientCall& call,
                                    std::chrono::milliseconds timeout, Outgoing& request,
                                    ReadUntil until) {
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
      ThrowUpstreamFailure(call, e.code(), false, timeout);
    }
    conn->SetDeadline(timeout);
    request.LayOutHead(conn->head_buffer());
    std::size_t sent = 0;
    error_code ec = co_await WriteBuffers(conn->socket(), conn->head_buffer(), request.body, sent);
    // A reused connection that failed before the kernel took a byte of the request: the
    // upstream cannot have seen it, and no byte of a streamed body was read yet, so any
    // method may go again on a new connection.
    if (ec && sent == 0 && attempt == 0 && conn->reused() && !conn->expired() &&
        IsStaleConnection(ec)) {
      pool.Discard(std::move(conn));
      continue;
    }
    if (!ec && request.stream != nullptr) {
      try {
        ec = co_await StreamBody(*request.stream, *conn, timeout, request.stream_has_length);
      } catch (...) {
        pool.Discard(std::move(conn));  // the inbound body failed (413, 408, 400)
        throw;
      }
    }
    const bool write_failed = static_cast<bool>(ec);
    const bool write_timed_out = conn->expired();
    auto& parser = request.NewParser();
    if (request.method == bhttp::verb::head) parser.skip(true);
    if (write_failed) {
      // The upstream may have answered before it stopped reading (it closed, reset, or
      // stalled), and that answer is then in the socket's buffer ahead of the reset: it
      // is the response, not a failure.
      conn->SetDeadline(std::min<std::chrono::milliseconds>(timeout, kEarlyResponseWait));
      const error_code early = co_await ReadMessage(conn->socket(), conn->buffer(), parser, until);
      if (!early) co_return Answer{std::move(conn), true};
    } else {
      ec = co_await ReadMessage(conn->socket(), conn->buffer(), parser, until);
      if (!ec) co_return Answer{std::move(conn), false};
    }
    const bool timed_out = write_failed ? write_timed_out : conn->expired();
    // Otherwise only an idempotent request whose body is still at hand goes again (see
    // IsStaleConnection).
    const bool retry = attempt == 0 && conn->reused() && !timed_out && !parser.got_some() &&
                       request.stream == nullptr && IsIdempotent(request.method) &&
                       IsStaleConnection(ec);
    pool.Discard(std::move(conn));
    if (!retry) ThrowUpstreamFailure(call, ec, timed_out, timeout);
  }
}

}  // namespace vigil::http::internal

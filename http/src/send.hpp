// The client's send loop: one request to an upstream, from taking a pooled connection to
// the response's head (or whole message), with the one retry that is safe and the early
// answer of an upstream that stopped reading. Client::Send and Client::Forward both go
// through it. Internal to libvigil_http.
//
//   Answer answer = co_await SendRequest(pool, call, timeout, request, ReadUntil::kMessage);
//   // request's parser holds the response; give answer.connection back to the pool
//
// Thread-safety: on the pool's worker thread, as the pool.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "client_call.hpp"
#include "pool.hpp"
#include "read.hpp"

namespace vigil::http {
class Exchange;
}

namespace vigil::http::internal {

// True for the methods a request may be repeated with (RFC 9110 section 9.2.2).
bool IsIdempotent(beast::http::verb method) noexcept;

// True when `ec`, before any response byte, means that a reused connection had been
// closed by the upstream while idle. Sending again on a new connection is then safe for
// an idempotent method, and for any method when nothing of the request had left the
// process (WriteBuffers' `sent` was 0): an upstream cannot act on a request it never got.
// A request that was sent (even in part) and not answered may have been processed before
// the connection died (a crash looks the same), so a POST is never sent again then.
bool IsStaleConnection(const boost::system::error_code& ec) noexcept;

// After writing a request failed, how long to wait for the answer the upstream may have
// sent before it stopped reading (a 413 for a body over its limit, say). Such an answer
// is normally in the socket's buffer already, ahead of the reset that failed the write.
inline constexpr std::chrono::milliseconds kEarlyResponseWait{500};

// One request as SendRequest writes it, and the parser its response is read with.
class Outgoing {
 public:
  Outgoing(beast::http::verb request_method, std::string_view in_memory,
           Exchange* stream_from = nullptr, bool streamed_length = false) noexcept
      : method(request_method),
        body(in_memory),
        stream(stream_from),
        stream_has_length(streamed_length) {}

  beast::http::verb method;
  // Sent with the head in one write, and again on a retry.
  std::string_view body;
  // When set, the rest of the body is then read from this exchange and streamed: as is
  // when its length was declared (the head says Content-Length), else chunked. Such a
  // request is never sent again once its head went out: the body read is gone.
  Exchange* stream;
  bool stream_has_length;

  // Replaces `out` (the connection's head buffer) with the request's start line and
  // fields, framing included, and the empty line. Called once per attempt.
  virtual void LayOutHead(std::string& out) const = 0;
  // A fresh parser for an attempt's response, with the caller's limits (a retry drops
  // the one before). SendRequest sets skip() for a HEAD request itself.
  virtual beast::http::basic_parser<false>& NewParser() = 0;

 protected:
  ~Outgoing() = default;
};

// The connection a response arrived on.
struct Answer {
  std::unique_ptr<ClientConnection> connection;
  // The upstream answered before it took the whole request (a 413 for a body over its
  // limit, say): the connection is not at a message boundary and must not be reused, and
  // neither may the inbound connection a streamed body came from.
  bool early = false;
};

// Sends `request` on a connection of `pool` and reads the response with its NewParser()
// up to `until`, each read and write within `timeout`. A reused connection the upstream
// turns out to have closed is replaced once by a new one: when not a byte of the request
// had left, or, for an idempotent request sent whole from memory, when not a byte of the
// response had arrived (see IsStaleConnection). When writing fails, an answer the
// upstream sent first is the response (Answer::early).
// Throws the HttpError of ThrowUpstreamFailure (502/504, `call` finished), or what
// reading the exchange's body throws (HttpError 413, 408, 400); either way the
// connection was discarded.
asio::awaitable<Answer> SendRequest(ConnectionPool& pool, ClientCall& call,
                                    std::chrono::milliseconds timeout, Outgoing& request,
                                    ReadUntil until);

}  // namespace vigil::http::internal

// The byte stream of one server connection: its TCP socket, or TLS over that socket.
//
// Whether a connection speaks TLS is decided once, when it is accepted (StartTls), and
// each I/O call then takes one of two paths on a pointer test. The plain path is the
// code a connection ran before TLS existed: ReadMessage and WriteMessage below hand the
// socket itself to the tcp::socket versions in read.hpp and write.hpp (no coroutine frame
// of their own), so a plain response still leaves in one non-blocking gathered send.
// Beast's own algorithms (streamed bodies, 100 Continue) see a ConnectionStream as an
// AsyncStream whose read and write forward to the socket or the TLS stream.
//
// Templating Connection on its stream type would avoid even the pointer test, at the
// cost of a Connection per type behind a virtual interface for Exchange, and of every
// line of connection.cpp; a test predicted the same way for every call of a connection
// costs nothing next to the system call it guards.
//
// Thread-safety: as the socket: the connection's coroutine only.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "read.hpp"
#include "tls.hpp"
#include "write.hpp"

namespace vigil::http::internal {

class ConnectionStream {
 public:
  using executor_type = asio::ip::tcp::socket::executor_type;

  explicit ConnectionStream(asio::ip::tcp::socket& socket) noexcept : socket_(socket) {}

  // Puts TLS over the socket with `context` (kept alive as long as the connection),
  // before any byte is read. Call once.
  void StartTls(std::shared_ptr<asio::ssl::context> context);
  // The TLS stream, or null for a plain connection.
  TlsStream* tls() noexcept { return tls_.get(); }
  asio::ip::tcp::socket& socket() noexcept { return socket_; }

  // Sends TLS close_notify without waiting for the client's (RFC 8446 section 6.1): the
  // client can tell the end of the stream from a cut, and the session stays resumable
  // (OpenSSL forgets a session whose connection ended without it). Errors are ignored.
  asio::awaitable<void> SendCloseNotify();

  // The AsyncStream interface.
  executor_type get_executor() noexcept { return socket_.get_executor(); }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            socket_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            socket_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  asio::ip::tcp::socket& socket_;
  std::shared_ptr<asio::ssl::context> context_;
  std::unique_ptr<TlsStream> tls_;
};

// ReadMessage (read.hpp) on a connection's stream.
template <bool isRequest>
asio::awaitable<boost::system::error_code> ReadMessage(
    ConnectionStream& stream, boost::beast::flat_buffer& buffer,
    boost::beast::http::basic_parser<isRequest>& parser, ReadUntil until,
    std::size_t max_head_bytes = 0) {
  if (TlsStream* tls = stream.tls()) {
    return ReadMessage(*tls, buffer, parser, until, max_head_bytes);
  }
  return ReadMessage(stream.socket(), buffer, parser, until, max_head_bytes);
}

// A response over TLS: its head laid out in `scratch` (with `block`'s fields when not
// null), then head and body through the TLS stream (which puts up to 8 KiB of them in
// one record).
asio::awaitable<boost::system::error_code> WriteTlsMessage(
    TlsStream& stream, const boost::beast::http::response_header<>& head, std::string_view body,
    std::string& scratch, const FieldBlock* block);

// WriteMessage (write.hpp) on a connection's stream.
inline asio::awaitable<boost::system::error_code> WriteMessage(
    ConnectionStream& stream, const boost::beast::http::response_header<>& head,
    std::string_view body, std::string& scratch, const FieldBlock* block) {
  if (TlsStream* tls = stream.tls()) return WriteTlsMessage(*tls, head, body, scratch, block);
  return WriteMessage(stream.socket(), head, body, scratch, block);
}

}  // namespace vigil::http::internal

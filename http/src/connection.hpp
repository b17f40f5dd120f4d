// One accepted client connection: the request/response loop of a Server.
//
// Thread-safety: lives on the worker that accepted it; Server::Shutdown reaches it only
// through that worker's io_context.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <optional>
#include <vigil/http/server.hpp>

#include "deadline.hpp"
#include "stream.hpp"

namespace vigil::http {

// One worker's share of a server: the connections it serves. The listening socket and
// the connection cap live on worker 0, which accepts for all of them.
struct Server::Worker {
  explicit Worker(asio::io_context& context, std::size_t worker_index)
      : io(context), acceptor(context), slot_free(context), index(worker_index) {}

  asio::io_context& io;
  asio::ip::tcp::acceptor acceptor;  // worker 0 only
  asio::steady_timer slot_free;      // worker 0 only: waited on while the cap is reached
  std::size_t index;
  std::size_t count = 0;              // connections served by this worker
  Connection* connections = nullptr;  // intrusive list of them
  bool stopping = false;
  std::function<void()> on_empty;  // set by Shutdown: runs when count drops to 0
};

class Connection {
 public:
  Connection(Server& server, Server::Worker& worker, asio::ip::tcp::socket socket,
             asio::cancellation_signal& cancel);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  asio::awaitable<void> Run();

  // Shutdown: an idle connection closes now, a busy one after its response.
  void RequestClose() noexcept;
  // Shutdown deadline: whatever the connection's coroutine awaits (a read, the
  // handler's upstream call, a timer) is cancelled.
  void Abort() noexcept;

  // Exchange's streamed-body and streamed-response operations.
  asio::awaitable<std::size_t> ReadSome(Exchange& ex, char* out, std::size_t size);
  asio::awaitable<std::string> ReadAll(Exchange& ex);
  asio::awaitable<void> SendHead(Exchange& ex, const ResponseHeader& head,
                                 std::optional<std::uint64_t> content_length);
  asio::awaitable<void> SendBody(Exchange& ex, const char* data, std::size_t size);
  asio::awaitable<void> Finish(Exchange& ex);
  std::uint64_t body_limit() const noexcept { return body_limit_; }
  // The request's framing, once its header is read.
  std::optional<std::uint64_t> RequestContentLength() const noexcept;
  bool RequestChunked() const noexcept;

  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  asio::awaitable<bool> Handshake(std::string_view peer_address);
  asio::awaitable<bool> ReadHeader(Exchange& ex, bool first);
  void Route(Exchange& ex, Handler& handler);
  asio::awaitable<void> ReadBufferedBody(Exchange& ex);
  asio::awaitable<void> SendContinueIfExpected(Exchange& ex);
  asio::awaitable<bool> WriteResponse(Exchange& ex);
  asio::awaitable<void> DrainBeforeClose();
  bool KeepAlive(const Exchange& ex) const noexcept;
  void Reject(unsigned status, std::string detail);
  [[noreturn]] void FailBodyRead(Exchange& ex, const boost::system::error_code& ec);

  Server& server_;
  Server::Worker& worker_;
  asio::cancellation_signal& cancel_;
  asio::ip::tcp::socket socket_;
  internal::ConnectionStream stream_;  // socket_, or TLS over it
  internal::Deadline deadline_;
  boost::beast::flat_buffer buffer_;
  std::string head_buffer_;  // a whole response's start line and fields (WriteMessage)
  std::optional<beast::http::request_parser<beast::http::empty_body>> head_parser_;
  std::optional<beast::http::request_parser<beast::http::string_body>> string_parser_;
  std::optional<beast::http::request_parser<beast::http::buffer_body>> stream_parser_;
  std::optional<beast::http::response<beast::http::buffer_body>> stream_response_;
  std::optional<beast::http::response_serializer<beast::http::buffer_body>> serializer_;
  std::uint64_t body_limit_ = 0;
  bool idle_ = true;
  bool close_requested_ = false;
  bool continue_sent_ = false;
  bool request_keep_alive_ = false;
  // The client may still be sending what we will not read (a body refused with 413, a
  // header refused with 431): close without resetting the connection (see Run()).
  bool unread_input_ = false;
  unsigned rejection_status_ = 0;  // a request refused while its header was read
  std::string rejection_detail_;
};

}  // namespace vigil::http

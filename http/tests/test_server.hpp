// Test support: a Server running on its own thread on an ephemeral loopback port, and a
// blocking raw-socket client that sends exact bytes and reads one response.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <poll.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::http::testing {

// Telemetry for a test program: logs discarded, no signal handlers installed.
inline telemetry::TelemetryOptions QuietTelemetry(std::string service = "test") {
  telemetry::TelemetryOptions o;
  o.service.name = std::move(service);
  o.log.file_path = "/dev/null";
  o.log.handle_signals = false;
  return o;
}

// Runs `servers` on a Runtime with `workers` threads until destroyed; Shutdown() can be
// called earlier to test draining.
class RunningServer {
 public:
  RunningServer(Routes routes, Pipeline pipeline, ServerOptions options = {}, std::size_t workers = 1)
      : runtime_(workers) {
    Start(std::move(routes), std::move(pipeline), std::move(options));
  }
  // Listens on `port`, one an earlier RunningServer had (an upstream that restarted).
  RunningServer(std::uint16_t port, Routes routes, Pipeline pipeline, ServerOptions options = {})
      : runtime_(1), fixed_port_(port) {
    Start(std::move(routes), std::move(pipeline), std::move(options));
  }
  // For routes whose handlers need the Runtime (a proxy's pools): `make` builds them and
  // may return an object to keep alive while the server runs (destroyed before the
  // Runtime).
  template <typename Make>
  RunningServer(Make make, Pipeline pipeline, ServerOptions options, std::size_t workers)
      : runtime_(workers) {
    Routes routes;
    keep_alive_ = make(runtime_, routes);
    Start(std::move(routes), std::move(pipeline), std::move(options));
  }
  ~RunningServer() {
    // Connections end (cut if need be) while everything they refer to is alive.
    Shutdown(std::chrono::milliseconds(10)).wait_for(std::chrono::seconds(5));
    runtime_.Stop();
    thread_.join();
  }
  std::uint16_t port() const { return server_->port(); }
  Server& server() { return *server_; }
  Runtime& runtime() { return runtime_; }

  void Start(Routes routes, Pipeline pipeline, ServerOptions options) {
    options.port = fixed_port_;
    server_ = std::make_unique<Server>(runtime_, std::move(options), std::move(routes),
                                       std::move(pipeline));
    server_->Start();
    thread_ = std::thread([this] { runtime_.Run(); });
  }

  // Starts a graceful shutdown; the future is ready when every connection is gone.
  // A second call gives a future that is ready at once.
  std::future<void> Shutdown(std::chrono::milliseconds deadline) {
    auto done = std::make_shared<std::promise<void>>();
    if (shut_down_) {
      done->set_value();
      return done->get_future();
    }
    shut_down_ = true;
    server_->Shutdown(deadline, [done] { done->set_value(); });
    return done->get_future();
  }

 private:
  Runtime runtime_;
  std::shared_ptr<void> keep_alive_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::uint16_t fixed_port_ = 0;
  bool shut_down_ = false;
};

using ClientResponse = boost::beast::http::response<boost::beast::http::string_body>;

// A blocking client connection.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  void Send(std::string_view bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
  // Reads one response; throws boost::system::system_error when the server closed first.
  ClientResponse Read() {
    ClientResponse res;
    boost::beast::http::read(socket_, buffer_, res);
    return res;
  }
  // Reads the response to a HEAD request (a Content-Length but no body).
  ClientResponse ReadHead() {
    boost::beast::http::response_parser<boost::beast::http::string_body> parser;
    parser.skip(true);
    boost::beast::http::read(socket_, buffer_, parser);
    return parser.release();
  }
  ClientResponse RoundTrip(std::string_view bytes) {
    Send(bytes);
    return Read();
  }
  // True when the server closed the connection (EOF) with nothing more to read.
  bool ClosedByServer() {
    if (buffer_.size() != 0) return false;
    char byte;
    boost::system::error_code ec;
    socket_.read_some(boost::asio::buffer(&byte, 1), ec);
    return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }
  // The same, waiting at most `within` for it: false when the connection stays open.
  bool ClosedByServerWithin(std::chrono::milliseconds within) {
    if (buffer_.size() != 0) return false;
    pollfd p{socket_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return false;
    return ClosedByServer();
  }
  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace vigil::http::testing

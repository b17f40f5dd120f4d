// Test support: a Server running on its own thread on an ephemeral loopback port, and a
// blocking raw-socket client that sends exact bytes and reads one response.
//
//   vigil::test_support::RunningServer server(std::move(routes), http::Pipeline{});
//   vigil::test_support::RawClient client(server.port());
//   auto res = client.RoundTrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
//   EXPECT_EQ(res.result_int(), 200u);
//
// Thread-safety: a RunningServer is driven by the test's thread (its Server works on its
// own); a RawClient belongs to one thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vigil/http/server.hpp>

namespace vigil::test_support {

using ClientResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Runs a Server on a Runtime with `workers` threads until destroyed; Shutdown() can be
// called earlier to test draining. Throws what Server::Start throws.
class RunningServer {
 public:
  // With `telemetry`, the server is instrumented with it (Server::Instrument) first.
  RunningServer(http::Routes routes, http::Pipeline pipeline, http::ServerOptions options = {},
                std::size_t workers = 1, telemetry::Telemetry* telemetry = nullptr);
  // Listens on `port`, one an earlier RunningServer had (an upstream that restarted).
  RunningServer(std::uint16_t port, http::Routes routes, http::Pipeline pipeline,
                http::ServerOptions options = {});
  // For routes whose handlers need the Runtime (a proxy's pools): `make(runtime, routes)`
  // adds them (`make(runtime, routes, pipeline)` may also change the pipeline: a
  // ServiceHost builds one) and may return an object to keep alive while the server runs
  // (destroyed before the Runtime).
  template <typename Make>
  RunningServer(Make make, http::Pipeline pipeline, http::ServerOptions options,
                std::size_t workers)
      : runtime_(workers) {
    http::Routes routes;
    if constexpr (std::is_invocable_v<Make&, http::Runtime&, http::Routes&, http::Pipeline&>) {
      keep_alive_ = make(runtime_, routes, pipeline);
    } else {
      keep_alive_ = make(runtime_, routes);
    }
    Start(std::move(routes), std::move(pipeline), std::move(options));
  }
  // Connections end (cut after 10 ms if need be) while everything they use is alive.
  ~RunningServer();
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  std::uint16_t port() const { return server_->port(); }
  http::Server& server() { return *server_; }
  http::Runtime& runtime() { return runtime_; }

  // Starts a graceful shutdown; the future is ready when every connection is gone.
  // A second call gives a future that is ready at once.
  std::future<void> Shutdown(std::chrono::milliseconds deadline);

  // Sends `request` (exact bytes) on a new connection and reads one response. Throws
  // boost::system::system_error when the server closes the connection first.
  ClientResponse RoundTrip(std::string_view request) const;

 private:
  void Start(http::Routes routes, http::Pipeline pipeline, http::ServerOptions options,
             telemetry::Telemetry* telemetry = nullptr);

  http::Runtime runtime_;
  std::shared_ptr<void> keep_alive_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::uint16_t fixed_port_ = 0;
  bool shut_down_ = false;
};

// A blocking client connection to 127.0.0.1. Throws boost::system::system_error when it
// cannot connect.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port);

  // Writes `bytes` as they are.
  void Send(std::string_view bytes);
  // Reads one response; throws boost::system::system_error when the server closed first.
  ClientResponse Read();
  // Reads the response to a HEAD request (a Content-Length but no body).
  ClientResponse ReadHead();
  ClientResponse RoundTrip(std::string_view bytes) {
    Send(bytes);
    return Read();
  }
  // True when the server closed the connection (EOF) with nothing more to read.
  bool ClosedByServer();
  // The same, waiting at most `within` for it: false when the connection stays open.
  bool ClosedByServerWithin(std::chrono::milliseconds within);
  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace vigil::test_support

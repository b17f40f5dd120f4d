// Test support: an HTTP/1.1 server on 127.0.0.1 that records every request and answers
// each with the next canned response (the last one repeating), keeping connections alive:
// the peer of the SDK's exporters (OTLP/HTTP, Sentry envelopes) in unit tests.
//
//   vigil::test_support::CannedServer server({CannedResponse(503, "Retry-After: 0\r\n"),
//                                             CannedResponse(200)});
//   exporter_options.endpoint = server.url("/v1/traces");
//   ...
//   EXPECT_EQ(server.bodies().size(), 2u);
//
// Thread-safety: the accessors may be called from any thread while the server answers.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace vigil::test_support {

// "HTTP/1.1 <status> X", `extra_headers` (each line ending in \r\n), a Content-Length
// and `body`.
std::string CannedResponse(int status, const std::string& extra_headers = "",
                           const std::string& body = "");

// The content of a gzip member. Throws std::runtime_error when `in` is not one.
std::string Gunzip(const std::string& in);

class CannedServer {
 public:
  // Listens at once; throws std::system_error when no port can be bound. `responses`
  // must not be empty.
  explicit CannedServer(std::vector<std::string> responses);
  ~CannedServer();
  CannedServer(const CannedServer&) = delete;
  CannedServer& operator=(const CannedServer&) = delete;

  // "http://127.0.0.1:<port><path>".
  std::string url(std::string_view path) const;
  int port() const noexcept { return port_; }
  // Each request's head (request line and fields, without the blank line) and body.
  std::vector<std::string> heads();
  std::vector<std::string> bodies();
  std::size_t requests();
  // Connections accepted so far.
  int connections() const { return connections_.load(); }

 private:
  void Serve();
  static bool ReadRequest(int c, std::string& buffer, std::string& head, std::string& body);

  std::vector<std::string> responses_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::string> heads_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

// A socket listening on 127.0.0.1 that never accepts: the kernel completes connections
// and takes requests into its buffers, and no answer ever comes (a receiver that hangs).
class SilentListener {
 public:
  // Throws std::system_error when no port can be bound.
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  int port() const noexcept { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace vigil::test_support

// Fuzz support: a Server on a loopback port inside the fuzzer's own process, and one
// client connection's worth of bytes exchanged with it, so that a fuzz target reaches the
// runtime's real reading, routing, middleware and writing for every input.
//
//   LoopbackServer& server = ...;  // a function-local static: started on the first input
//   const LoopbackServer::Answer answer = server.Converse(input);
//   if (!answer.bytes.starts_with("HTTP/1.")) FuzzFailure("not a response", answer.bytes);
//
// Thread-safety: the server works on a thread of its own; Converse() is called from one
// thread (libFuzzer's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/log.hpp>

namespace vigil::http::fuzz {

// Prints `what` and `detail` (escaped, cut at 2 KiB) to stderr and aborts: libFuzzer then
// reports a crash and keeps the input that caused it.
[[noreturn]] void FuzzFailure(std::string_view what, std::string_view detail = {});

// A logger that writes nowhere, for the middleware that log (created on first use).
telemetry::Logger& QuietLog();

// One response as a server framed it, viewing the bytes of an Answer.
struct Reply {
  std::string_view version;  // "HTTP/1.1" or "HTTP/1.0"
  unsigned status = 0;
  std::vector<std::pair<std::string_view, std::string_view>> fields;  // in order
  std::string_view body;
  // The first value of field `name` (case-insensitive), or empty; how many it has.
  std::string_view Field(std::string_view name) const noexcept;
  std::size_t Count(std::string_view name) const noexcept;
};

class LoopbackServer {
 public:
  // Serves `routes` behind `pipeline` on 127.0.0.1 (an ephemeral port) with one worker.
  // Throws what Server::Start throws.
  LoopbackServer(Routes routes, Pipeline pipeline, ServerOptions options);
  // Shuts the server down and joins its thread.
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  struct Answer {
    std::string bytes;   // everything the server sent, in order
    bool reset = false;  // the server reset the connection: `bytes` may lack its end
  };

  // Opens a connection, writes `request` (reading what the server sends meanwhile),
  // closes the sending side, and reads until the server closes. Returns once the server
  // has let the connection go (socket closed, no longer counted), so nothing of one
  // input is alive during the next. Every 1024 calls it also counts the process's open
  // descriptors: a call that leaves one behind is a failure (FuzzFailure). Failures to
  // connect or to read are failures too.
  Answer Converse(std::string_view request);

  std::uint16_t port() const noexcept { return server_->port(); }

 private:
  Runtime runtime_{1};
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::size_t calls_ = 0;
  std::size_t baseline_fds_ = 0;
};

// Splits what a server sent into its responses, checking their framing: a status line
// "HTTP/1.x NNN reason" with a status from 100 to 599; fields "Name: value" whose names
// are tokens and whose values have no control characters; interim responses (1xx) with
// no body; final ones with exactly one Content-Length of digits and that many bytes of
// body (none for 204 and 304), no Transfer-Encoding, and nothing after a response that
// closes the connection. A response to HEAD announces the GET's length and sends no body:
// a head followed directly by the next status line, or by the end, is taken as one.
// What does not hold is a FuzzFailure; after a reset, an unfinished last response is
// left out.
std::vector<Reply> SplitReplies(const LoopbackServer::Answer& answer);

}  // namespace vigil::http::fuzz

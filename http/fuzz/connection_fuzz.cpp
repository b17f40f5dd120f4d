// Fuzzes the server end to end as a client meets it: any bytes, as one connection would
// carry them (request lines, header fields, Content-Length and chunked bodies, Expect,
// several requests pipelined), are written to a Server on loopback in this process and
// read by its connection code (http/src/connection.cpp, read.cpp, request_head.cpp),
// routed (router.cpp) to buffered and streamed handlers behind the request-id, security
// headers and error middleware, and answered (write.cpp). The client then closes its
// sending side and reads until the server closes (loopback.hpp).
//
// Whatever arrives, the server answers with well-framed responses only (SplitReplies),
// each final one with a Date, a valid X-Request-Id and the security headers (the pipeline
// ran, rejections included); no status 5xx: the handlers answer 200 and every other
// status is a refusal of what the client sent; and it lets the connection go once the
// client has closed, keeping no descriptor of it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/http/server.hpp>

#include "loopback.hpp"

namespace {

namespace http = vigil::http;
using http::fuzz::FuzzFailure;

http::Routes MakeRoutes() {
  http::Routes routes;
  const auto ok = [](http::Exchange& ex) -> http::asio::awaitable<void> {
    ex.Respond(200, "ok", "text/plain");
    co_return;
  };
  routes.Add("GET", "/", ok);
  routes.Add("GET", "/items/{id}", ok);
  routes.Add("*", "/api/*", ok);
  // Buffered: the server reads the body before the handler.
  routes.Add("POST", "/items",
             [](http::Exchange& ex) -> http::asio::awaitable<void> {
               ex.Respond(200, std::to_string(ex.body().size()), "text/plain");
               co_return;
             },
             {http::BodyMode::kBuffered, 512});
  // Streamed: the handler reads it piece by piece.
  routes.Add("PUT", "/upload/{name}",
             [](http::Exchange& ex) -> http::asio::awaitable<void> {
               const std::string body = co_await ex.ReadAll();
               ex.Respond(200, std::to_string(body.size()), "text/plain");
             },
             {http::BodyMode::kStreamed, 1024});
  return routes;
}

http::fuzz::LoopbackServer& Server() {
  static http::fuzz::LoopbackServer server(
      MakeRoutes(),
      [] {
        http::Pipeline p;
        p.Add<http::RequestIdMiddleware>();
        p.Add<http::SecurityHeadersMiddleware>(http::SecurityHeadersOptions{});
        p.Add<http::ErrorMiddleware>(http::fuzz::QuietLog());
        return p;
      }(),
      [] {
        // Limits a fuzzer's inputs can reach (431, 413) within its default 4 KiB.
        http::ServerOptions o;
        o.max_header_bytes = 1024;
        o.max_header_fields = 16;
        o.max_body_bytes = 2048;
        return o;
      }());
  return server;
}

bool IsRequestId(std::string_view id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
             std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const http::fuzz::LoopbackServer::Answer answer = Server().Converse(input);
  for (const http::fuzz::Reply& r : http::fuzz::SplitReplies(answer)) {
    if (r.status < 200) {
      if (r.status != 100 || !r.fields.empty()) FuzzFailure("an unexpected 1xx", answer.bytes);
      continue;
    }
    if (r.status >= 500) FuzzFailure("a 5xx for what a client sent", answer.bytes);
    if (r.Count("date") != 1 || r.Count("x-request-id") != 1 ||
        !IsRequestId(r.Field("x-request-id")) || r.Field("x-content-type-options") != "nosniff" ||
        r.Count("content-security-policy") != 1) {
      FuzzFailure("a response the pipeline did not see (Date, X-Request-Id, security headers)",
                  answer.bytes);
    }
  }
  return 0;
}

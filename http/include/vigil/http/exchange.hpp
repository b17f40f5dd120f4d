// One request and its response as they pass through a server: what handlers and
// middleware read and write.
//
// The server builds an Exchange for every request it reads (including those it rejects
// before routing, such as a 431), runs the middleware pipeline and the route's handler
// on it, then writes `response()` unless the handler already streamed its own. Handlers
// answer by filling the response or by throwing HttpError; middleware add headers and
// observe the outcome.
//
//   asio::awaitable<void> GetItem(http::Exchange& ex) {
//     auto id = ex.Param("id");
//     if (id.empty()) throw http::HttpError(400, "id is required");
//     ex.RespondJson(200, R"({"id":")" + std::string(id) + "\"}");
//     co_return;
//   }
//
// Thread-safety: an Exchange belongs to the connection that read it and is used on that
// connection's worker thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vigil/http/router.hpp>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

using RequestHeader = beast::http::request_header<>;
using Response = beast::http::response<beast::http::string_body>;
using ResponseHeader = beast::http::response_header<>;

// An error a handler raises to answer with `status` (a problem+json body whose detail is
// `detail`). Use it for client errors (4xx) and for known failures of dependencies
// (502/503/504); anything else a handler throws becomes a 500 whose body says nothing
// about the cause.
class HttpError : public std::runtime_error {
 public:
  HttpError(unsigned status, std::string detail, std::string type = "about:blank")
      : std::runtime_error(detail), status_(status), type_(std::move(type)) {}
  unsigned status() const noexcept { return status_; }
  const std::string& type() const noexcept { return type_; }
  // A short, bounded cause for spans and logs ("timeout", "connection_refused"); the
  // error middleware records it as the request's error.type. A string literal.
  std::string_view error_type() const noexcept { return error_type_; }
  HttpError& WithErrorType(std::string_view error_type) noexcept {
    error_type_ = error_type;
    return *this;
  }

 private:
  unsigned status_;
  std::string type_;
  std::string_view error_type_;
};

// The method as telemetry labels it: one of the methods OpenTelemetry names, or "_OTHER"
// (so that label values stay bounded).
std::string_view MethodLabel(beast::http::verb method) noexcept;

// `status` as the three digits of a metric label, written into `out`; empty for 0 (no
// response).
std::string_view StatusLabel(unsigned status, char (&out)[3]) noexcept;

// The standard reason phrase for `status` ("Not Found"), or "Error"/"Status" when unknown.
std::string_view ReasonPhrase(unsigned status) noexcept;

// An RFC 9457 problem document: type, title (the reason phrase), status, detail, and the
// request's request_id and trace_id so that an operator can find the logs and the trace.
std::string ProblemJson(unsigned status, std::string_view detail, std::string_view type,
                        const telemetry::RequestContext& context);

class Connection;
class FieldBlock;

class Exchange {
 public:
  // ---- The request ------------------------------------------------------------------
  const RequestHeader& request() const noexcept { return *request_; }
  // The method as sent ("GET", "BREW"...).
  std::string_view method() const noexcept;
  // The method for telemetry: a standard method, or "_OTHER" (bounded label values).
  std::string_view method_label() const noexcept { return method_label_; }
  // The request target in origin form ("/path?query"): an absolute-form target
  // ("http://host/path?query") gives its path and query. Before routing (a request
  // refused while its head was read), the target as sent.
  std::string_view target() const noexcept;
  // The target's path (before '?') and query (after it, without '?').
  std::string_view path() const noexcept { return path_; }
  std::string_view query() const noexcept { return query_; }
  // The first value of header `name` (case-insensitive), or empty when absent. A field
  // may arrive as several field lines: see header_list() and header_count().
  std::string_view header(std::string_view name) const noexcept;
  // How many field lines named `name` (case-insensitive) the request has; for a field
  // that must not repeat (traceparent), more than one makes its value invalid.
  std::size_t header_count(std::string_view name) const noexcept;
  // The value of a list field (RFC 9110 §5.6.1: tracestate, baggage, Accept...) from all
  // its field lines, combined as RFC 9110 §5.3 says: in order, joined by ", ". With one
  // line, the usual case, the result views the request itself and `storage` is not
  // touched (no allocation); with several they are joined into `storage`, which the
  // result then views. Empty when absent.
  std::string_view header_list(std::string_view name, std::string& storage) const;
  // The matched route template, e.g. "/items/{id}"; empty when no route matched.
  std::string_view route() const noexcept { return match_.route; }
  // A `{name}` captured by the route, still percent-encoded; empty when absent.
  std::string_view Param(std::string_view name) const noexcept { return match_.Param(name); }
  // The request body of a buffered route (the server read it before the handler ran).
  const std::string& body() const noexcept { return body_; }
  const asio::ip::tcp::endpoint& peer() const noexcept { return peer_; }
  // The client's address as text ("127.0.0.1"), formatted once per connection.
  std::string_view peer_address() const noexcept { return peer_address_; }
  // True when the request arrived over TLS (its scheme is https).
  bool secure() const noexcept { return secure_; }
  // Which worker thread runs this exchange: 0 .. Runtime::size()-1.
  std::size_t worker() const noexcept { return worker_; }
  std::chrono::steady_clock::time_point start() const noexcept { return start_; }

  // ---- Telemetry ----------------------------------------------------------------------
  // The request's context: its span (once the tracing middleware ran), request id and
  // baggage. Pass it to log calls, metrics and outgoing requests.
  telemetry::RequestContext& context() noexcept { return context_; }
  const telemetry::RequestContext& context() const noexcept { return context_; }
  // The server span (non-recording until the tracing middleware starts one).
  telemetry::Span& span() noexcept { return span_; }
  // What a handler adds to this request's error report, if one is made (tags, contexts,
  // breadcrumbs, the user): created on first use, so a request that never asks pays
  // nothing. The error middleware reads it.
  //   ex.error_scope().SetTag("order.id", id);
  telemetry::ErrorScope& error_scope();
  // The scope when a handler made one; null otherwise.
  const telemetry::ErrorScope* existing_error_scope() const noexcept { return error_scope_.get(); }

  // ---- The response -------------------------------------------------------------------
  Response& response() noexcept { return response_; }
  // True once a handler or middleware answered (set a status).
  bool responded() const noexcept { return responded_; }
  // The status answered (0 before anyone answered).
  unsigned status() const noexcept { return responded_ ? response_.result_int() : 0; }
  void Respond(unsigned status, std::string body, std::string_view content_type);
  void RespondJson(unsigned status, std::string body) {
    Respond(status, std::move(body), "application/json");
  }
  // A problem+json answer carrying this request's request_id and trace_id.
  void RespondProblem(unsigned status, std::string_view detail,
                      std::string_view type = "about:blank");
  // Fields written with the response after its own (the security headers middleware
  // sets them; a handler may choose others for its route): see field_block.hpp. The
  // block must outlive the exchange; null: none.
  void set_field_block(const FieldBlock* block) noexcept { field_block_ = block; }
  const FieldBlock* field_block() const noexcept { return field_block_; }
  // Asks the server to close the connection after this response.
  void CloseAfterResponse() noexcept { close_ = true; }
  bool closing() const noexcept { return close_; }
  // Ends the connection without any response (what a crashing upstream does; for test
  // services and for cutting off a client that broke the protocol).
  void AbortConnection() noexcept { abort_ = close_ = true; }
  bool aborted() const noexcept { return abort_; }

  // ---- Errors -------------------------------------------------------------------------
  // What the handler threw, if anything. The error middleware turns it into a response.
  std::exception_ptr error() const noexcept { return error_; }
  void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }
  // A short, bounded description of what went wrong ("timeout", "connection_refused",
  // an exception type...), for the error.type attribute of spans and logs.
  std::string_view error_type() const noexcept { return error_type_; }
  void set_error_type(std::string_view type) noexcept { error_type_ = type; }
  // The rate-limit policy that refused this request, for its access-log line; empty when
  // none did. The view must stay valid for the exchange's life.
  std::string_view limited_by() const noexcept { return limited_by_; }
  void set_limited_by(std::string_view policy) noexcept { limited_by_ = policy; }

  // ---- Streamed routes (BodyMode::kStreamed) -----------------------------------------
  // The declared Content-Length, if any.
  std::optional<std::uint64_t> content_length() const noexcept;
  // True when the request has a body (a Content-Length above 0 or chunked framing).
  bool has_body() const noexcept;
  // Reads the next piece of the request body into `out`; returns 0 at its end. Answers
  // `100 Continue` first when the client asked for it. Throws HttpError with 413 (the
  // route's body limit), 408 (no progress within the body timeout) or 400 (malformed
  // framing or the client went away).
  asio::awaitable<std::size_t> ReadSome(char* out, std::size_t size);
  // Reads the rest of the body into a string (at most the route's limit).
  asio::awaitable<std::string> ReadAll();
  // Streams a response: head (status and fields; the fields already set on response(),
  // such as X-Request-Id, are added), then body pieces, then Finish(). With a
  // `content_length` the body is sent as is, without one it is chunked. After
  // SendHead the server writes nothing itself; if the handler fails midway the
  // connection is closed (the client sees a truncated body, never a second head).
  asio::awaitable<void> SendHead(const ResponseHeader& head,
                                 std::optional<std::uint64_t> content_length);
  asio::awaitable<void> SendBody(const char* data, std::size_t size);
  asio::awaitable<void> Finish();
  bool head_sent() const noexcept { return head_sent_; }
  std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }

 private:
  friend class Connection;
  explicit Exchange(Connection& connection) noexcept : connection_(&connection) {}

  Connection* connection_;
  const RequestHeader* request_ = nullptr;
  std::string_view method_label_ = "_OTHER";
  std::string_view target_;
  std::string target_storage_;  // the origin form, when it is not a part of the target
  std::string_view path_;
  std::string_view query_;
  Router::Match match_;
  std::string body_;
  asio::ip::tcp::endpoint peer_;
  std::string_view peer_address_;
  bool secure_ = false;
  std::size_t worker_ = 0;
  std::chrono::steady_clock::time_point start_;
  telemetry::RequestContext context_;
  telemetry::Span span_;
  std::unique_ptr<telemetry::ErrorScope> error_scope_;
  Response response_;
  const FieldBlock* field_block_ = nullptr;
  bool responded_ = false;
  bool close_ = false;
  bool abort_ = false;
  bool head_sent_ = false;
  bool finished_ = false;
  std::uint64_t bytes_sent_ = 0;
  std::exception_ptr error_;
  std::string_view error_type_;
  std::string_view limited_by_;
};

}  // namespace vigil::http

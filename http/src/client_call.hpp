// One outgoing request's telemetry: a CLIENT span (child of the caller's span), the W3C
// trace context and X-Request-Id for the request's head, and on Finish() the span's
// outcome and `http_client_request_duration_seconds`. Internal to libvigil_http: every
// request http::Client sends or forwards carries one.
//
//   ClientCall call(tracer, instruments, ex.context(), "GET", upstream.address(), "/x");
//   call.Inject(request);
//   ...
//   call.Finish(response.result_int());
//
// Thread-safety: a ClientCall belongs to one request, on one worker thread.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vigil/http/client.hpp>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::http::internal {

// Writes what url.full records of a request `target` to `out` (as much as fits) and
// returns its whole size: the path as it is, each query value replaced by "REDACTED"
// (a client may put a token or a password there; the names stay), a query part without
// '=' replaced whole.
std::size_t RedactTarget(std::string_view target, std::span<char> out) noexcept;

// Create it just before sending; call Finish() once the outcome is known (the
// destructor finishes a call that was not, as an error).
class ClientCall {
 public:
  ClientCall(const telemetry::Tracer& tracer, ClientInstruments& instruments,
             const telemetry::RequestContext& parent, std::string_view method_label,
             const UpstreamAddress& upstream, std::string_view target);
  ~ClientCall();
  ClientCall(const ClientCall&) = delete;
  ClientCall& operator=(const ClientCall&) = delete;

  // Sets traceparent (this call's span), tracestate, baggage and X-Request-Id.
  void Inject(beast::http::fields& fields) const;
  // The same headers appended as "name: value\r\n" lines to a head laid out by hand
  // (which must not hold them already).
  void AppendPropagation(std::string& head) const;
  const telemetry::RequestContext& context() const noexcept { return context_; }
  telemetry::Span& span() noexcept { return span_; }
  // `status` 0: no response arrived; `error_type` then says why ("timeout", ...).
  void Finish(unsigned status, std::string_view error_type = {}) noexcept;

 private:
  ClientInstruments& instruments_;
  std::string_view method_label_;
  const UpstreamAddress& upstream_;
  telemetry::Span span_;
  telemetry::RequestContext context_;
  std::chrono::steady_clock::time_point start_;
  bool finished_ = false;
};

// Throws the HttpError that answers a failed upstream call, after finishing `call` with
// the same cause: 504 "timeout" when `timed_out` (or `ec` is a timeout), else 502
// "connection_refused", "invalid_response" or "connection_reset". `timeout` is named in
// the detail; the upstream's address never is.
[[noreturn]] void ThrowUpstreamFailure(ClientCall& call, const boost::system::error_code& ec,
                                       bool timed_out, std::chrono::milliseconds timeout);

}  // namespace vigil::http::internal

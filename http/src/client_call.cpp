#include "client_call.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cstring>
#include <vigil/http/exchange.hpp>

#include "write.hpp"

namespace vigil::http::internal {

namespace tel = vigil::telemetry;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

// ---------------------------------------------------------------------------- telemetry

std::size_t RedactTarget(std::string_view target, std::span<char> out) noexcept {
  std::size_t size = 0;
  auto emit = [&](std::string_view piece) {
    if (size < out.size()) {
      std::memcpy(out.data() + size, piece.data(), std::min(piece.size(), out.size() - size));
    }
    size += piece.size();
  };
  constexpr std::string_view kRedacted = "REDACTED";
  const std::size_t q = target.find('?');
  emit(target.substr(0, q));
  if (q == std::string_view::npos) return size;
  emit("?");
  std::string_view query = target.substr(q + 1);
  for (;;) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      if (!part.empty()) emit(kRedacted);
    } else {
      emit(part.substr(0, eq + 1));
      if (eq + 1 < part.size()) emit(kRedacted);
    }
    if (amp == std::string_view::npos) return size;
    emit("&");
    query.remove_prefix(amp + 1);
  }
}

ClientCall::ClientCall(const tel::Tracer& tracer, ClientInstruments& instruments,
                       const tel::RequestContext& parent, std::string_view method_label,
                       const UpstreamAddress& upstream, std::string_view target)
    : instruments_(instruments),
      method_label_(method_label),
      upstream_(upstream),
      span_(tracer.StartSpan(method_label == "_OTHER" ? std::string_view("HTTP") : method_label,
                             parent.span, tel::SpanKind::kClient)),
      context_(tel::WithSpan(parent, span_)),
      start_(std::chrono::steady_clock::now()) {
  if (span_.IsRecording()) {
    span_.SetAttribute("http.request.method", method_label);
    span_.SetAttribute("server.address", std::string_view(upstream.host));
    span_.SetAttribute("server.port", static_cast<std::int64_t>(upstream.port));
    // url.full without a heap allocation for the usual short URL, its query values redacted.
    char stack[256];
    std::string heap;
    std::string_view url;
    const std::size_t prefix = 7 + upstream.authority.size();
    const std::size_t size = prefix + RedactTarget(target, {});
    char* out = stack;
    if (size > sizeof stack) {
      heap.resize(size);
      out = heap.data();
    }
    std::memcpy(out, "http://", 7);
    std::memcpy(out + 7, upstream.authority.data(), upstream.authority.size());
    RedactTarget(target, std::span<char>(out + prefix, size - prefix));
    url = std::string_view(out, size);
    span_.SetAttribute("url.full", url);
  }
}

ClientCall::~ClientCall() {
  if (!finished_) Finish(0, "cancelled");
}

namespace {

// Calls fn(name, value) for each header that carries `context` to the next hop.
template <typename Fn>
void ForEachPropagationField(const tel::RequestContext& context, Fn&& fn) {
  char traceparent[tel::kTraceparentSize];
  tel::FormatTraceparent(context.span, traceparent);
  fn("traceparent", std::string_view(traceparent, sizeof traceparent));
  if (!context.span.trace_state.empty()) fn("tracestate", context.span.trace_state.ToHeader());
  if (!context.baggage.empty()) fn("baggage", context.baggage.ToHeader());
  if (!context.request_id.empty()) fn("X-Request-Id", context.request_id.view());
}

}  // namespace

void ClientCall::Inject(beast::http::fields& fields) const {
  fields.erase("tracestate");
  fields.erase("baggage");
  ForEachPropagationField(context_, [&](std::string_view name, std::string_view value) {
    fields.set(beast::string_view(name.data(), name.size()),
               beast::string_view(value.data(), value.size()));
  });
}

void ClientCall::AppendPropagation(std::string& head) const {
  ForEachPropagationField(context_, [&](std::string_view name, std::string_view value) {
    AppendField(head, name, value);
  });
}

void ClientCall::Finish(unsigned status, std::string_view error_type) noexcept {
  if (finished_) return;
  finished_ = true;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char code[3];
  const std::string_view code_text = StatusLabel(status, code);
  try {
    instruments_.duration.WithLabels({method_label_, upstream_.authority, code_text})
        .Observe(seconds, context_.span);
  } catch (...) {
  }
  if (span_.IsRecording()) {
    if (status != 0)
      span_.SetAttribute("http.response.status_code", static_cast<std::int64_t>(status));
    if (status == 0 || status >= 400) {
      span_.SetStatus(tel::StatusCode::kError);
      span_.SetAttribute("error.type",
                         !error_type.empty() ? error_type : std::string_view(code_text));
    }
  }
  span_.End();
}

// ---------------------------------------------------------------------------- failures

void ThrowUpstreamFailure(ClientCall& call, const error_code& ec, bool timed_out,
                          std::chrono::milliseconds timeout) {
  if (timed_out || ec == asio::error::timed_out) {
    call.Finish(0, "timeout");
    throw HttpError(
        504, "The upstream did not answer within " + std::to_string(timeout.count()) + " ms.")
        .WithErrorType("timeout");
  }
  if (ec == asio::error::connection_refused) {
    call.Finish(0, "connection_refused");
    throw HttpError(502, "The upstream refused the connection.")
        .WithErrorType("connection_refused");
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    call.Finish(0, "invalid_response");
    throw HttpError(502, "The upstream sent an invalid HTTP response.")
        .WithErrorType("invalid_response");
  }
  call.Finish(0, "connection_reset");
  throw HttpError(502, "The upstream closed the connection without a complete response.")
      .WithErrorType("connection_reset");
}

}  // namespace vigil::http::internal

#include <algorithm>
#include <cstring>
#include <vigil/http/middleware/tracing.hpp>

namespace vigil::http {

namespace tel = vigil::telemetry;

namespace {

// "{METHOD} {route}", or "{METHOD}" without a route; OpenTelemetry names a span of an
// unknown method "HTTP". Built on the stack: the tracer copies the name.
std::string_view SpanName(const Exchange& ex, char (&buffer)[256]) noexcept {
  std::string_view method = ex.method_label();
  if (method == "_OTHER") method = "HTTP";
  std::size_t n = std::min(method.size(), sizeof buffer);
  std::memcpy(buffer, method.data(), n);
  const std::string_view route = ex.route();
  if (!route.empty() && n + 1 + route.size() <= sizeof buffer) {
    buffer[n++] = ' ';
    std::memcpy(buffer + n, route.data(), route.size());
    n += route.size();
  }
  return {buffer, n};
}

}  // namespace

void TracingMiddleware::Before(Exchange& ex) {
  char name_buffer[256];
  const std::string_view name = SpanName(ex, name_buffer);
  // traceparent holds one value and its grammar has no room for the commas that would
  // join several lines: several lines leave the parent unknown, which like any invalid
  // traceparent starts a new trace (and leaves tracestate unread, as the spec asks).
  // tracestate and baggage are lists, and their lines together make one list. Each string
  // below stays empty, without allocating, unless its field arrived as several lines.
  std::string joined_state;
  std::string joined_baggage;
  const std::string_view traceparent =
      ex.header_count("traceparent") > 1 ? std::string_view() : ex.header("traceparent");
  auto parent = tel::ExtractTraceContext(traceparent, ex.header_list("tracestate", joined_state));
  ex.span() = parent ? tracer_.StartSpan(name, *parent.value, tel::SpanKind::kServer)
                     : tracer_.StartRootSpan(name, tel::SpanKind::kServer);
  if (const auto baggage = ex.header_list("baggage", joined_baggage); !baggage.empty()) {
    if (auto parsed = tel::ParseBaggage(baggage)) ex.context().baggage = std::move(*parsed.value);
  }
  ex.context() = tel::WithSpan(std::move(ex.context()), ex.span());

  tel::Span& span = ex.span();
  if (!span.IsRecording()) return;
  span.SetAttribute("http.request.method", ex.method_label());
  if (ex.method_label() == "_OTHER") span.SetAttribute("http.request.method_original", ex.method());
  if (!ex.route().empty()) span.SetAttribute("http.route", ex.route());
  span.SetAttribute("url.path", ex.path());
  span.SetAttribute("url.scheme", ex.secure() ? "https" : "http");
  span.SetAttribute("network.protocol.version", ex.request().version() == 10 ? "1.0" : "1.1");
  span.SetAttribute("client.address", ex.peer_address());
  if (const auto agent = ex.header("user-agent"); !agent.empty()) {
    span.SetAttribute("user_agent.original", agent);
  }
}

void TracingMiddleware::After(Exchange& ex) noexcept {
  tel::Span& span = ex.span();
  if (span.IsRecording()) {
    const unsigned status = ex.status();
    span.SetAttribute("http.response.status_code", static_cast<std::int64_t>(status));
    if (status >= 500) {
      span.SetStatus(tel::StatusCode::kError);
      span.SetAttribute("error.type", ex.error_type().empty() ? std::string_view(ReasonPhrase(status))
                                                              : ex.error_type());
    }
  }
  span.End();
}

}  // namespace vigil::http

// vigil-demo: a small HTTP program instrumented with libvigil_telemetry.
//
// It shows what the SDK gives a service: W3C trace context taken from each request,
// one JSON access-log line per request carrying trace_id/span_id/request_id, RED
// metrics with exemplars, process metrics and build info on a separate admin port.
// The HTTP handling here is deliberately minimal (one thread, Boost.Beast); the
// platform's services use libvigil_http instead.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/telemetry/trace.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace tel = vigil::telemetry;
using asio::ip::tcp;

namespace {

constexpr const char* kUsage = R"(Usage: vigil-demo [--port N] [--admin-port N] [--help]

A minimal HTTP program instrumented with the Vigil telemetry SDK.

  GET /work[?ms=N]   answers {"trace_id","span_id","request_id"} after N ms (default 0,
                     at most 10000); honours traceparent, tracestate and X-Request-Id
  admin port:        GET /metrics (Prometheus text, or OpenMetrics with exemplars when
                     the Accept header asks), /healthz, /readyz

Options (each also read from the environment):
  --port N           public port (VIGIL_PORT, default 8080)
  --admin-port N     admin port (VIGIL_ADMIN_PORT, default 9080)

Logging, tracing and service identity follow VIGIL_LOG_LEVEL, VIGIL_LOG_FILE, VIGIL_ENV,
OTEL_SERVICE_NAME, VIGIL_TRACES_FILE, OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_*
variables; see docs/operations.md.
)";

struct Instruments {
  tel::Family<tel::Histogram>* duration;
  tel::Family<tel::Gauge>* active;
};

struct App {
  tel::Telemetry& telemetry;
  Instruments metrics;
  bool ready = true;
};

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

std::string_view Header(const Request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string_view{}
                         : std::string_view(it->value().data(), it->value().size());
}

// Milliseconds requested by ?ms=N, clamped; 0 when absent or malformed.
int RequestedDelayMs(std::string_view target) {
  auto q = target.find("ms=");
  if (q == std::string_view::npos) return 0;
  int ms = 0;
  auto digits = target.substr(q + 3);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
  (void)ptr;
  if (ec != std::errc() || ms < 0) return 0;
  return ms > 10000 ? 10000 : ms;
}

Response MakeResponse(const Request& req, http::status status, std::string_view content_type,
                      std::string body) {
  Response res{status, req.version()};
  res.set(http::field::server, "vigil-demo");
  res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

asio::awaitable<Response> HandlePublic(App& app, const Request& req) {
  const auto start = std::chrono::steady_clock::now();
  const std::string_view method = req.method() == http::verb::get ? "GET" : "_OTHER";
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  const std::string_view route = path == "/work" ? "/work" : "unmatched";

  // A server span whose parent is the caller's context (a new trace when it has none or
  // sends an invalid one); the request context carries the span's ids from here on.
  auto parent = tel::ExtractTraceContext(Header(req, "traceparent"), Header(req, "tracestate"));
  tel::Span span = app.telemetry.tracer().StartSpan(std::string(method) + " " + std::string(route),
                                                    parent ? *parent.value : tel::SpanContext{},
                                                    tel::SpanKind::kServer);
  tel::RequestContext base;
  auto rid = tel::RequestId::FromString(Header(req, "x-request-id"));
  base.request_id = rid ? *rid : tel::RequestId::Generate();
  const tel::RequestContext ctx = tel::WithSpan(std::move(base), span);
  span.SetAttribute("http.request.method", method);
  span.SetAttribute("http.route", route);
  span.SetAttribute("url.path", path);

  auto& active = app.metrics.active->WithLabels({method});
  active.Inc();

  Response res;
  if (route == "unmatched") {
    res = MakeResponse(req, http::status::not_found, "application/problem+json",
                       R"({"type":"about:blank","title":"Not Found","status":404,"request_id":")" +
                           std::string(ctx.request_id.view()) + R"(","trace_id":")" +
                           ctx.span.trace_id.ToHex() + "\"}");
  } else if (req.method() != http::verb::get) {
    res = MakeResponse(req, http::status::method_not_allowed, "application/problem+json",
                       R"({"type":"about:blank","title":"Method Not Allowed","status":405})");
    res.set(http::field::allow, "GET");
  } else {
    if (int ms = RequestedDelayMs(req.target()); ms > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
      co_await timer.async_wait(asio::use_awaitable);
    }
    res = MakeResponse(req, http::status::ok, "application/json",
                       R"({"trace_id":")" + ctx.span.trace_id.ToHex() + R"(","span_id":")" +
                           ctx.span.span_id.ToHex() + R"(","request_id":")" +
                           std::string(ctx.request_id.view()) + "\"}");
  }
  res.set("X-Request-Id", ctx.request_id.view());
  res.set("traceparent", tel::FormatTraceparent(ctx.span));

  const auto elapsed = std::chrono::steady_clock::now() - start;
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const unsigned status = res.result_int();
  char status_text[4];
  std::to_chars(status_text, status_text + 3, status);
  app.metrics.duration->WithLabels({method, route, std::string_view(status_text, 3)})
      .Observe(seconds, ctx.span);
  active.Dec();
  span.SetAttribute("http.response.status_code", static_cast<std::int64_t>(status));
  if (status >= 500) span.SetStatus(tel::StatusCode::kError);
  span.End();

  const tel::LogLevel level = status >= 500   ? tel::LogLevel::kError
                              : status >= 400 ? tel::LogLevel::kWarn
                                              : tel::LogLevel::kInfo;
  app.telemetry.log().Log(level, ctx, "request completed",
                          {{"http.request.method", method},
                           {"http.route", route},
                           {"url.path", path},
                           {"http.response.status_code", status},
                           {"duration_ms", elapsed}});
  co_return res;
}

Response HandleAdmin(App& app, const Request& req) {
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  if (path == "/metrics") {
    auto negotiated = tel::NegotiateExposition(Header(req, "accept"));
    return MakeResponse(req, http::status::ok, negotiated.content_type,
                        app.telemetry.metrics().Expose(negotiated.format));
  }
  if (path == "/healthz") return MakeResponse(req, http::status::ok, "text/plain", "ok\n");
  if (path == "/readyz") {
    return app.ready ? MakeResponse(req, http::status::ok, "text/plain", "ready\n")
                     : MakeResponse(req, http::status::service_unavailable, "text/plain",
                                    "shutting down\n");
  }
  return MakeResponse(req, http::status::not_found, "text/plain", "not found\n");
}

asio::awaitable<void> Session(App& app, tcp::socket socket, bool admin) {
  beast::flat_buffer buffer;
  try {
    for (;;) {
      Request req;
      co_await http::async_read(socket, buffer, req, asio::use_awaitable);
      // No co_await inside a conditional expression: g++ 12 mis-handles the temporaries.
      Response res;
      if (admin) {
        res = HandleAdmin(app, req);
      } else {
        res = co_await HandlePublic(app, req);
      }
      const bool keep_alive = res.keep_alive();
      co_await http::async_write(socket, res, asio::use_awaitable);
      if (!keep_alive) break;
    }
  } catch (const boost::system::system_error& e) {
    if (e.code() != http::error::end_of_stream && e.code() != asio::error::connection_reset &&
        e.code() != asio::error::operation_aborted) {
      app.telemetry.log().Debug("connection closed", {{"error.type", e.code().message()}});
    }
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> Listen(App& app, tcp::acceptor& acceptor, bool admin) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), Session(app, std::move(socket), admin), asio::detached);
  }
}

std::uint16_t ParsePort(const char* flag, std::string_view text) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value == 0 || value > 65535) {
    throw tel::ConfigError(
        flag, "\"" + std::string(text) + "\" is not valid: expected a port from 1 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto port = static_cast<std::uint16_t>(tel::env::Integer("VIGIL_PORT", 8080, 1, 65535));
    auto admin_port =
        static_cast<std::uint16_t>(tel::env::Integer("VIGIL_ADMIN_PORT", 9080, 1, 65535));
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if ((arg == "--port" || arg == "--admin-port") && i + 1 < argc) {
        (arg == "--port" ? port : admin_port) = ParsePort(argv[i], argv[i + 1]);
        ++i;
        continue;
      }
      std::fprintf(stderr, "vigil-demo: unknown or incomplete argument '%s'\n\n%s", argv[i],
                   kUsage);
      return 2;
    }

    tel::ServiceInfo service;
    service.name = "vigil-demo";
    service.version = tel::BuildVersion();
    tel::Telemetry telemetry(tel::OptionsFromEnv(service));
    auto& registry = telemetry.metrics();
    App app{telemetry,
            {&registry.HistogramFamily(
                 "http_server_request_duration_seconds", "Duration of HTTP server requests.",
                 {"http_request_method", "http_route", "http_response_status_code"}),
             &registry.GaugeFamily("http_server_active_requests",
                                   "Number of HTTP server requests in flight.",
                                   {"http_request_method"})}};

    asio::io_context io(1);
    auto loopback = asio::ip::make_address("127.0.0.1");
    tcp::acceptor public_acceptor(io, {loopback, port});
    tcp::acceptor admin_acceptor(io, {loopback, admin_port});
    asio::co_spawn(io, Listen(app, public_acceptor, false), asio::detached);
    asio::co_spawn(io, Listen(app, admin_acceptor, true), asio::detached);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int signo) {
      app.ready = false;
      telemetry.log().Info("shutting down", {{"signal", signo}});
      public_acceptor.close();
      admin_acceptor.close();
      io.stop();
    });

    telemetry.log().Info("listening", {{"port", port}, {"admin_port", admin_port}});
    io.run();
    telemetry.Shutdown();
    return 0;
  } catch (const tel::ConfigError& e) {
    std::fprintf(stderr, "vigil-demo: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigil-demo: %s\n", e.what());
    return 1;
  }
}

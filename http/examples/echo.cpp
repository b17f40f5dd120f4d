// vigil-echo: a small upstream on libvigil_http for testing and benchmarking proxies.
//
// It answers what a proxy's tests need to see from the far side: the request as it
// arrived (method, target, headers, body size and hash, with the body streamed and
// never held whole), slow answers, chosen statuses, connections closed without an
// answer, and large streamed responses.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vigil/http/middleware/access_log.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/metrics.hpp>
#include <vigil/http/middleware/request_id.hpp>
#include <vigil/http/middleware/tracing.hpp>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace http = vigil::http;
namespace tel = vigil::telemetry;
namespace asio = boost::asio;

namespace {

constexpr const char* kUsage = R"(Usage: vigil-echo [--help]

A test upstream built on libvigil_http.

  ANY /echo/...        200 {"method","target","headers","body_bytes","body_fnv1a"}
  GET /slow?ms=N       waits N ms (at most 60000), then 200 {"slept_ms":N}
  GET /status/{code}   answers that status (problem+json from 400 up)
  GET /close           closes the connection without answering
  GET /bytes/{n}       n bytes ('a' + i % 26), chunked and streamed
  POST /crash?how=segv|abort  crashes the process on purpose, while serving the
                       request (a fault or abort()): to prove crash reports

Environment: VIGIL_PORT (default 8090), VIGIL_ADMIN_PORT (default 9090), VIGIL_BIND,
VIGIL_WORKERS, VIGIL_HTTP_*, VIGIL_ACCESS_LOG and the telemetry variables listed in
docs/operations.md.
)";

std::uint64_t ParseCount(std::string_view text, std::uint64_t max) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value > max) {
    throw http::HttpError(400, "expected a whole number up to " + std::to_string(max));
  }
  return value;
}

std::string_view QueryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=') {
      return pair.substr(key.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

asio::awaitable<void> Echo(http::Exchange& ex) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a, 64-bit
  std::uint64_t size = 0;
  char chunk[64 * 1024];
  for (;;) {
    const std::size_t n = co_await ex.ReadSome(chunk, sizeof chunk);
    if (n == 0) break;
    for (std::size_t i = 0; i < n; ++i) {
      hash = (hash ^ static_cast<unsigned char>(chunk[i])) * 0x100000001b3ULL;
    }
    size += n;
  }
  boost::json::object headers;
  for (const auto& field : ex.request()) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[name] = std::string_view(field.value().data(), field.value().size());
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  boost::json::object body{{"method", ex.method()},
                           {"target", ex.target()},
                           {"headers", std::move(headers)},
                           {"body_bytes", size},
                           {"body_fnv1a", hex}};
  ex.RespondJson(200, boost::json::serialize(body));
}

asio::awaitable<void> Slow(http::Exchange& ex) {
  const auto ms = ParseCount(QueryValue(ex.query(), "ms"), 60000);
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await timer.async_wait(asio::use_awaitable);
  ex.RespondJson(200, "{\"slept_ms\":" + std::to_string(ms) + "}");
}

asio::awaitable<void> Status(http::Exchange& ex) {
  const auto code = static_cast<unsigned>(ParseCount(ex.Param("code"), 599));
  if (code < 200) throw http::HttpError(400, "status must be from 200 to 599");
  if (code >= 400) {
    ex.RespondProblem(code, "answered as asked");
  } else {
    ex.RespondJson(code, "{\"status\":" + std::to_string(code) + "}");
  }
  co_return;
}

asio::awaitable<void> Close(http::Exchange& ex) {
  ex.AbortConnection();
  co_return;
}

asio::awaitable<void> Bytes(http::Exchange& ex) {
  const std::uint64_t total = ParseCount(ex.Param("n"), std::uint64_t{1} << 40);
  http::ResponseHeader head;
  head.result(200);
  head.set(boost::beast::http::field::content_type, "application/octet-stream");
  co_await ex.SendHead(head, std::nullopt);
  char chunk[64 * 1024];
  std::uint64_t sent = 0;
  while (sent < total) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof chunk, total - sent));
    for (std::size_t i = 0; i < n; ++i) chunk[i] = static_cast<char>('a' + (sent + i) % 26);
    co_await ex.SendBody(chunk, n);
    sent += n;
  }
  co_await ex.Finish();
}

// Not inlined, so that a crash report names it.
[[gnu::noinline]] void CrashOnPurpose(std::string_view how) {
  if (how == "abort") std::abort();
  // An address the compiler cannot see, below any mapping: a real fault.
  volatile std::uintptr_t where = 16;
  *reinterpret_cast<volatile int*>(where) = 1;
}

asio::awaitable<void> Crash(http::Exchange& ex) {
  const std::string_view how = QueryValue(ex.query(), "how");
  if (how != "segv" && how != "abort") throw http::HttpError(400, "how must be segv or abort");
  CrashOnPurpose(how);
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "vigil-echo: unknown argument '%s'\n\n%s", argv[i], kUsage);
    return 2;
  }
  try {
    tel::ServiceInfo service;
    service.name = "vigil-echo";
    service.version = tel::BuildVersion();
    tel::Telemetry telemetry(tel::OptionsFromEnv(service));
    http::Runtime runtime(http::Runtime::WorkersFromEnv());

    http::Pipeline pipeline;
    pipeline.Add<http::RequestIdMiddleware>();
    pipeline.Add<http::TracingMiddleware>(telemetry.tracer());
    pipeline.Add<http::MetricsMiddleware>(telemetry.metrics());
    if (http::AccessLogMiddleware::EnabledFromEnv()) {
      pipeline.Add<http::AccessLogMiddleware>(telemetry.log());
    }
    pipeline.Add<http::ErrorMiddleware>(telemetry);

    http::Routes routes;
    routes.Add("*", "/echo/*", Echo, {.body = http::BodyMode::kStreamed});
    routes.Add("GET", "/slow", Slow);
    routes.Add("GET", "/status/{code}", Status);
    routes.Add("GET", "/close", Close);
    routes.Add("GET", "/bytes/{n}", Bytes);
    routes.Add("POST", "/crash", Crash);

    http::Server server(runtime, http::ServerOptions::FromEnv(8090), std::move(routes),
                        std::move(pipeline));
    http::Health health;
    http::Server admin(runtime, http::ServerOptions::AdminFromEnv(9090),
                       http::AdminRoutes(telemetry, health), http::Pipeline{});
    return runtime.RunUntilSignal({&server, &admin}, health, telemetry);
  } catch (const tel::ConfigError& e) {
    std::fprintf(stderr, "vigil-echo: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigil-echo: %s\n", e.what());
    return 1;
  }
}

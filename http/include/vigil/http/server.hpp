// The HTTP/1.1 server every Vigil service runs on.
//
// A Runtime owns the worker threads, one io_context each. A Server listens on one port;
// worker 0 accepts for all and hands the connections to the workers in turn, and each
// connection is served as a coroutine on its worker: read a request, route it, run the
// middleware pipeline and the handler, write the response, repeat while the connection
// is kept alive. Framing (RFC 9112: Transfer-Encoding, Content-Length, Host, the target's
// form), limits and timeouts are enforced while reading, each with its status (400, 408,
// 413, 414, 431); HEAD is served by a route's GET handler; every response has a Date.
//
//   http::Runtime runtime(http::Runtime::WorkersFromEnv());
//   http::Routes routes;
//   routes.Add("GET", "/items/{id}", GetItem);
//   http::Server server(runtime, http::ServerOptions::FromEnv(8082), std::move(routes), pipeline);
//   http::Health health;
//   http::Server admin(runtime, http::ServerOptions::AdminFromEnv(9082),
//                      http::AdminRoutes(telemetry, health), http::Pipeline{});
//   return runtime.RunUntilSignal({&server, &admin}, health, telemetry);
//
// With ServerOptions::tls set, a Server speaks HTTPS (TLS 1.2 and 1.3, OpenSSL through
// Asio): every connection starts with a handshake, bounded by the header timeout, and
// then carries the same request loop. RunUntilSignal re-reads the certificate on SIGHUP.
//
//   http::ServerOptions options = http::ServerOptions::FromEnv(8443);  // VIGIL_TLS_*, or:
//   options.tls = {.cert_file = "/etc/vigil/tls.crt", .key_file = "/etc/vigil/tls.key"};
//
// Thread-safety: construct, Add() and Start() on one thread before Run(); Shutdown() may
// be called from any thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>
#include <vigil/http/exchange.hpp>
#include <vigil/http/middleware.hpp>
#include <vigil/http/router.hpp>

namespace vigil::telemetry {
class Telemetry;
}

namespace vigil::http {

using Handler = std::function<asio::awaitable<void>(Exchange&)>;

// How a route receives its request body.
enum class BodyMode {
  kBuffered,  // the server reads the whole body (up to the limit) before the handler
  kStreamed,  // the handler reads it with Exchange::ReadSome (a proxy, an upload)
};

struct RouteOptions {
  BodyMode body = BodyMode::kBuffered;
  // 0: the server's max_body_bytes.
  std::uint64_t max_body_bytes = 0;
};

// The routes of one server: templates (see router.hpp) bound to handlers.
//
// Thread-safety: built at start-up; read-only afterwards.
class Routes {
 public:
  // Throws std::invalid_argument for a malformed or duplicate template.
  Routes& Add(std::string_view method, std::string_view pattern, Handler handler,
              RouteOptions options = {});

  const Router& router() const noexcept { return router_; }
  struct Entry {
    Handler handler;
    RouteOptions options;
    std::string name;  // "GET /items/{id}", as added
  };
  const Entry& entry(std::size_t id) const noexcept { return entries_[id]; }
  // Every route in the order added (what a program's --routes prints).
  std::span<const Entry> entries() const noexcept { return entries_; }

 private:
  Router router_;
  std::vector<Entry> entries_;
};

// TLS for a listener: the certificate chain and key it presents. Both files or neither.
struct TlsOptions {
  std::string cert_file;  // PEM: the server's certificate, then its intermediates
  std::string key_file;   // PEM: the certificate's private key, unencrypted
  // When not 0, a plain-HTTP listener on this port answers every request with 308 to the
  // same target on https:// (RunService starts it; a Server alone ignores this).
  std::uint16_t redirect_port = 0;

  bool enabled() const noexcept { return !cert_file.empty(); }
};

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port (see Server::port())
  // The whole request head: request line and every field line together.
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_header_fields = 100;
  std::uint64_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::size_t max_connections = 10000;
  TlsOptions tls;  // disabled: plain HTTP

  // The public listener's options: VIGIL_BIND, VIGIL_PORT (default `default_port`),
  // VIGIL_HTTP_MAX_HEADER_BYTES, VIGIL_HTTP_MAX_HEADER_FIELDS, VIGIL_HTTP_MAX_BODY_BYTES,
  // VIGIL_HTTP_HEADER_TIMEOUT,
  // VIGIL_HTTP_BODY_TIMEOUT, VIGIL_HTTP_IDLE_TIMEOUT, VIGIL_HTTP_MAX_CONNECTIONS,
  // VIGIL_TLS_CERT_FILE, VIGIL_TLS_KEY_FILE (both or neither; the files are loaded once
  // here to check them) and VIGIL_TLS_REDIRECT_PORT.
  // Throws telemetry::ConfigError naming a malformed variable, or a TLS file that cannot
  // be used (unreadable, not PEM, a key that does not match the certificate).
  static ServerOptions FromEnv(std::uint16_t default_port);
  // The admin listener's: VIGIL_BIND and VIGIL_ADMIN_PORT; fixed small limits.
  static ServerOptions AdminFromEnv(std::uint16_t default_port);
};

class Server;

// Liveness and readiness, as the admin listener reports them. Readiness is false while
// any check fails and from the moment shutdown starts.
//
// Thread-safety: all methods may be called from any thread.
class Health {
 public:
  // A named dependency check, run on each /readyz (keep it cheap and non-blocking).
  void AddCheck(std::string name, std::function<bool()> check);
  void SetShuttingDown() noexcept { shutting_down_.store(true, std::memory_order_relaxed); }
  bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_relaxed); }
  // Empty when ready; otherwise what is not ("shutting down", "database: failing").
  std::string NotReadyReason() const;

 private:
  std::atomic<bool> shutting_down_{false};
  std::vector<std::pair<std::string, std::function<bool()>>> checks_;
};

// Routes answering every request with 308 Permanent Redirect to the same target on
// `https` (https://<Host without its port>:<https.port()><target>; the port is left out
// when it is 443): a plain-HTTP listener beside a TLS one. A request without a usable Host
// gets 400. Request bodies are not read (the connection closes after the answer).
// `https` must outlive the routes.
Routes RedirectToHttps(const Server& https);

// The admin routes: GET /metrics (Prometheus text, or OpenMetrics when Accept asks),
// /healthz (200 while the process serves) and /readyz (200, or 503 with the reason);
// POST /debug/sentry-test (raises and reports a test error: SentryTestHandler in
// middleware/errors.hpp).
Routes AdminRoutes(telemetry::Telemetry& telemetry, const Health& health);

class Runtime {
 public:
  // `workers` threads (at least 1).
  explicit Runtime(std::size_t workers);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // VIGIL_WORKERS (default: the number of cores; 1 to 256).
  static std::size_t WorkersFromEnv();

  std::size_t size() const noexcept { return contexts_.size(); }
  asio::io_context& context(std::size_t worker) noexcept { return *contexts_[worker]; }

  // Runs every worker (worker 0 on the calling thread) until Stop().
  void Run();
  // Makes Run() return once the workers have finished what is queued. Any thread.
  void Stop();

  // Starts `servers`, runs until SIGTERM or SIGINT, then shuts down gracefully:
  // readiness turns false, every server stops accepting, in-flight requests finish
  // within `drain` (VIGIL_SHUTDOWN_TIMEOUT by default), connections still open after it
  // are cut, telemetry is flushed. Returns the process exit code (0). SIGHUP reopens the
  // log file and calls `on_reload` (if any) on worker 0, which must not throw; serving
  // goes on.
  int RunUntilSignal(std::initializer_list<Server*> servers, Health& health,
                     telemetry::Telemetry& telemetry, std::function<void()> on_reload = {});
  static std::chrono::milliseconds DrainTimeoutFromEnv();

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::thread> threads_;
};

// Thread-safety: see the file comment.
class Server {
 public:
  // With options.tls enabled, loads the certificate and key: throws telemetry::ConfigError
  // naming VIGIL_TLS_CERT_FILE or VIGIL_TLS_KEY_FILE and the file when they cannot be used.
  Server(Runtime& runtime, ServerOptions options, Routes routes, Pipeline pipeline);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on every worker. Throws std::system_error whose what() names the
  // address when the port cannot be bound.
  void Start();
  // The bound port (after Start()).
  std::uint16_t port() const noexcept { return port_; }
  const ServerOptions& options() const noexcept { return options_; }
  // True when the server speaks TLS (options().tls enabled).
  bool secure() const noexcept { return tls_ != nullptr; }

  // Where a TLS server reports what happens below HTTP: failed handshakes
  // (vigil_http_tls_handshake_failures_total{reason}, and a debug log line each), the
  // certificate's expiry (vigil_http_tls_certificate_expiry_timestamp_seconds) and reloads
  // (an info line, or a warn line when the running certificate stays). Without TLS it
  // does nothing. Call before Start(); RunUntilSignal does.
  void Instrument(telemetry::Telemetry& telemetry);
  // Reads the certificate and key files again: connections accepted from now on present
  // the new certificate, open ones keep theirs. Files that cannot be used change nothing
  // (a warn line says why) and make it return false. True without TLS. Any thread.
  bool ReloadTls();

  // Stops accepting, closes idle keep-alive connections, lets requests in flight finish
  // (their responses say Connection: close), and cuts what remains after `deadline`.
  // `done` runs (on a worker thread) when no connection is left. Later calls do nothing.
  void Shutdown(std::chrono::milliseconds deadline, std::function<void()> done);

  // Open connections now (all workers). Destroy a Server after its Shutdown() completed
  // (RunUntilSignal does); connections still open then are cut when the Runtime is
  // destroyed, without running the rest of their handlers.
  std::size_t connections() const noexcept;

  // Replaces the routes (a gateway reloading its configuration): requests routed from
  // now on use `routes`; requests already routed finish with the ones they had, which
  // stay alive as long as the Server. Any thread.
  void ReplaceRoutes(Routes routes);
  const Routes& routes() const noexcept { return *routes_.load(std::memory_order_acquire); }

  struct Worker;
  class Tls;

 private:
  friend class Connection;
  asio::awaitable<void> Accept();

  Runtime& runtime_;
  ServerOptions options_;
  std::atomic<const Routes*> routes_;
  std::mutex routes_mu_;
  std::vector<std::unique_ptr<const Routes>> all_routes_;  // every version, oldest first
  Pipeline pipeline_;
  std::unique_ptr<Tls> tls_;  // null: plain HTTP
  std::uint16_t port_ = 0;
  // Shared with the connection coroutines, which may outlive the Server when a Runtime
  // is destroyed with connections still open.
  std::vector<std::shared_ptr<Worker>> workers_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::size_t> connections_{0};
};

}  // namespace vigil::http

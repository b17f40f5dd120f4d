#include <pthread.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cctype>
#include <csignal>
#include <limits>
#include <string>
#include <system_error>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "connection.hpp"
#include "tls.hpp"

namespace vigil::http {

namespace env = telemetry::env;
using asio::ip::tcp;
using boost::system::error_code;

// ---------------------------------------------------------------------------- Routes

Routes& Routes::Add(std::string_view method, std::string_view pattern, Handler handler,
                    RouteOptions options) {
  const std::size_t id = router_.Add(method, pattern);
  if (id != entries_.size()) throw std::logic_error("route ids out of step");
  entries_.push_back(
      Entry{std::move(handler), options, std::string(method) + " " + std::string(pattern)});
  return *this;
}

// ---------------------------------------------------------------------------- options

namespace {

std::string BindFromEnv() {
  std::string bind = env::String("VIGIL_BIND", "127.0.0.1");
  error_code ec;
  asio::ip::make_address(bind, ec);
  if (ec) {
    throw telemetry::ConfigError("VIGIL_BIND",
                                 "\"" + bind + "\" is not valid: expected an IPv4 or IPv6 address");
  }
  return bind;
}

// VIGIL_TLS_CERT_FILE, VIGIL_TLS_KEY_FILE and VIGIL_TLS_REDIRECT_PORT, the files loaded
// once to check them. `port` is the listener's own.
TlsOptions TlsFromEnv(std::uint16_t port) {
  TlsOptions tls;
  tls.cert_file = env::String("VIGIL_TLS_CERT_FILE", "");
  tls.key_file = env::String("VIGIL_TLS_KEY_FILE", "");
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    const bool cert = !tls.cert_file.empty();
    throw telemetry::ConfigError(cert ? "VIGIL_TLS_KEY_FILE" : "VIGIL_TLS_CERT_FILE",
                                 std::string("is not set: TLS needs it with ") +
                                     (cert ? "VIGIL_TLS_CERT_FILE" : "VIGIL_TLS_KEY_FILE"));
  }
  tls.redirect_port =
      static_cast<std::uint16_t>(env::Integer("VIGIL_TLS_REDIRECT_PORT", 0, 0, 65535));
  if (tls.redirect_port != 0 && !tls.enabled()) {
    throw telemetry::ConfigError(
        "VIGIL_TLS_REDIRECT_PORT",
        "is set without VIGIL_TLS_CERT_FILE and VIGIL_TLS_KEY_FILE: there is no https:// "
        "listener to redirect to");
  }
  if (tls.redirect_port != 0 && tls.redirect_port == port) {
    throw telemetry::ConfigError("VIGIL_TLS_REDIRECT_PORT",
                                 std::to_string(port) + " is the TLS listener's own port");
  }
  if (tls.enabled()) (void)internal::LoadTlsContext(tls);
  return tls;
}

}  // namespace

ServerOptions ServerOptions::FromEnv(std::uint16_t default_port) {
  ServerOptions o;
  o.bind = BindFromEnv();
  o.port = static_cast<std::uint16_t>(env::Integer("VIGIL_PORT", default_port, 1, 65535));
  o.max_header_bytes = static_cast<std::size_t>(
      env::Integer("VIGIL_HTTP_MAX_HEADER_BYTES", 16 * 1024, 1024, 1024 * 1024));
  o.max_header_fields =
      static_cast<std::size_t>(env::Integer("VIGIL_HTTP_MAX_HEADER_FIELDS", 100, 1, 10000));
  o.max_body_bytes = static_cast<std::uint64_t>(
      env::Integer("VIGIL_HTTP_MAX_BODY_BYTES", 1024 * 1024, 0, std::int64_t{1} << 40));
  o.header_timeout = env::Millis("VIGIL_HTTP_HEADER_TIMEOUT", o.header_timeout);
  o.body_timeout = env::Millis("VIGIL_HTTP_BODY_TIMEOUT", o.body_timeout);
  o.idle_timeout = env::Millis("VIGIL_HTTP_IDLE_TIMEOUT", o.idle_timeout);
  for (auto [name, value] : {std::pair{"VIGIL_HTTP_HEADER_TIMEOUT", o.header_timeout},
                             std::pair{"VIGIL_HTTP_BODY_TIMEOUT", o.body_timeout},
                             std::pair{"VIGIL_HTTP_IDLE_TIMEOUT", o.idle_timeout}}) {
    if (value.count() == 0) {
      throw telemetry::ConfigError(name, "0 is not valid: expected a timeout of at least 1 ms");
    }
  }
  o.max_connections = static_cast<std::size_t>(
      env::Integer("VIGIL_HTTP_MAX_CONNECTIONS", 10000, 1, 1000000));
  o.tls = TlsFromEnv(o.port);
  return o;
}

ServerOptions ServerOptions::AdminFromEnv(std::uint16_t default_port) {
  ServerOptions o;
  o.bind = BindFromEnv();
  o.port = static_cast<std::uint16_t>(env::Integer("VIGIL_ADMIN_PORT", default_port, 1, 65535));
  o.max_body_bytes = 0;  // scrapes and probes have no body
  o.max_connections = 64;
  return o;
}

// ---------------------------------------------------------------------------- Health

void Health::AddCheck(std::string name, std::function<bool()> check) {
  checks_.emplace_back(std::move(name), std::move(check));
}

std::string Health::NotReadyReason() const {
  if (shutting_down()) return "shutting down";
  for (const auto& [name, check] : checks_) {
    bool ok = false;
    try {
      ok = check();
    } catch (...) {
      ok = false;
    }
    if (!ok) return name + ": failing";
  }
  return {};
}

namespace {

// The host of a Host field value ("example.com:8080" gives "example.com", "[::1]:80"
// gives "[::1]"), or empty when it is not a plain host name or address literal: the
// redirect's Location must not become another URL than the one meant.
std::string_view HostOf(std::string_view host) {
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return {};
    const std::string_view literal = host.substr(0, close + 1);
    for (char c : literal.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return {};
    }
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return {};
    return close > 1 ? literal : std::string_view();
  }
  host = host.substr(0, host.find(':'));
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return {};
  }
  return host;
}

}  // namespace

Routes RedirectToHttps(const Server& https) {
  Routes routes;
  routes.Add(
      "*", "/*",
      [&https](Exchange& ex) -> asio::awaitable<void> {
        const std::string_view host = HostOf(ex.header("host"));
        if (host.empty()) {
          ex.RespondProblem(400, "The request has no usable Host to redirect to.");
          co_return;
        }
        std::string location = "https://";
        location.append(host);
        if (https.port() != 443) location.append(":").append(std::to_string(https.port()));
        location.append(ex.target());
        // The body stays unread: the connection cannot carry another request.
        if (ex.has_body()) ex.CloseAfterResponse();
        ex.Respond(308, "", "text/plain; charset=utf-8");
        ex.response().set(beast::http::field::location, location);
        co_return;
      },
      // Never read, whatever its size: the answer does not depend on it.
      RouteOptions{.body = BodyMode::kStreamed,
                   .max_body_bytes = std::numeric_limits<std::uint64_t>::max()});
  return routes;
}

Routes AdminRoutes(telemetry::Telemetry& telemetry, const Health& health) {
  Routes routes;
  routes.Add("GET", "/metrics", [&telemetry](Exchange& ex) -> asio::awaitable<void> {
    const auto negotiated = telemetry::NegotiateExposition(ex.header("accept"));
    ex.Respond(200, telemetry.metrics().Expose(negotiated.format), negotiated.content_type);
    co_return;
  });
  routes.Add("GET", "/healthz", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, "ok\n", "text/plain; charset=utf-8");
    co_return;
  });
  routes.Add("POST", "/debug/sentry-test", SentryTestHandler(telemetry));
  routes.Add("GET", "/readyz", [&health](Exchange& ex) -> asio::awaitable<void> {
    std::string reason = health.NotReadyReason();
    if (reason.empty()) {
      ex.Respond(200, "ready\n", "text/plain; charset=utf-8");
    } else {
      ex.Respond(503, "not ready: " + reason + "\n", "text/plain; charset=utf-8");
    }
    co_return;
  });
  return routes;
}

// ---------------------------------------------------------------------------- Runtime

Runtime::Runtime(std::size_t workers) {
  if (workers == 0) workers = 1;
  contexts_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread, so Asio can skip
    // its internal locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
  }
}

Runtime::~Runtime() {
  Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::size_t Runtime::WorkersFromEnv() {
  const auto cores = std::max<unsigned>(1, std::thread::hardware_concurrency());
  return static_cast<std::size_t>(env::Integer("VIGIL_WORKERS", cores, 1, 256));
}

std::chrono::milliseconds Runtime::DrainTimeoutFromEnv() {
  return env::Millis("VIGIL_SHUTDOWN_TIMEOUT", std::chrono::milliseconds(10000));
}

void Runtime::Run() {
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  guards.reserve(contexts_.size());
  for (auto& c : contexts_) guards.push_back(asio::make_work_guard(*c));
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      // For top -H, perf, gdb; named before it runs anything. Worker 0 is the calling
      // thread, whose name ps and pgrep show for the whole process: it keeps it.
      const std::string name = "vigil-http-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      contexts_[i]->run();
    });
  }
  contexts_[0]->run();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Runtime::Stop() {
  for (auto& c : contexts_) c->stop();
}

int Runtime::RunUntilSignal(std::initializer_list<Server*> servers, Health& health,
                            telemetry::Telemetry& telemetry, std::function<void()> on_reload) {
  const auto drain = DrainTimeoutFromEnv();
  std::vector<Server*> order;
  for (Server* s : servers) {
    if (s != nullptr) order.push_back(s);
  }
  for (Server* s : order) {
    s->Instrument(telemetry);
    s->Start();
    telemetry.log().Info("listening", {{"server.address", s->options().bind},
                                       {"server.port", s->port()},
                                       {"url.scheme", s->secure() ? "https" : "http"},
                                       {"workers", size()}});
  }

  // SIGHUP: the log file is reopened (logrotate; this handler replaces the logger's own)
  // and the program re-reads its configuration.
  asio::signal_set hangups(context(0), SIGHUP);
  std::function<void(const error_code&, int)> on_hangup = [&](const error_code& ec, int) {
    if (ec) return;
    telemetry.log().Reopen();
    for (Server* s : order) s->ReloadTls();
    if (on_reload) on_reload();
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);

  asio::signal_set signals(context(0), SIGINT, SIGTERM);
  asio::steady_timer hard_stop(context(0));
  bool draining = false;
  std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int signo) {
    if (ec) return;
    if (draining) {
      telemetry.log().Warn("second signal: stopping without waiting", {{"signal", signo}});
      Stop();
      return;
    }
    draining = true;
    hangups.cancel();
    health.SetShuttingDown();
    telemetry.log().Info("shutting down",
                         {{"signal", signo}, {"drain_timeout_ms", drain.count()}});
    // Servers drain one after another in the order given, so the admin listener (last)
    // keeps answering /readyz with 503 while the public one drains.
    // The step holds itself only through the pending Shutdown callback (a weak
    // reference inside), so it is freed once the chain ends or is abandoned.
    auto next = std::make_shared<std::function<void(std::size_t)>>();
    *next = [this, &order, drain, weak = std::weak_ptr(next)](std::size_t i) {
      if (i == order.size()) {
        asio::post(context(0), [this] { Stop(); });
        return;
      }
      order[i]->Shutdown(drain, [self = weak.lock(), i] { (*self)(i + 1); });
    };
    (*next)(0);
    // Whatever happens, the process ends shortly after the drain deadline.
    hard_stop.expires_after(drain * static_cast<int>(order.size()) + std::chrono::seconds(2));
    hard_stop.async_wait([this](const error_code& e) {
      if (!e) Stop();
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  Run();
  telemetry.log().Info("stopped");
  telemetry.Shutdown();
  return 0;
}

// ---------------------------------------------------------------------------- Server

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> ServeConnection(Server& server, std::shared_ptr<Server::Worker> owner,
                                      tcp::socket socket, asio::cancellation_signal& cancel,
                                      std::function<void()> closed) {
  Server::Worker& worker = *owner;
  if (!worker.stopping) {
    ++worker.count;
    {
      Connection connection(server, worker, std::move(socket), cancel);
      try {
        co_await connection.Run();
      } catch (...) {
        // Run() handles every expected failure, and cancellation at the shutdown
        // deadline ends here; nothing may escape into the io_context.
      }
    }
    --worker.count;
  }
  closed();
  if (worker.count == 0 && worker.on_empty) {
    auto done = std::move(worker.on_empty);
    worker.on_empty = nullptr;
    done();
  }
}

}  // namespace

// Worker 0 accepts for every worker and hands connections out in turn, so that the
// connection cap is exact (with one listening socket per worker, the kernel's hashing
// could leave a connection waiting behind a worker at its share of the cap).
asio::awaitable<void> Server::Accept() {
  Worker& w0 = *workers_[0];
  asio::steady_timer backoff(w0.io);
  std::size_t next = 0;
  for (;;) {
    while (connections_.load(std::memory_order_relaxed) >= options_.max_connections &&
           !w0.stopping) {
      // Back-pressure: stop accepting; the kernel's backlog holds new connections.
      w0.slot_free.expires_at(asio::steady_timer::time_point::max());
      co_await w0.slot_free.async_wait(kTuple);
    }
    if (w0.stopping) co_return;
    const std::shared_ptr<Worker>& target_owner = workers_[next++ % workers_.size()];
    Worker& target = *target_owner;
    auto [ec, socket] = co_await w0.acceptor.async_accept(target.io, kTuple);
    if (w0.stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors and similar: wait a little instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    connections_.fetch_add(1, std::memory_order_relaxed);
    auto closed = [this] {
      if (connections_.fetch_sub(1, std::memory_order_relaxed) == options_.max_connections) {
        Worker& first = *workers_[0];
        asio::post(first.io, [&first] { first.slot_free.cancel(); });
      }
    };
    // The signal lives as long as the coroutine's completion handler holds it.
    auto cancel = std::make_shared<asio::cancellation_signal>();
    asio::co_spawn(target.io,
                   ServeConnection(*this, target_owner, std::move(socket), *cancel,
                                   std::move(closed)),
                   asio::bind_cancellation_slot(cancel->slot(),
                                                [cancel](const std::exception_ptr&) {}));
  }
}

Server::Server(Runtime& runtime, ServerOptions options, Routes routes, Pipeline pipeline)
    : runtime_(runtime), options_(std::move(options)), pipeline_(std::move(pipeline)) {
  if (options_.tls.enabled()) tls_ = std::make_unique<Tls>(options_.tls);
  all_routes_.push_back(std::make_unique<const Routes>(std::move(routes)));
  routes_.store(all_routes_.back().get(), std::memory_order_release);
  for (std::size_t i = 0; i < runtime_.size(); ++i) {
    workers_.push_back(std::make_shared<Worker>(runtime_.context(i), i));
  }
}

Server::~Server() = default;

void Server::Instrument(telemetry::Telemetry& telemetry) {
  if (tls_) tls_->Instrument(telemetry);
}

bool Server::ReloadTls() { return tls_ ? tls_->Reload() : true; }

void Server::ReplaceRoutes(Routes routes) {
  std::lock_guard lock(routes_mu_);
  all_routes_.push_back(std::make_unique<const Routes>(std::move(routes)));
  routes_.store(all_routes_.back().get(), std::memory_order_release);
}

std::size_t Server::connections() const noexcept {
  return connections_.load(std::memory_order_relaxed);
}

void Server::Start() {
  error_code ec;
  const auto address = asio::ip::make_address(options_.bind, ec);
  if (ec) throw std::system_error(ec, "invalid address " + options_.bind);
  const tcp::endpoint endpoint(address, options_.port);
  auto fail = [&](const char* what) {
    throw std::system_error(ec, std::string(what) + " " + options_.bind + ":" +
                                    std::to_string(options_.port));
  };
  tcp::acceptor& acceptor = workers_[0]->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("cannot open a socket for");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) fail("cannot listen on");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on");
  port_ = acceptor.local_endpoint().port();
  asio::co_spawn(workers_[0]->io, Accept(), asio::detached);
}

void Server::Shutdown(std::chrono::milliseconds deadline, std::function<void()> done) {
  if (shutting_down_.exchange(true)) return;
  auto remaining = std::make_shared<std::atomic<std::size_t>>(workers_.size());
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  auto worker_done = [remaining, finished] {
    if (remaining->fetch_sub(1) == 1 && *finished) (*finished)();
  };
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    asio::post(w->io, [w, deadline, worker_done] {
      w->stopping = true;
      error_code ignored;
      w->acceptor.close(ignored);
      w->slot_free.cancel();
      for (Connection* c = w->connections; c != nullptr; c = c->next) c->RequestClose();
      if (w->count == 0) {
        worker_done();
        return;
      }
      w->on_empty = worker_done;
      auto timer = std::make_shared<asio::steady_timer>(w->io, deadline);
      timer->async_wait([w, timer](const error_code& ec) {
        if (ec) return;
        for (Connection* c = w->connections; c != nullptr;) {
          Connection* next = c->next;  // Abort may end the connection before we move on
          c->Abort();
          c = next;
        }
      });
    });
  }
}

}  // namespace vigil::http

#include <malloc.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdio>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/service/service.hpp>

namespace vigil::service {

namespace {

constexpr const char* kCommonFlags = R"(
Common flags:
  --help      this text
  --routes    print the routes this program serves ("METHOD /template") and exit
  --check     validate the configuration and environment (and open the database of a
              service that has one), exit

)";
// Follows "Common environment: VIGIL_PORT (default N), VIGIL_ADMIN_PORT (default M),".
constexpr const char* kCommonEnvironment = R"(
VIGIL_BIND, VIGIL_WORKERS, VIGIL_HTTP_*, VIGIL_SHUTDOWN_TIMEOUT, VIGIL_ACCESS_LOG,
VIGIL_INTERNAL_SECRET (the key that signs the X-Vigil-Identity header between services;
at least 32 bytes), VIGIL_INTERNAL_SECRET_PREVIOUS (while changing the secret: still
accepted, never used to sign), the telemetry variables (VIGIL_LOG_LEVEL,
VIGIL_TRACES_FILE, OTEL_*); where the program compresses, VIGIL_HTTP_COMPRESS_MIN_BYTES
(responses of at least this size are compressed with br or gzip when the client accepts
it; default 1024); in a service with a database, DATABASE_URL (PostgreSQL; default SQLite
under VIGIL_DATA_DIR, default ./data), VIGIL_DB_CONNECTIONS, VIGIL_DB_MAX_WAITING;
rate limits: VIGIL_RATELIMIT_CONFIG (a service's policies file), VIGIL_REDIS_URL (share
the limits of every replica through Redis, redis://[[user]:password@]host[:port][/db]),
VIGIL_REDIS_TIMEOUT_MS (default 20). SIGHUP reopens the log file and re-reads the limits.
docs/operations.md lists them all.
)";

// Hands memory freed inside the allocator's arenas back to the system (glibc only
// returns the top of each heap by itself), so that a service that served a burst returns
// to its idle footprint. Costs microseconds when there is nothing to trim.
asio::awaitable<void> TrimFreedMemory() {
  malloc_trim(0);
  co_return;
}

asio::awaitable<void> RunEvery(Schedule schedule, const http::Health& health,
                               std::function<asio::awaitable<void>()> task) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (auto delay = schedule.first_delay;; delay = schedule.period) {
    timer.expires_after(delay);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || health.shutting_down()) co_return;
    co_await task();
  }
}

// Lifts the soft limit on open files to the hard one. Every client connection holds a
// descriptor, and with the soft limit service managers and shells usually give (1024),
// about a thousand clients that trickle their requests stop both listeners accepting,
// the admin one (/metrics, /readyz) included, until the header timeout frees a slot.
// Where the hard limit cannot be taken (unlimited beyond fs.nr_open), nothing changes.
void RaiseOpenFileLimit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  (void)::setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

void LimitRetainedMemory() noexcept {
  // glibc raises its mmap threshold each time a large block is freed, after which blocks
  // of that size (argon2id's 19 MiB, a big response) come from the heap and stay
  // resident once freed. A fixed threshold keeps large blocks in their own mappings,
  // returned to the system on free, and a fixed trim threshold gives back the top of the
  // heap; a few arenas rather than one per thread bound what idle threads hold.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);
}

ServiceHost::ServiceHost(const ServiceDefinition& definition, telemetry::Telemetry& telemetry,
                         http::Runtime& runtime, IdentitySigner identity, bool listing_routes,
                         std::vector<std::pair<std::string_view, std::string>> flags)
    : definition_(definition),
      telemetry_(telemetry),
      runtime_(runtime),
      identity_(std::move(identity)),
      client_instruments_(std::make_unique<http::ClientInstruments>(telemetry.metrics())),
      listing_routes_(listing_routes),
      flags_(std::move(flags)) {}

std::optional<std::string_view> ServiceHost::flag(std::string_view name) const noexcept {
  for (const auto& [flag, value] : flags_) {
    if (flag == name) return value;
  }
  return std::nullopt;
}

void ServiceHost::Every(Schedule schedule, std::function<asio::awaitable<void>()> task) {
  // Nothing but Runtime::Stop() ends it otherwise, and a timer wait does not keep a
  // stopped runtime alive.
  asio::co_spawn(runtime_.context(0), RunEvery(schedule, health_, std::move(task)),
                 asio::detached);
}

void ServiceHost::Reload() const {
  for (const auto& reload : reloads_) reload();
}

void ServiceHost::ReplaceRoutes(http::Routes routes) {
  if (server_ == nullptr) throw std::logic_error("ReplaceRoutes: the program is not serving yet");
  server_->ReplaceRoutes(std::move(routes));
}

ServiceHost::~ServiceHost() {
  while (!owned_.empty()) owned_.pop_back();
}

BlockingPool& ServiceHost::blocking() {
  if (!blocking_) blocking_ = std::make_unique<BlockingPool>(2);
  return *blocking_;
}

void ServiceHost::Route(std::string_view method, std::string_view pattern, http::Handler handler,
                        http::RouteOptions options) {
  routes_.Add(method, pattern, std::move(handler), options);
}

http::UpstreamAddress UpstreamFromEnv(const char* variable, std::string_view fallback) {
  const std::string url = telemetry::env::String(variable, fallback);
  try {
    return http::UpstreamAddress::Parse(url);
  } catch (const std::invalid_argument& e) {
    throw telemetry::ConfigError(variable, "\"" + url + "\" is not valid: " + e.what());
  }
}

namespace {

// The value of `flag` when `argv[*i]` is "FLAG VALUE" (moving *i past the value) or
// "FLAG=VALUE"; nullopt when it is another argument.
std::optional<std::string> ValueFlag(std::string_view flag, int argc, char** argv, int* i) {
  const std::string_view arg = argv[*i];
  if (arg == flag && *i + 1 < argc) return std::string(argv[++*i]);
  if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=') {
    return std::string(arg.substr(flag.size() + 1));
  }
  return std::nullopt;
}

}  // namespace

int RunService(const ServiceDefinition& definition, int argc, char** argv,
               const std::function<void(ServiceHost&)>& setup) {
  const std::string program = "vigil-" + std::string(definition.name);
  bool list_routes = false;
  bool check_only = false;
  std::vector<std::pair<std::string_view, std::string>> flags;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fwrite(definition.usage.data(), 1, definition.usage.size(), stdout);
      std::fputs(kCommonFlags, stdout);
      std::printf("Common environment: VIGIL_PORT (default %u), VIGIL_ADMIN_PORT (default %u),",
                  static_cast<unsigned>(definition.public_port),
                  static_cast<unsigned>(definition.admin_port));
      std::fputs(kCommonEnvironment, stdout);
      return 0;
    }
    if (arg == "--routes") {
      list_routes = true;
      continue;
    }
    if (arg == "--check") {
      check_only = true;
      continue;
    }
    bool known = false;
    for (const std::string_view flag : definition.value_flags) {
      if (auto value = ValueFlag(flag, argc, argv, &i)) {
        flags.emplace_back(flag, std::move(*value));
        known = true;
        break;
      }
    }
    if (!known) {
      std::fprintf(stderr, "%s: unknown or incomplete argument '%s' (try --help)\n",
                   program.c_str(), argv[i]);
      return 2;
    }
  }
  LimitRetainedMemory();
  RaiseOpenFileLimit();
  try {
    telemetry::ServiceInfo info;
    info.name = std::string(definition.name);
    info.version = std::string(telemetry::BuildVersion());
    telemetry::TelemetryOptions options = telemetry::OptionsFromEnv(info);
    if (definition.log_ring_bytes != 0 && !telemetry::env::Get("VIGIL_LOG_QUEUE_BYTES")) {
      options.log.ring_bytes = definition.log_ring_bytes;
    }
    // --routes prints a list a program reads: no log lines in between.
    if (list_routes) options.log.level = telemetry::LogLevel::kError;
    const http::ServerOptions public_options = http::ServerOptions::FromEnv(definition.public_port);
    const http::ServerOptions admin_options =
        http::ServerOptions::AdminFromEnv(definition.admin_port);
    const std::size_t workers = http::Runtime::WorkersFromEnv();
    (void)http::Runtime::DrainTimeoutFromEnv();
    IdentitySigner identity = IdentitySigner::FromEnv();

    telemetry::Telemetry telemetry(std::move(options));
    http::Runtime runtime(workers);
    std::optional<ServiceHost> host;
    host.emplace(definition, telemetry, runtime, std::move(identity), list_routes,
                 std::move(flags));
    if (host->identity().uses_development_secret() && !list_routes) {
      telemetry.log().Warn("VIGIL_INTERNAL_SECRET is not set: using the development secret, "
                           "which anyone can read; set it in any shared deployment");
    }
    setup(*host);
    if (list_routes) {
      for (const auto& route : host->routes().entries()) std::printf("%s\n", route.name.c_str());
      return 0;
    }
    if (check_only) {
      std::printf("configuration OK\n");
      return 0;
    }

    http::Server server(runtime, public_options, std::move(host->routes()),
                        std::move(host->pipeline()));
    // The admin answers carry the security headers too (nothing else: they are not
    // observed, so that scrapes and probes do not drown the service's own requests).
    http::Pipeline admin_pipeline;
    admin_pipeline.Add<http::SecurityHeadersMiddleware>(http::SecurityHeadersOptions{});
    http::Server admin(runtime, admin_options, http::AdminRoutes(telemetry, host->health()),
                       std::move(admin_pipeline));
    // Beside an HTTPS listener, a plain one that only sends clients over to it (with the
    // security headers, as every answer).
    std::optional<http::Server> redirect;
    if (public_options.tls.redirect_port != 0) {
      http::ServerOptions redirect_options = public_options;
      redirect_options.port = public_options.tls.redirect_port;
      redirect_options.tls = {};
      http::Pipeline redirect_pipeline;
      redirect_pipeline.Add<http::SecurityHeadersMiddleware>(http::SecurityHeadersOptions{});
      redirect.emplace(runtime, std::move(redirect_options), http::RedirectToHttps(server),
                       std::move(redirect_pipeline));
    }
    telemetry.log().Info("starting", {{"server.port", static_cast<std::int64_t>(public_options.port)},
                                      {"admin.port", static_cast<std::int64_t>(admin_options.port)},
                                      {"workers", static_cast<std::int64_t>(workers)}});
    host->Every({std::chrono::seconds(10), std::chrono::seconds(10)}, TrimFreedMemory);
    // Destruction runs backwards: the listeners go before the host's objects (databases,
    // clients) that their handlers use.
    host->server_ = &server;
    return runtime.RunUntilSignal({&server, redirect ? &*redirect : nullptr, &admin},
                                  host->health(), telemetry, [&host = *host] { host.Reload(); });
  } catch (const telemetry::ConfigError& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: cannot start: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace vigil::service

// Decisions shared by every replica through Redis (VIGIL_REDIS_URL).
//
// One Lua script per decision (EVALSHA; loaded again after NOSCRIPT) reads the key's TAT
// and Redis's own TIME, so replicas whose clocks disagree still agree on a limit, and
// stores the new TAT with an expiry at the moment the quota is whole again. Keys carry a
// hash tag ("vigil:rl:{<key>}"), so a policy works unchanged on Redis Cluster.
//
// Asynchronous on the callers' event loops: one connection per executor given (the HTTP
// workers'), living on that executor's thread, on which concurrent decisions are
// pipelined (hiredis parses the replies; Asio moves the bytes). A
// decision never waits longer than the timeout; while a connection is down (refused,
// reset, LOADING, an authentication error, or no reply at all for over a second or four
// timeouts: a Redis gone silent) decisions fail at once, without waiting,
// and the connection comes back by itself with backoff.
//
// Errors count in vigil_ratelimit_store_errors_total{store="redis",reason}; the gauge
// vigil_ratelimit_store_up{store="redis"} is 1 while every connection works. One warn
// line when an episode of failure starts, one info line when it ends.
//
// Thread-safety: Decide(worker, ...) only on executor `worker`'s thread; Start and Stop
// from any one thread; up() from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/ratelimit/gcra.hpp>

namespace vigil::telemetry {
class Telemetry;
}

namespace vigil::ratelimit {

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // ACL user; empty: the default user
  std::string password;  // empty: no AUTH
  int db = 0;
  // The longest a decision waits for its reply (VIGIL_REDIS_TIMEOUT_MS, default 20).
  std::chrono::milliseconds timeout{20};
  // Reconnect backoff: doubles from the first to the most (with jitter).
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2000};

  // Parses redis://[[username]:password@]host[:port][/db]. Throws telemetry::ConfigError
  // naming `variable` (never quoting the URL, which may hold a password).
  static RedisOptions FromUrl(std::string_view url, const char* variable);
  // VIGIL_REDIS_URL (or VIGIL_REDIS_URL_FILE) and VIGIL_REDIS_TIMEOUT_MS; nullopt when no
  // URL is set. Throws telemetry::ConfigError naming the variable.
  static std::optional<RedisOptions> FromEnv();
};

// Why a decision could not be made; the `reason` label of the errors counter.
enum class StoreError : std::uint8_t {
  kNone,
  kDown,      // the connection is not up (refused, backing off): failed without waiting
  kRefused,   // connecting was refused or the address is unreachable
  kReset,     // the connection broke
  kTimeout,   // no reply within the timeout
  kLoading,   // Redis answered LOADING (still reading its data set)
  kAuth,      // AUTH or SELECT was refused
  kProtocol,  // any other error reply, or a reply of an unexpected shape
  kOverload,  // too many decisions already waiting on this connection
};
std::string_view ToString(StoreError error) noexcept;

struct SharedDecision {
  StoreError error = StoreError::kNone;
  Decision decision;  // meaningful when error == kNone
};

class RedisStore {
 public:
  // One connection per executor. Nothing connects before Start().
  RedisStore(std::vector<boost::asio::any_io_executor> executors, RedisOptions options,
             telemetry::Telemetry& telemetry);
  ~RedisStore();
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // Starts every connection (each on its own executor); returns at once.
  void Start();
  // Closes the connections and stops reconnecting; decisions waiting fail with kDown.
  // Returns at once; the connections finish closing on their executors.
  void Stop();

  // Decides a request of `cost` for `key` through Redis. Called on executor `worker`'s
  // thread; completes there within the timeout.
  boost::asio::awaitable<SharedDecision> Decide(std::size_t worker, std::string_view key, Rate rate,
                                                std::int64_t cost);

  // True while every connection is up.
  bool up() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil::ratelimit

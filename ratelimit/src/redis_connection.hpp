// The machinery of the Redis store: one Connection per executor, living on that executor's
// thread, which reconnects by itself; each TCP connection it makes is a Link, on which
// decisions are pipelined (commands written as they come, replies matched in order).
//
// Thread-safety: a Connection and its Links are used on their executor's thread only
// (Start and Stop post there); StoreState is shared by every connection of a store and is
// safe from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/metrics.hpp>

#include "redis_protocol.hpp"

namespace vigil::ratelimit::internal {

// Decisions waiting on one connection (answered or timed out but not yet read back) beyond
// which a decision fails at once with kOverload.
inline constexpr std::size_t kMaxWaiting = 4096;
// A link whose oldest unanswered command is older than this (or four timeouts, if more)
// is taken for dead: Redis is not answering at all.
inline constexpr std::chrono::milliseconds kStallAfter{1000};

// What every connection of a store shares: its options, its metrics, and whether the
// store is up, with the one log line per change between up and failing.
class StoreState {
 public:
  StoreState(RedisOptions options, std::size_t connections, telemetry::Registry& metrics,
             telemetry::Logger& log);

  const RedisOptions& options() const noexcept { return options_; }
  // Counts a failed decision or connection attempt.
  void Count(StoreError error) noexcept;

  // A connection is up: the store is up when every connection is.
  void ConnectionUp();
  // A connection failed (`was_up`: it had been up; otherwise an attempt to connect failed).
  // The first failure while the store is up, or before it ever was, starts an episode of
  // failure: one warn line naming `reason` and `detail`.
  void ConnectionDown(StoreError reason, bool was_up, std::string_view detail);
  // The store is stopped: down, without a log line.
  void Stopped();

  bool up() const noexcept { return all_up_.load(std::memory_order_relaxed); }

 private:
  const RedisOptions options_;
  std::array<telemetry::Counter*, 9> errors_{};  // by StoreError; kNone's stays null
  telemetry::Gauge& up_gauge_;
  telemetry::Logger& log_;

  std::mutex mu_;  // connections going up or down, never a decision
  const std::size_t connections_;
  std::size_t connections_up_ = 0;
  bool failing_ = false;
  bool stopped_ = false;
  std::atomic<bool> all_up_{false};
};

// One decision in flight. Its coroutine waits on `timer`, which the reply cancels; the
// deadline leaves the decision timed out, and its reply, when it comes, is read and dropped.
struct Waiter {
  explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}

  // Settles the decision once; later calls do nothing.
  void Complete(const SharedDecision& decision);

  boost::asio::steady_timer timer;
  // The caller's key: alive while the decision is awaited, the only time it is read (a
  // retry after NOSCRIPT).
  std::string_view key;
  Rate rate;
  std::int64_t cost = 0;
  bool retried = false;
  bool done = false;
  // When its command was written to the link (the oldest unanswered one tells whether
  // Redis still answers at all).
  std::chrono::steady_clock::time_point sent{};
  SharedDecision result;
};

// One TCP connection to Redis, from connecting to its end.
class Link : public std::enable_shared_from_this<Link> {
 public:
  explicit Link(const boost::asio::any_io_executor& executor)
      : socket_(executor), resolver_(executor), deadline_(executor) {}

  // Connects, authenticates, selects the database and loads the script, within a
  // deadline; then the link is usable(). Fails the link (error()) when any of it fails.
  boost::asio::awaitable<void> Open(const RedisOptions& options);
  // Reads replies and hands each to its decision, until the link fails.
  boost::asio::awaitable<void> ReadLoop();

  // Writes the decision's command (EVALSHA, or EVAL with `script`) and queues it for its
  // reply. Throws std::bad_alloc.
  void Send(const std::shared_ptr<Waiter>& waiter, bool script);
  // Ends the link (the first failure names the reason): closes the socket and settles
  // every decision waiting with `reason`.
  void Fail(StoreError reason, std::string_view detail);

  bool usable() const noexcept { return up_ && error_ == StoreError::kNone; }
  StoreError error() const noexcept { return error_; }
  const std::string& detail() const noexcept { return detail_; }
  std::size_t waiting() const noexcept { return waiting_.size(); }
  // True when the oldest unanswered command was written over `bound` ago: Redis is not
  // answering at all (gone without a reset, partitioned), not merely slow.
  bool Stalled(std::chrono::steady_clock::duration bound) const noexcept {
    return !waiting_.empty() && std::chrono::steady_clock::now() - waiting_.front()->sent > bound;
  }

 private:
  // AUTH and SELECT when the options ask for them, and SCRIPT LOAD (keeping the SHA).
  boost::asio::awaitable<void> Hello(const RedisOptions& options);
  // The next reply; null when the link failed.
  boost::asio::awaitable<Reply> Read();
  void Dispatch(Reply reply);
  void Flush();

  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer deadline_;
  bool connected_ = false;  // TCP is up (a deadline after this is a timeout, not refused)
  bool opening_ = true;
  bool up_ = false;  // Open succeeded
  ReplyReader reader_;
  std::string sha_;
  StoreError error_ = StoreError::kNone;
  std::string detail_;
  std::deque<std::shared_ptr<Waiter>> waiting_;
  std::string out_;      // commands not yet written
  std::string sending_;  // the commands being written
  bool writing_ = false;
  std::array<char, 16384> in_;
};

// The connection of one executor: connects, serves decisions while up, and reconnects
// with backoff until stopped.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::any_io_executor executor, std::shared_ptr<StoreState> state);

  // Begins connecting (posted to the executor).
  void Start();
  // Closes the link and stops reconnecting; decisions waiting fail with kDown (posted).
  void Stop();
  // On the executor's thread: decided through the link, or failed at once when it is
  // not up or too many decisions wait.
  boost::asio::awaitable<SharedDecision> Decide(std::string_view key, Rate rate, std::int64_t cost);

 private:
  boost::asio::awaitable<void> Run();
  // The next reconnect delay: `delay` with jitter (half of it to all of it).
  std::chrono::milliseconds Jitter(std::chrono::milliseconds delay);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<StoreState> state_;
  boost::asio::steady_timer backoff_;
  std::shared_ptr<Link> link_;  // the current attempt or connection
  bool stopped_ = false;
  std::minstd_rand random_;
};

}  // namespace vigil::ratelimit::internal

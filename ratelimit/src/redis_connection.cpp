#include "redis_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace vigil::ratelimit::internal {

namespace asio = boost::asio;
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Connecting and the exchange that follows get at least this long, whatever the decisions'
// timeout: a connection is made once, and is no request's wait.
constexpr std::chrono::milliseconds kMinOpenTimeout{1000};

}  // namespace

void Waiter::Complete(const SharedDecision& decision) {
  if (done) return;
  done = true;
  result = decision;
  timer.cancel();
}

asio::awaitable<void> Link::Open(const RedisOptions& options) {
  const auto self = shared_from_this();
  deadline_.expires_after(std::max(options.timeout, kMinOpenTimeout));
  deadline_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || !self->opening_) return;
    self->Fail(self->connected_ ? StoreError::kTimeout : StoreError::kRefused,
               self->connected_ ? "no answer to the connection's first commands in time"
                                : "connecting took too long");
  });

  // An address is used as it is; a name is resolved afresh on every attempt (it may
  // move, as a Kubernetes service's does).
  std::vector<asio::ip::tcp::endpoint> endpoints;
  boost::system::error_code not_an_address;
  const asio::ip::address address = asio::ip::make_address(options.host, not_an_address);
  if (!not_an_address) {
    endpoints.emplace_back(address, options.port);
  } else {
    auto [resolve_error, results] =
        co_await resolver_.async_resolve(options.host, std::to_string(options.port), kAwait);
    if (resolve_error) Fail(StoreError::kRefused, resolve_error.message());
    for (const auto& result : results) endpoints.push_back(result.endpoint());
  }
  if (error_ == StoreError::kNone) {
    auto [connect_error, endpoint] = co_await asio::async_connect(socket_, endpoints, kAwait);
    if (connect_error) Fail(StoreError::kRefused, connect_error.message());
  }
  if (error_ == StoreError::kNone) {
    connected_ = true;
    boost::system::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    co_await Hello(options);
  }
  opening_ = false;
  deadline_.cancel();
  up_ = error_ == StoreError::kNone;
}

asio::awaitable<void> Link::Hello(const RedisOptions& options) {
  // AUTH and SELECT when asked for, then SCRIPT LOAD, written at once; their replies come
  // back in that order.
  std::string hello;
  std::size_t settings = 0;
  if (!options.password.empty()) {
    if (options.username.empty()) {
      const std::array<std::string_view, 2> auth = {"AUTH", options.password};
      AppendCommand(hello, auth);
    } else {
      const std::array<std::string_view, 3> auth = {"AUTH", options.username, options.password};
      AppendCommand(hello, auth);
    }
    ++settings;
  }
  const std::string db = std::to_string(options.db);
  if (options.db != 0) {
    const std::array<std::string_view, 2> select = {"SELECT", db};
    AppendCommand(hello, select);
    ++settings;
  }
  const std::array<std::string_view, 3> load = {"SCRIPT", "LOAD", kDecisionScript};
  AppendCommand(hello, load);

  auto [write_error, written] = co_await asio::async_write(socket_, asio::buffer(hello), kAwait);
  if (write_error) {
    Fail(StoreError::kReset, write_error.message());
    co_return;
  }
  for (std::size_t i = 0; i < settings; ++i) {
    const Reply reply = co_await Read();
    if (reply == nullptr) co_return;
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string_view text = ErrorText(*reply);
      // Any refusal of AUTH or SELECT is the configuration's; LOADING passes.
      Fail(ClassifyError(text) == StoreError::kLoading ? StoreError::kLoading : StoreError::kAuth,
           text);
      co_return;
    }
  }
  const Reply sha = co_await Read();
  if (sha == nullptr) co_return;
  if (sha->type == REDIS_REPLY_ERROR) {
    Fail(ClassifyError(ErrorText(*sha)), ErrorText(*sha));
  } else if (sha->type != REDIS_REPLY_STRING || sha->len == 0) {
    Fail(StoreError::kProtocol, "SCRIPT LOAD answered no SHA");
  } else {
    sha_.assign(sha->str, sha->len);
  }
}

asio::awaitable<Reply> Link::Read() {
  for (;;) {
    if (Reply reply = reader_.Next()) co_return reply;
    if (reader_.failed()) Fail(StoreError::kProtocol, "the server's bytes are not RESP");
    if (error_ != StoreError::kNone) co_return nullptr;
    auto [ec, size] = co_await socket_.async_read_some(asio::buffer(in_), kAwait);
    if (ec) {
      Fail(StoreError::kReset,
           ec == asio::error::eof ? "the server closed the connection" : ec.message());
      co_return nullptr;
    }
    reader_.Feed(in_.data(), size);
  }
}

asio::awaitable<void> Link::ReadLoop() {
  const auto self = shared_from_this();
  while (Reply reply = co_await Read()) Dispatch(std::move(reply));
}

void Link::Dispatch(Reply reply) {
  if (waiting_.empty()) {
    Fail(StoreError::kProtocol, "a reply to no command");
    return;
  }
  const std::shared_ptr<Waiter> waiter = std::move(waiting_.front());
  waiting_.pop_front();
  if (waiter->done) return;  // timed out: its reply is read, and dropped
  if (!waiter->retried && ErrorText(*reply).starts_with("NOSCRIPT")) {
    // Redis lost the script (restarted, SCRIPT FLUSH, failed over): EVAL both loads it
    // and decides, once.
    waiter->retried = true;
    Send(waiter, true);
    return;
  }
  waiter->Complete(ReadDecision(*reply, waiter->rate, waiter->cost));
}

void Link::Send(const std::shared_ptr<Waiter>& waiter, bool script) {
  waiter->sent = std::chrono::steady_clock::now();
  waiting_.push_back(waiter);
  try {
    AppendDecision(out_, sha_, script, waiter->key, waiter->rate, waiter->cost);
  } catch (...) {
    waiting_.pop_back();  // no command, no reply to wait for
    throw;
  }
  Flush();
}

void Link::Flush() {
  if (writing_ || out_.empty() || error_ != StoreError::kNone) return;
  // Commands that come while this write is under way go out together after it.
  writing_ = true;
  sending_.swap(out_);
  asio::async_write(socket_, asio::buffer(sending_),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      self->sending_.clear();
                      if (ec) {
                        self->Fail(StoreError::kReset, ec.message());
                        return;
                      }
                      self->Flush();
                    });
}

void Link::Fail(StoreError reason, std::string_view detail) {
  if (error_ != StoreError::kNone) return;
  error_ = reason;
  detail_ = detail;
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  deadline_.cancel();
  out_.clear();
  const SharedDecision failed{reason, {}};
  for (const auto& waiter : waiting_) waiter->Complete(failed);
  waiting_.clear();
}

Connection::Connection(asio::any_io_executor executor, std::shared_ptr<StoreState> state)
    : executor_(std::move(executor)),
      state_(std::move(state)),
      backoff_(executor_),
      random_(std::random_device{}()) {}

void Connection::Start() {
  asio::co_spawn(
      executor_, [self = shared_from_this()] { return self->Run(); }, asio::detached);
}

void Connection::Stop() {
  asio::post(executor_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->backoff_.cancel();
    if (self->link_ != nullptr) self->link_->Fail(StoreError::kDown, "stopped");
  });
}

asio::awaitable<void> Connection::Run() {
  const RedisOptions& options = state_->options();
  std::chrono::milliseconds delay = options.backoff_min;
  while (!stopped_) {
    const auto link = std::make_shared<Link>(executor_);
    link_ = link;
    co_await link->Open(options);
    const bool was_up = link->usable();
    if (was_up) {
      state_->ConnectionUp();
      delay = options.backoff_min;
      co_await link->ReadLoop();
    }
    if (stopped_) break;
    if (!was_up) state_->Count(link->error());
    state_->ConnectionDown(link->error(), was_up, link->detail());
    backoff_.expires_after(Jitter(delay));
    co_await backoff_.async_wait(kAwait);
    delay = std::min(delay * 2, options.backoff_max);
  }
  link_.reset();
}

std::chrono::milliseconds Connection::Jitter(std::chrono::milliseconds delay) {
  const auto most = std::max<std::chrono::milliseconds::rep>(delay.count(), 1);
  return std::chrono::milliseconds(
      std::uniform_int_distribution<std::chrono::milliseconds::rep>(most / 2, most)(random_));
}

asio::awaitable<SharedDecision> Connection::Decide(std::string_view key, Rate rate,
                                                   std::int64_t cost) {
  SharedDecision result;
  const std::shared_ptr<Link> link = link_;
  if (link == nullptr || !link->usable()) {
    result.error = StoreError::kDown;  // never wait on a connection that is not there
  } else if (link->waiting() >= kMaxWaiting) {
    result.error = StoreError::kOverload;
  } else {
    const auto waiter = std::make_shared<Waiter>(executor_);
    waiter->key = key;
    waiter->rate = rate;
    waiter->cost = cost;
    waiter->timer.expires_after(state_->options().timeout);
    link->Send(waiter, false);
    co_await waiter->timer.async_wait(kAwait);
    waiter->Complete({StoreError::kTimeout, {}});  // nothing when the reply came first
    result = waiter->result;
    // A Redis that stopped answering without closing the connection (a host gone, a
    // partition) would otherwise cost every decision its timeout for as long as TCP keeps
    // the connection: past a bound the link fails, the store is down (decisions fail at
    // once, one warn line) and reconnecting begins.
    const auto stall =
        std::max<std::chrono::steady_clock::duration>(4 * state_->options().timeout, kStallAfter);
    if (result.error == StoreError::kTimeout && link->Stalled(stall)) {
      link->Fail(StoreError::kTimeout, "Redis has stopped answering");
    }
  }
  if (result.error != StoreError::kNone) state_->Count(result.error);
  co_return result;
}

}  // namespace vigil::ratelimit::internal

#include "pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <vigil/telemetry/text.hpp>

#include "deadline.hpp"

namespace vigil::http::internal {

namespace tel = vigil::telemetry;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;

// ---------------------------------------------------------------------------- connection

ClientConnection::ClientConnection(tcp::socket socket)
    : socket_(std::move(socket)),
      deadline_(std::make_unique<Deadline>(socket_.get_executor(), socket_)) {}

ClientConnection::~ClientConnection() { deadline_->Stop(); }

void ClientConnection::SetDeadline(std::chrono::steady_clock::duration timeout) {
  deadline_->Set(timeout);
}

bool ClientConnection::expired() const noexcept { return deadline_->expired(); }

// ---------------------------------------------------------------------------- pool

ConnectionPool::ConnectionPool(asio::io_context& context, const UpstreamAddress& address,
                               PoolOptions options, PoolGauges gauges)
    : context_(context), address_(address), options_(options), gauges_(gauges) {}

ConnectionPool::~ConnectionPool() {
  if (gauges_.idle != nullptr) gauges_.idle->Dec(static_cast<double>(idle_.size()));
}

void ConnectionPool::EvictExpired(std::chrono::steady_clock::time_point now) noexcept {
  if (now < next_expiry_) return;
  std::size_t kept = 0;
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto& c : idle_) {
    if (c->expires_ <= now) continue;  // closed by its destructor below
    next = std::min(next, c->expires_);
    idle_[kept++] = std::move(c);
  }
  const std::size_t evicted = idle_.size() - kept;
  idle_.resize(kept);
  next_expiry_ = next;
  if (evicted != 0 && gauges_.idle != nullptr) gauges_.idle->Dec(static_cast<double>(evicted));
}

namespace {

// True when an idle connection shows no sign of having been closed by its upstream: the
// socket has nothing to read and no error. One non-blocking peek (a syscall, ~1 us) per
// reuse; it finds what a write would not: a write on a connection whose FIN arrived
// succeeds, and the request would be lost with the connection. Bytes an upstream sent
// unasked mean it is out of step (or answering a request we never sent): unusable too.
bool StillOpen(tcp::socket& socket) noexcept {
  char byte;
  for (;;) {
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

}  // namespace

asio::awaitable<std::unique_ptr<ClientConnection>> ConnectionPool::Acquire() {
  EvictExpired(std::chrono::steady_clock::now());
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (gauges_.idle != nullptr) gauges_.idle->Dec();
    if (!StillOpen(c->socket_)) continue;  // closed by its destructor; try the next one
    if (gauges_.active != nullptr) gauges_.active->Inc();
    ++c->uses_;
    co_return c;
  }
  co_return co_await Connect();
}

asio::awaitable<std::unique_ptr<ClientConnection>> ConnectionPool::Connect() {
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  if (endpoints_.empty()) {
    tcp::resolver resolver(context_);
    auto [ec, results] =
        co_await resolver.async_resolve(address_.host, std::to_string(address_.port), kTuple);
    if (ec) throw boost::system::system_error(ec, "resolving " + address_.host);
    for (const auto& r : results) endpoints_.push_back(r.endpoint());
  }
  auto c = std::make_unique<ClientConnection>(tcp::socket(context_));
  c->SetDeadline(options_.connect_timeout);
  auto [ec, endpoint] = co_await asio::async_connect(c->socket_, endpoints_, kTuple);
  (void)endpoint;
  if (ec) {
    // The next attempt resolves again: the name may point elsewhere now.
    endpoints_.clear();
    if (c->expired()) ec = asio::error::timed_out;
    throw boost::system::system_error(ec, "connecting to " + address_.authority);
  }
  c->deadline_->Clear();
  error_code ignored;
  c->socket_.set_option(tcp::no_delay(true), ignored);
  c->uses_ = 1;
  if (gauges_.active != nullptr) gauges_.active->Inc();
  co_return c;
}

void ConnectionPool::Release(std::unique_ptr<ClientConnection> c,
                             const bhttp::fields& response) noexcept {
  if (!c) return;
  if (gauges_.active != nullptr) gauges_.active->Dec();
  const auto lifetime = IdleLifetime(response, options_.idle_timeout);
  if (idle_.size() >= options_.max_idle || !c->socket_.is_open() || c->buffer_.size() != 0 ||
      lifetime.count() <= 0) {
    return;  // closed by the destructor
  }
  c->deadline_->Clear();
  c->expires_ = std::chrono::steady_clock::now() + lifetime;
  try {
    idle_.push_back(std::move(c));
  } catch (...) {
    return;
  }
  next_expiry_ = std::min(next_expiry_, idle_.back()->expires_);
  if (gauges_.idle != nullptr) gauges_.idle->Inc();
}

void ConnectionPool::Discard(std::unique_ptr<ClientConnection> c) noexcept {
  if (c && gauges_.active != nullptr) gauges_.active->Dec();
}

// ---------------------------------------------------------------------------- keep-alive

std::optional<std::chrono::seconds> KeepAliveTimeout(std::string_view value) noexcept {
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string_view param = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    if (!tel::text::EqualsIgnoreCase(tel::text::TrimOws(param.substr(0, eq)), "timeout")) continue;
    std::string_view number = tel::text::TrimOws(param.substr(eq + 1));
    if (number.size() >= 2 && number.front() == '"' && number.back() == '"') {
      number = number.substr(1, number.size() - 2);
    }
    std::uint32_t seconds = 0;
    const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), seconds);
    if (ec == std::errc::result_out_of_range) return std::chrono::seconds(UINT32_MAX);
    if (ec != std::errc() || ptr != number.data() + number.size() || number.empty()) {
      return std::nullopt;
    }
    return std::chrono::seconds(seconds);
  }
  return std::nullopt;
}

std::chrono::milliseconds IdleLifetime(const bhttp::fields& response,
                                       std::chrono::milliseconds idle_timeout) noexcept {
  const auto field = response.find(bhttp::field::keep_alive);
  if (field == response.end()) return idle_timeout;
  const auto timeout = KeepAliveTimeout({field->value().data(), field->value().size()});
  if (!timeout) return idle_timeout;
  // The upstream's clock starts when it finished writing the response, ours a little
  // later, and a request needs time to reach it: N exactly would race its close.
  const std::chrono::milliseconds announced = *timeout;
  const auto margin = std::min<std::chrono::milliseconds>(announced / 2, std::chrono::seconds(1));
  return std::min(idle_timeout, announced - margin);
}

}  // namespace vigil::http::internal

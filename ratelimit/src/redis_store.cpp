#include <stdexcept>
#include <utility>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "redis_connection.hpp"

namespace vigil::ratelimit {

namespace internal {

StoreState::StoreState(RedisOptions options, std::size_t connections, telemetry::Registry& metrics,
                       telemetry::Logger& log)
    : options_(std::move(options)),
      up_gauge_(metrics
                    .GaugeFamily("vigil_ratelimit_store_up",
                                 "1 while every connection to the shared rate-limit store is up.",
                                 {"store"})
                    .WithLabels({"redis"})),
      log_(log),
      connections_(connections) {
  auto& errors = metrics.CounterFamily(
      "vigil_ratelimit_store_errors_total",
      "Rate-limit decisions and connection attempts the shared store failed, by reason.",
      {"store", "reason"});
  // Every reason from the start, so that rates over them begin at 0.
  for (std::size_t i = 1; i < errors_.size(); ++i) {
    errors_[i] = &errors.WithLabels({"redis", ToString(static_cast<StoreError>(i))});
  }
  up_gauge_.Set(0);
}

void StoreState::Count(StoreError error) noexcept {
  const auto i = static_cast<std::size_t>(error);
  if (i < errors_.size() && errors_[i] != nullptr) errors_[i]->Inc();
}

void StoreState::ConnectionUp() {
  std::lock_guard lock(mu_);
  if (stopped_ || ++connections_up_ < connections_) return;
  all_up_.store(true, std::memory_order_relaxed);
  up_gauge_.Set(1);
  if (!failing_) return;
  failing_ = false;
  log_.Info(
      "rate-limit store available again",
      {{"store", "redis"}, {"server.address", options_.host}, {"server.port", options_.port}});
}

void StoreState::ConnectionDown(StoreError reason, bool was_up, std::string_view detail) {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  if (was_up) --connections_up_;
  all_up_.store(false, std::memory_order_relaxed);
  up_gauge_.Set(0);
  if (failing_) return;  // one line per episode, however many connections and attempts fail
  failing_ = true;
  log_.Warn("rate-limit store unavailable", {{"store", "redis"},
                                             {"reason", ToString(reason)},
                                             {"error.message", detail},
                                             {"server.address", options_.host},
                                             {"server.port", options_.port}});
}

void StoreState::Stopped() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  all_up_.store(false, std::memory_order_relaxed);
  up_gauge_.Set(0);
}

}  // namespace internal

struct RedisStore::Impl {
  std::shared_ptr<internal::StoreState> state;
  std::vector<std::shared_ptr<internal::Connection>> connections;
  bool started = false;
  bool stopped = false;
};

RedisStore::RedisStore(std::vector<boost::asio::any_io_executor> executors, RedisOptions options,
                       telemetry::Telemetry& telemetry)
    : impl_(std::make_shared<Impl>()) {
  if (executors.empty()) throw std::invalid_argument("RedisStore needs at least one executor");
  impl_->state = std::make_shared<internal::StoreState>(std::move(options), executors.size(),
                                                        telemetry.metrics(), telemetry.log());
  for (auto& executor : executors) {
    impl_->connections.push_back(
        std::make_shared<internal::Connection>(std::move(executor), impl_->state));
  }
}

RedisStore::~RedisStore() { Stop(); }

void RedisStore::Start() {
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  for (const auto& connection : impl_->connections) connection->Start();
}

void RedisStore::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->state->Stopped();
  if (!impl_->started) return;
  for (const auto& connection : impl_->connections) connection->Stop();
}

boost::asio::awaitable<SharedDecision> RedisStore::Decide(std::size_t worker, std::string_view key,
                                                          Rate rate, std::int64_t cost) {
  return impl_->connections.at(worker)->Decide(key, rate, cost);
}

bool RedisStore::up() const noexcept { return impl_->state->up(); }

}  // namespace vigil::ratelimit

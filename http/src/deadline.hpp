// A moving deadline for one socket, cheap enough to reset on every request.
//
// Setting a deadline only stores a time point; one timer per socket wakes up when the
// earliest deadline may have passed, re-arms itself if the deadline moved later, and
// otherwise cancels the socket's pending operations (without closing it, so that the
// server can still answer 408). Compared with re-arming an Asio timer per operation,
// this saves a timer-queue update (often a timerfd syscall) on every read and write.
//
// Thread-safety: used on the socket's own worker thread only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>

namespace vigil::http::internal {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  Deadline(boost::asio::any_io_executor executor, boost::asio::ip::tcp::socket& socket)
      : state_(std::make_shared<State>(std::move(executor), socket)) {}
  ~Deadline() { Stop(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Operations still pending `timeout` from now are cancelled.
  void Set(Clock::duration timeout) {
    State& s = *state_;
    s.deadline = Clock::now() + timeout;
    s.expired = false;
    if (!s.armed || s.deadline < s.armed_at) Arm(state_, s.deadline);
  }
  void Clear() noexcept { state_->deadline = Clock::time_point::max(); }
  // True when the last deadline passed and cancelled the socket's operations.
  bool expired() const noexcept { return state_->expired; }
  // Detaches from the socket (which may then be destroyed).
  void Stop() noexcept {
    if (state_ && !state_->stopped) {
      state_->stopped = true;
      state_->socket = nullptr;
      state_->timer.cancel();
    }
  }

 private:
  struct State {
    State(boost::asio::any_io_executor executor, boost::asio::ip::tcp::socket& s)
        : timer(std::move(executor)), socket(&s) {}
    boost::asio::steady_timer timer;
    boost::asio::ip::tcp::socket* socket;
    Clock::time_point deadline = Clock::time_point::max();
    Clock::time_point armed_at = Clock::time_point::max();
    unsigned generation = 0;
    bool armed = false;
    bool expired = false;
    bool stopped = false;
  };

  static void Arm(const std::shared_ptr<State>& state, Clock::time_point when) {
    State& s = *state;
    s.armed = true;
    s.armed_at = when;
    const unsigned generation = ++s.generation;
    s.timer.expires_at(when);
    s.timer.async_wait([state, generation](const boost::system::error_code&) {
      State& st = *state;
      // A newer Arm() replaced this wait, or the socket is gone.
      if (st.stopped || generation != st.generation) return;
      st.armed = false;
      if (st.deadline == Clock::time_point::max()) return;
      if (Clock::now() >= st.deadline) {
        st.expired = true;
        boost::system::error_code ignored;
        st.socket->cancel(ignored);
      } else {
        Arm(state, st.deadline);
      }
    });
  }

  std::shared_ptr<State> state_;
};

}  // namespace vigil::http::internal

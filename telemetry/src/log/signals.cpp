// Registry of live loggers, exit hook and signal handlers.
#include "log/signals.hpp"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "log/logger_core.hpp"

namespace vigil::telemetry::internal {
namespace {

std::array<std::atomic<LoggerCore*>, kMaxLiveLoggers> g_live{};
// Hooks currently walking g_live; UnregisterLive waits for them (a Dekker pair with the
// slot store, hence sequentially consistent operations on both sides).
std::atomic<int> g_hook_users{0};

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
struct sigaction g_previous_fatal[std::size(kFatalSignals)];
std::atomic<bool> g_fatal_in_progress{false};

struct sigaction g_previous_hup;
std::atomic<std::uint32_t> g_hup_generation{0};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

template <typename Fn>
void ForEachLive(Fn&& fn) noexcept {
  g_hook_users.fetch_add(1);
  for (auto& slot : g_live) {
    if (LoggerCore* core = slot.load(); core != nullptr) {
      fn(core);
    }
  }
  g_hook_users.fetch_sub(1);
}

// exit() without destroying a logger (a leaked or static one whose turn has not come):
// write what it holds before the process goes.
void FlushAtExit() {
  ForEachLive([](LoggerCore* core) { core->FlushForExit(); });
}

// fork(): glibc runs these handlers one fork at a time, on the forking thread.
std::array<LoggerCore*, kMaxLiveLoggers> g_locked_for_fork{};

void BeforeFork() {
  g_hook_users.fetch_add(1);  // keeps the cores alive until AfterFork*
  for (std::size_t i = 0; i < g_live.size(); ++i) {
    LoggerCore* core = g_live[i].load();
    g_locked_for_fork[i] = core;
    if (core != nullptr) {
      core->BeforeFork();
    }
  }
}

void AfterFork(bool in_child) {
  for (LoggerCore*& core : g_locked_for_fork) {
    if (core != nullptr) {
      core->AfterFork(in_child);
    }
    core = nullptr;
  }
  g_hook_users.fetch_sub(1);
}

void AfterForkInParent() { AfterFork(false); }
void AfterForkInChild() { AfterFork(true); }

void OnFatalSignal(int sig, siginfo_t* info, void*) {
  const int saved_errno = errno;
  // Previous dispositions first: a second fault while draining then ends the process as
  // it would have ended without us, instead of recursing.
  for (std::size_t i = 0; i < std::size(kFatalSignals); ++i) {
    sigaction(kFatalSignals[i], &g_previous_fatal[i], nullptr);
  }
  if (!g_fatal_in_progress.exchange(true)) {
    ForEachLive([](LoggerCore* core) { core->DrainNow(); });
  }
  errno = saved_errno;
  // A fault raised by the kernel recurs when the instruction is retried on return,
  // reaching the previous disposition with its original siginfo. A signal sent by
  // raise(), abort() or kill() has to be sent again; it stays pending until we return.
  if (info == nullptr || info->si_code <= 0) {
    raise(sig);
  }
}

void OnHup(int sig, siginfo_t* info, void* context) {
  g_hup_generation.fetch_add(1, std::memory_order_relaxed);
  if ((g_previous_hup.sa_flags & SA_SIGINFO) != 0) {
    if (g_previous_hup.sa_sigaction != nullptr) {
      g_previous_hup.sa_sigaction(sig, info, context);
    }
  } else if (g_previous_hup.sa_handler != SIG_DFL && g_previous_hup.sa_handler != SIG_IGN) {
    g_previous_hup.sa_handler(sig);
  }
}

}  // namespace

void RegisterLive(LoggerCore* core) noexcept {
  static const bool hooked = std::atexit(FlushAtExit) == 0 &&
                             pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild) == 0;
  (void)hooked;
  for (auto& slot : g_live) {
    LoggerCore* expected = nullptr;
    if (slot.compare_exchange_strong(expected, core)) {
      return;
    }
  }
}

void UnregisterLive(LoggerCore* core) noexcept {
  for (auto& slot : g_live) {
    LoggerCore* expected = core;
    if (slot.compare_exchange_strong(expected, nullptr)) {
      break;
    }
  }
  while (g_hook_users.load() != 0) {
    sched_yield();
  }
}

void InstallFatalHandlers() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = OnFatalSignal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < std::size(kFatalSignals); ++i) {
      sigaction(kFatalSignals[i], &action, &g_previous_fatal[i]);
    }
  });
}

void InstallHupHandler() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = OnHup;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGHUP, &action, &g_previous_hup);
  });
}

std::uint32_t HupGeneration() noexcept { return g_hup_generation.load(std::memory_order_relaxed); }

}  // namespace vigil::telemetry::internal

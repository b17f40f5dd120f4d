// Lines survive the process ending abruptly: fatal signals, abort(), exit() without
// destroying the logger, a fatal-level line followed by _exit(). Each case runs in a
// forked child writing to an in-memory file the parent reads afterwards.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#include <vigil/telemetry/log.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/log_lines.hpp>
#include <vigil/testing/text.hpp>

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer installs its own SIGSEGV/SIGBUS/SIGFPE handlers, which our handler
// chains to: the child then exits with an error status instead of dying by the signal.
constexpr bool kSanitizerOwnsFaults = true;
#else
constexpr bool kSanitizerOwnsFaults = false;
#endif

namespace vigil::telemetry {
namespace {

using test_support::JsonLine;

struct ChildResult {
  int status = 0;
  std::vector<JsonLine> lines;
};

// Runs body(fd) in a child process; the child's logger writes to `fd`.
template <typename Body>
ChildResult RunChild(Body body) {
  test_support::MemFile out;
  const pid_t pid = fork();
  if (pid == 0) {
    body(out.fd());
    _exit(0);
  }
  ChildResult result;
  EXPECT_EQ(waitpid(pid, &result.status, 0), pid);
  result.lines = out.LogLines();
  return result;
}

LoggerOptions ChildOptions(int fd) {
  LoggerOptions o;
  o.fd = fd;
  o.handle_signals = true;
  return o;
}

std::string Msg(const JsonLine& line) { return line.Text("msg"); }

void ExpectDiedBy(int status, int sig) {
  if (kSanitizerOwnsFaults && sig != SIGABRT && sig != SIGILL) {
    EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  } else {
    ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
    EXPECT_EQ(WTERMSIG(status), sig);
  }
}

TEST(LogSignal, RaisedFatalSignalsFlushAndKeepTheirDisposition) {
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    SCOPED_TRACE(testing::Message() << "signal " << sig);
    const ChildResult r = RunChild([sig](int fd) {
      Logger log(ChildOptions(fd));
      log.Info("before the signal", {{"signal", sig}});
      raise(sig);
    });
    ExpectDiedBy(r.status, sig);
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(Msg(r.lines[0]), "before the signal");
  }
}

TEST(LogSignal, RealSegmentationFault) {
  const ChildResult r = RunChild([](int fd) {
    Logger log(ChildOptions(fd));
    log.Error("about to fault");
    // An unmapped address the compiler cannot see through (not null, so no UB check).
    volatile std::uintptr_t address = 16;
    *reinterpret_cast<volatile int*>(address) = 1;  // NOLINT(performance-no-int-to-ptr)
  });
  ExpectDiedBy(r.status, SIGSEGV);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(Msg(r.lines[0]), "about to fault");
}

TEST(LogSignal, AbortFlushesLinesFromEveryThread) {
  const ChildResult r = RunChild([](int fd) {
    Logger log(ChildOptions(fd));
    std::thread([&log] {
      for (int i = 0; i < 1000; ++i) {
        log.Info("worker", {{"i", i}});
      }
    }).join();
    log.Warn("main thread last words");
    std::abort();
  });
  ExpectDiedBy(r.status, SIGABRT);
  ASSERT_EQ(r.lines.size(), 1001u);
  std::size_t workers = 0;
  for (const JsonLine& line : r.lines) {
    workers += Msg(line) == "worker" ? 1u : 0u;
  }
  EXPECT_EQ(workers, 1000u);
}

void ExitFromPreviousHandler(int) { _exit(42); }

TEST(LogSignal, PreviousHandlerStillRuns) {
  const ChildResult r = RunChild([](int fd) {
    struct sigaction action {};
    action.sa_handler = ExitFromPreviousHandler;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, nullptr);
    Logger log(ChildOptions(fd));  // installs its handler on top
    log.Info("chained");
    raise(SIGSEGV);
  });
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 42);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(Msg(r.lines[0]), "chained");
}

Logger* g_never_destroyed = nullptr;  // reachable, so leak checkers stay quiet

TEST(LogSignal, ExitWithoutDestroyingTheLogger) {
  const ChildResult r = RunChild([](int fd) {
    LoggerOptions o = ChildOptions(fd);
    o.handle_signals = false;  // the exit hook works without the signal handlers
    g_never_destroyed = new Logger(o);
    for (int i = 0; i < 100; ++i) {
      g_never_destroyed->Info("leaked logger", {{"i", i}});
    }
    std::exit(7);  // NOLINT(concurrency-mt-unsafe): exit() is the point of the test
  });
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 7);
  EXPECT_EQ(r.lines.size(), 100u);
}

TEST(LogSignal, FatalLevelLineIsOutBeforeImmediateExit) {
  const ChildResult r = RunChild([](int fd) {
    LoggerOptions o = ChildOptions(fd);
    o.handle_signals = false;
    Logger* log = new Logger(o);
    log->Info("context");
    log->Fatal("cannot continue", {{"error.type", "config"}});
    _exit(3);  // no destructors, no exit hooks
  });
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 3);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(Msg(r.lines[1]), "cannot continue");
  EXPECT_EQ(r.lines[1].Text("level"), "fatal");
}

TEST(LogSignal, ChildOfALoggingProcessWritesItsLinesOnFlush) {
  // fork() copies a logger but not its backend thread; the child's Flush writes
  // synchronously instead of waiting for a thread that does not exist.
  test_support::MemFile out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.handle_signals = false;
    Logger log(o);
    log.Info("parent before fork");
    log.Flush();
    const pid_t pid = fork();
    if (pid == 0) {
      log.Info("child");
      log.Flush();
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    log.Info("parent after fork");
  }
  const std::string all = out.Text();
  EXPECT_NE(all.find("\"msg\":\"parent before fork\""), std::string::npos);
  EXPECT_NE(all.find("\"msg\":\"child\""), std::string::npos);
  EXPECT_NE(all.find("\"msg\":\"parent after fork\""), std::string::npos);
}

TEST(LogSignal, ForkedChildWithBlockingPolicyAndFullRingDoesNotHang) {
  test_support::MemFile out;
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.handle_signals = false;
    o.overflow = OverflowPolicy::kBlock;
    o.ring_bytes = 256;
    Logger log(o);
    log.Info("parent");
    log.Flush();
    const pid_t pid = fork();
    if (pid == 0) {
      // Far more than the ring holds, with no backend thread to empty it.
      for (int i = 0; i < 500; ++i) {
        log.Info("child", {{"i", i}});
      }
      log.Flush();
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
  }
  EXPECT_EQ(test_support::Occurrences(out.Text(), "\"msg\":\"child\""), 500u);
}

}  // namespace
}  // namespace vigil::telemetry

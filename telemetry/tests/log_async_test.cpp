// The asynchronous machinery: overflow policies, many threads, thread and logger
// lifetimes, Flush, file sinks and reopening, write errors.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <vigil/telemetry/log.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/log_lines.hpp>
#include <vigil/testing/text.hpp>
#include <vigil/testing/threads.hpp>

namespace vigil::telemetry {
namespace {

using test_support::JsonLine;
using test_support::MemFile;
using test_support::ParseLogLines;
using test_support::ReadFile;
using test_support::SplitLines;

// Reads a pipe on its own thread until the write end is closed.
class PipeReader {
 public:
  PipeReader() {
    EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0);
    thread_ = std::thread([this] {
      char buf[65536];
      for (ssize_t n; (n = read(fds_[0], buf, sizeof buf)) > 0;) {
        data_.append(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~PipeReader() {
    CloseWriteEnd();
    if (thread_.joinable()) {
      thread_.join();
    }
    close(fds_[0]);
  }
  PipeReader(const PipeReader&) = delete;
  PipeReader& operator=(const PipeReader&) = delete;

  int write_fd() const { return fds_[1]; }
  void CloseWriteEnd() {
    if (fds_[1] >= 0) {
      close(fds_[1]);
    }
    fds_[1] = -1;
  }
  // Closes the write end and returns everything read.
  std::vector<std::string> Finish() {
    CloseWriteEnd();
    thread_.join();
    return SplitLines(data_);
  }

 private:
  int fds_[2] = {-1, -1};
  std::string data_;
  std::thread thread_;
};

LoggerOptions Options(int fd) {
  LoggerOptions o;
  o.service = "svc";
  o.fd = fd;
  o.handle_signals = false;
  return o;
}

TEST(LogAsync, TheBackendThreadIsNamed) {
  const auto count = [] { return test_support::ThreadsNamed("vigil-log"); };
  const auto before = count();
  {
    LoggerOptions o;
    o.file_path = "/dev/null";
    o.handle_signals = false;
    Logger log(o);
    EXPECT_EQ(count(), before + 1);
  }
  EXPECT_EQ(count(), before);
}

TEST(LogAsync, FlushReturnsAfterEveryEarlierLineIsWritten) {
  MemFile out;
  Logger log(Options(out.fd()));
  for (int round = 1; round <= 50; ++round) {
    for (int i = 0; i < round; ++i) {
      log.Info("line", {{"round", round}, {"i", i}});
    }
    log.Flush();
    // No waiting: the lines must already be there.
    const auto lines = out.Lines();
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(round * (round + 1) / 2));
  }
  const auto s = log.stats();
  EXPECT_EQ(s.written, 50u * 51u / 2u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.sink_errors, 0u);
}

TEST(LogAsync, PublishesTheBackendsCpuTimeByTheFlush) {
  MemFile out;
  Logger log(Options(out.fd()));
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 2000; ++i) {
      log.Info("line", {{"round", round}, {"i", i}, {"text", "some words to format"}});
    }
    log.Flush();
    const std::uint64_t cpu = log.stats().backend_cpu_ns;
    EXPECT_GT(cpu, 0u) << "round " << round;
    EXPECT_GE(cpu, last) << "a thread's CPU time only grows";
    last = cpu;
  }
}

TEST(LogAsync, FlushCoversLinesFromOtherThreadsThatFinishedBefore) {
  MemFile out;
  Logger log(Options(out.fd()));
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 100; ++i) {
        log.Info("from thread", {{"t", t}, {"i", i}});
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  log.Flush();
  EXPECT_EQ(out.Lines().size(), 400u);
}

TEST(LogAsync, FatalLineIsWrittenBeforeTheCallReturns) {
  MemFile out;
  Logger log(Options(out.fd()));
  log.Info("before");
  log.Fatal("going down", {{"reason", "test"}});
  const auto lines = out.LogLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].Text("level"), "fatal");
  EXPECT_EQ(lines[1].Text("msg"), "going down");
}

TEST(LogAsync, DestructorWritesEverything) {
  MemFile out;
  {
    Logger log(Options(out.fd()));
    for (int i = 0; i < 10000; ++i) {
      log.Info("bulk", {{"i", i}});
    }
  }
  EXPECT_EQ(out.Lines().size(), 10000u);
}

TEST(LogAsync, DropPolicyCountsEveryLostLine) {
  // The backend blocks in write(2) on a pipe nobody reads yet, so the tiny ring fills up
  // and the producer must drop.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  LoggerOptions o = Options(fds[1]);
  o.ring_bytes = 1024;
  o.overflow = OverflowPolicy::kDrop;
  const std::string payload(200, 'p');
  constexpr int kAttempts = 5000;  // ~1.3 MB of output: far more than a pipe holds
  std::string received;
  {
    Logger log(o);
    for (int i = 0; i < kAttempts; ++i) {
      log.Info("drop test", {{"i", i}, {"payload", payload}});
    }
    const auto mid = log.stats();
    EXPECT_GT(mid.dropped, 0u);
    std::thread reader([&] {
      char buf[65536];
      for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) {
        received.append(buf, static_cast<std::size_t>(n));
      }
    });
    log.Flush();
    const auto s = log.stats();
    EXPECT_GT(s.dropped, 0u);
    EXPECT_EQ(s.written + s.dropped, static_cast<std::uint64_t>(kAttempts));
    EXPECT_EQ(s.sink_errors, 0u);
    close(fds[1]);  // the logger does not own it; its backend is idle after Flush
    reader.join();
    const auto lines = ParseLogLines(SplitLines(received));
    EXPECT_EQ(lines.size(), s.written);
    // The lines that made it are intact and in order.
    long last = -1;
    for (const JsonLine& line : lines) {
      const long i = std::stol(line.Find("i")->text);
      EXPECT_GT(i, last);
      last = i;
      EXPECT_EQ(line.Text("payload"), payload);
    }
  }
  close(fds[0]);
}

TEST(LogAsync, LineLargerThanHalfTheRingIsDroppedAndCounted) {
  MemFile out;
  LoggerOptions o = Options(out.fd());
  o.ring_bytes = 256;
  {
    Logger log(o);
    log.Info(std::string(200, 'x'));  // > 128 bytes encoded
    log.Info("small");
    log.Flush();
    const auto s = log.stats();
    EXPECT_EQ(s.dropped, 1u);
    EXPECT_EQ(s.written, 1u);
  }
  const auto lines = out.LogLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].Text("msg"), "small");
}

TEST(LogAsync, BlockPolicyLosesNothing) {
  PipeReader pipe;  // a slow-ish sink: the backend pays a pipe round trip per batch
  LoggerOptions o = Options(pipe.write_fd());
  o.ring_bytes = 256;  // a handful of lines at most
  o.overflow = OverflowPolicy::kBlock;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  {
    Logger log(o);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i) {
          log.Info("blk", {{"t", t}, {"i", i}});
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    log.Flush();
    const auto s = log.stats();
    EXPECT_EQ(s.dropped, 0u);
    EXPECT_EQ(s.written, static_cast<std::uint64_t>(kThreads * kPerThread));
  }
  const auto lines = ParseLogLines(pipe.Finish());
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::map<long, long> next;
  for (const JsonLine& line : lines) {
    const long t = std::stol(line.Find("t")->text);
    const long i = std::stol(line.Find("i")->text);
    EXPECT_EQ(i, next[t]) << "thread " << t;  // per-thread order is preserved
    next[t] = i + 1;
  }
}

TEST(LogAsync, ManyThreadsEveryLineIntact) {
  MemFile out;
  constexpr int kThreads = 16;
  constexpr int kPerThread = 3000;
  {
    LoggerOptions o = Options(out.fd());
    o.overflow = OverflowPolicy::kBlock;
    o.ring_bytes = std::size_t{16} * 1024;
    Logger log(o);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        const RequestContext ctx = RequestContext::NewRoot();
        const std::string tid = ctx.span.trace_id.ToHex();
        for (int i = 0; i < kPerThread; ++i) {
          // Varying sizes so records wrap around the ring at different offsets.
          log.Info(ctx, "concurrent",
                   {{"t", t},
                    {"i", i},
                    {"tid", tid},
                    {"pad", std::string(static_cast<std::size_t>(i % 97), 'z')}});
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
  }
  const auto lines = out.LogLines();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::map<long, long> next;
  for (const JsonLine& line : lines) {
    const long t = std::stol(line.Find("t")->text);
    const long i = std::stol(line.Find("i")->text);
    EXPECT_EQ(i, next[t]);
    next[t] = i + 1;
    EXPECT_EQ(line.Text("trace_id"), line.Text("tid"));
    EXPECT_EQ(line.Text("pad"), std::string(static_cast<std::size_t>(i % 97), 'z'));
  }
  EXPECT_EQ(next.size(), static_cast<std::size_t>(kThreads));
}

TEST(LogAsync, ThreadsThatExitWhileTheLoggerLives) {
  MemFile out;
  Logger log(Options(out.fd()));
  // Many short-lived threads: each leaves a ring behind that the backend drains and frees.
  for (int round = 0; round < 20; ++round) {
    std::vector<std::thread> threads;
    threads.reserve(8);
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&log, round, t] {
        for (int i = 0; i < 10; ++i) {
          log.Info("short-lived", {{"round", round}, {"t", t}, {"i", i}});
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
  }
  log.Flush();
  EXPECT_EQ(out.Lines().size(), 20u * 8u * 10u);
  log.Info("still working");
  log.Flush();
  EXPECT_EQ(out.Lines().size(), 20u * 8u * 10u + 1u);
}

TEST(LogAsync, LoggerDestroyedWhileThreadAliveThenThreadLogsToANewLogger) {
  MemFile first_out;
  MemFile second_out;
  MemFile third_out;
  auto first = std::make_unique<Logger>(Options(first_out.fd()));
  std::atomic<int> step{0};
  std::thread worker([&] {
    first->Info("to first");
    step.store(1);
    step.notify_one();
    step.wait(1);  // the main thread destroys `first` meanwhile
    Logger second(Options(second_out.fd()));
    second.Info("to second");
    // Another fresh logger: the dead logger's ring must not be reused for it.
    Logger third(Options(third_out.fd()));
    third.Info("to third");
  });
  step.wait(0);
  first.reset();
  step.store(2);
  step.notify_one();
  worker.join();
  const auto a = first_out.LogLines();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].Text("msg"), "to first");
  const auto b = second_out.LogLines();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].Text("msg"), "to second");
  const auto c = third_out.LogLines();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].Text("msg"), "to third");
}

TEST(LogAsync, ManyLoggersOneThread) {
  // More loggers than cache slots, used in turn, created and destroyed in between.
  MemFile out;
  std::vector<std::unique_ptr<Logger>> loggers;
  loggers.reserve(20);
  for (int i = 0; i < 20; ++i) {
    loggers.push_back(std::make_unique<Logger>(Options(out.fd())));
  }
  for (int round = 0; round < 5; ++round) {
    for (std::size_t i = 0; i < loggers.size(); ++i) {
      loggers[i]->Info("round", {{"logger", i}, {"round", round}});
    }
    loggers[static_cast<std::size_t>(round)] = std::make_unique<Logger>(Options(out.fd()));
  }
  loggers.clear();
  EXPECT_EQ(out.Lines().size(), 100u);
}

// A thread_local whose destructor logs after the thread's rings were handed over.
struct LogsOnThreadExit {
  Logger* log = nullptr;
  ~LogsOnThreadExit() {
    if (log != nullptr) {
      log->Info("from a thread_local destructor");
    }
  }
};

TEST(LogAsync, LoggingFromALateThreadLocalDestructor) {
  MemFile out;
  Logger log(Options(out.fd()));
  std::thread([&log] {
    // Constructed before the thread's ring holder, so destroyed after it.
    thread_local LogsOnThreadExit late;
    late.log = &log;
    log.Info("first");
  }).join();
  log.Flush();
  const auto lines = out.LogLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].Text("msg"), "from a thread_local destructor");
}

using test_support::TempDir;

TEST(LogAsync, FileSinkAppendsAndReopenSwitchesToTheNewFile) {
  TempDir dir;
  const std::string path = dir.File("app.log");
  { std::ofstream(path) << "existing line\n"; }
  LoggerOptions o = Options(-1);
  o.file_path = path;
  {
    Logger log(o);
    log.Info("one");
    log.Info("two");
    log.Flush();
    ASSERT_EQ(std::rename(path.c_str(), dir.File("app.log.1").c_str()), 0);
    log.Info("three");  // logged before Reopen: still goes to the renamed file
    log.Reopen();
    log.Info("four");
    log.Info("five");
  }
  const auto old_lines = SplitLines(ReadFile(dir.File("app.log.1")));
  ASSERT_EQ(old_lines.size(), 4u);
  EXPECT_EQ(old_lines[0], "existing line");  // O_APPEND, not truncated
  EXPECT_EQ(test_support::ParseLogLine(old_lines[3])->Text("msg"), "three");
  const auto new_lines = ParseLogLines(SplitLines(ReadFile(path)));
  ASSERT_EQ(new_lines.size(), 2u);
  EXPECT_EQ(new_lines[0].Text("msg"), "four");
  EXPECT_EQ(new_lines[1].Text("msg"), "five");
  const mode_t mask = umask(0);
  umask(mask);
  std::filesystem::remove(path);
  {
    Logger log(o);  // creates the file
    log.Info("x");
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777u, 0644u & ~static_cast<unsigned>(mask));
}

TEST(LogAsync, SighupReopensFileSinks) {
  TempDir dir;
  const std::string path = dir.File("hup.log");
  LoggerOptions o = Options(-1);
  o.file_path = path;
  o.handle_signals = true;
  {
    Logger log(o);
    log.Info("before");
    log.Flush();
    ASSERT_EQ(std::rename(path.c_str(), dir.File("hup.log.1").c_str()), 0);
    ASSERT_EQ(raise(SIGHUP), 0);  // the handler has run when raise returns
    log.Flush();                  // a backend pass after the signal: it reopens
    log.Info("after");
  }
  const auto old_lines = ParseLogLines(SplitLines(ReadFile(dir.File("hup.log.1"))));
  ASSERT_EQ(old_lines.size(), 1u);
  EXPECT_EQ(old_lines[0].Text("msg"), "before");
  const auto new_lines = ParseLogLines(SplitLines(ReadFile(path)));
  ASSERT_EQ(new_lines.size(), 1u);
  EXPECT_EQ(new_lines[0].Text("msg"), "after");
}

TEST(LogAsync, UnopenableFileFallsBackToStderrAndReopenRecovers) {
  TempDir dir;
  const std::string path = dir.File("missing-dir/app.log");
  LoggerOptions o = Options(-1);
  o.file_path = path;
  // Capture stderr for the duration of the test.
  MemFile err;
  const int saved_stderr = dup(2);
  ASSERT_GE(saved_stderr, 0);
  ASSERT_EQ(dup2(err.fd(), 2), 2);
  {
    Logger log(o);
    log.Info("to stderr");
    log.Flush();
    std::filesystem::create_directory(dir.File("missing-dir"));
    log.Reopen();
    log.Info("to file");
  }
  dup2(saved_stderr, 2);
  close(saved_stderr);
  const auto err_lines = err.LogLines();
  ASSERT_EQ(err_lines.size(), 1u);
  EXPECT_EQ(err_lines[0].Text("msg"), "to stderr");
  const auto file_lines = ParseLogLines(SplitLines(ReadFile(path)));
  ASSERT_EQ(file_lines.size(), 1u);
  EXPECT_EQ(file_lines[0].Text("msg"), "to file");
}

TEST(LogAsync, ClosedPipeCountsSinkErrorsWithoutCrashing) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  close(fds[0]);  // EPIPE on write; SIGPIPE must not kill the process
  {
    Logger log(Options(fds[1]));
    for (int i = 0; i < 10; ++i) {
      log.Info("nobody listens");
    }
    log.Flush();
    const auto s = log.stats();
    EXPECT_EQ(s.written, 0u);
    EXPECT_EQ(s.sink_errors, 10u);
  }
  close(fds[1]);
}

TEST(LogAsync, FullNonBlockingPipeGivesUpInsteadOfBlockingForever) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  const std::string filler(4096, 'f');
  while (write(fds[1], filler.data(), filler.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  {
    Logger log(Options(fds[1]));
    for (int i = 0; i < 5; ++i) {
      log.Info("stuck");
    }
    const auto start = std::chrono::steady_clock::now();
    log.Flush();  // EAGAIN, then poll() until the stall budget runs out
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_LT(waited, std::chrono::seconds(10));
    const auto s = log.stats();
    EXPECT_EQ(s.sink_errors, 5u);
    EXPECT_EQ(s.written, 0u);
  }
  close(fds[0]);
  close(fds[1]);
}

TEST(LogAsync, IdleBackendUsesAlmostNoCpu) {
  MemFile out;
  Logger log(Options(out.fd()));
  log.Info("warm up");
  log.Flush();
  rusage before;
  getrusage(RUSAGE_SELF, &before);
  // An idle period; the backend should sleep through it.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  rusage after;
  getrusage(RUSAGE_SELF, &after);
  auto micros = [](const timeval& tv) {
    return static_cast<long>(tv.tv_sec) * 1'000'000L + static_cast<long>(tv.tv_usec);
  };
  const long cpu = micros(after.ru_utime) - micros(before.ru_utime) + micros(after.ru_stime) -
                   micros(before.ru_stime);
  EXPECT_LT(cpu, 25'000) << "CPU microseconds used while idle";
}

TEST(LogAsync, LoneLineAfterAQuietSpellIsWrittenPromptly) {
  MemFile out;
  Logger log(Options(out.fd()));
  log.Info("first");
  log.Flush();
  // Long enough for the backend to fall into its deep (250 ms) sleep.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const auto start = std::chrono::steady_clock::now();
  log.Info("second");  // sees the backend asleep and wakes it
  EXPECT_TRUE(
      test_support::Eventually([&] { return out.Lines().size() >= 2; }, std::chrono::seconds(5)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.Lines().size(), 2u);
  EXPECT_LT(waited, std::chrono::milliseconds(150));
}

TEST(LogAsync, StdoutIsTheDefaultSink) {
  MemFile out;
  fflush(stdout);
  const int saved = dup(1);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(out.fd(), 1), 1);
  {
    LoggerOptions o;
    o.handle_signals = false;
    Logger log(o);
    log.Info("on stdout");
  }
  dup2(saved, 1);
  close(saved);
  const auto lines = out.LogLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].Text("msg"), "on stdout");
}

}  // namespace
}  // namespace vigil::telemetry

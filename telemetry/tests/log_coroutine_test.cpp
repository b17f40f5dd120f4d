// The proof that request context travels with the request and not with the thread:
// 1,000 coroutines interleaved on one thread, each logging with its own context, and
// every line carries exactly its coroutine's trace id.
#include <gtest/gtest.h>

#include <coroutine>
#include <deque>
#include <map>
#include <string>
#include <vector>
#include <vigil/telemetry/log.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/log_lines.hpp>

namespace vigil::telemetry {
namespace {

// A minimal round-robin scheduler: `co_await scheduler.Yield()` puts the coroutine at
// the back of the queue.
class Scheduler {
 public:
  struct Task {
    struct promise_type {
      Task get_return_object() {
        return Task{std::coroutine_handle<promise_type>::from_promise(*this)};
      }
      std::suspend_always initial_suspend() noexcept { return {}; }
      std::suspend_always final_suspend() noexcept { return {}; }
      void return_void() noexcept {}
      void unhandled_exception() { std::terminate(); }
    };
    std::coroutine_handle<promise_type> handle;
  };

  struct YieldAwaiter {
    Scheduler* scheduler;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { scheduler->ready_.push_back(h); }
    void await_resume() const noexcept {}
  };

  ~Scheduler() {
    for (auto h : all_) {
      h.destroy();
    }
  }

  void Spawn(Task task) {
    all_.push_back(task.handle);
    ready_.push_back(task.handle);
  }
  YieldAwaiter Yield() { return YieldAwaiter{this}; }

  // Runs until every coroutine has finished; returns the number of resumptions.
  std::size_t Run() {
    std::size_t resumes = 0;
    while (!ready_.empty()) {
      auto h = ready_.front();
      ready_.pop_front();
      h.resume();
      ++resumes;
    }
    return resumes;
  }

 private:
  std::deque<std::coroutine_handle<>> ready_;
  std::vector<std::coroutine_handle<>> all_;
};

constexpr int kCoroutines = 1000;
constexpr int kLinesEach = 5;
constexpr int kYieldsBetweenLines = 3;

Scheduler::Task Handler(Scheduler& scheduler, Logger& log, int id,
                        std::vector<std::string>& trace_ids) {
  const RequestContext ctx = RequestContext::NewRoot();
  trace_ids[static_cast<std::size_t>(id)] = ctx.span.trace_id.ToHex();
  for (int step = 0; step < kLinesEach; ++step) {
    for (int y = 0; y < kYieldsBetweenLines; ++y) {
      co_await scheduler.Yield();
    }
    log.Info(ctx, "handler step", {{"coroutine", id}, {"step", step}});
  }
}

TEST(LogCoroutines, ThousandInterleavedCoroutinesEachLogOnlyTheirOwnTraceId) {
  test_support::MemFile out;
  std::vector<std::string> trace_ids(kCoroutines);
  {
    LoggerOptions o;
    o.fd = out.fd();
    o.handle_signals = false;
    o.overflow = OverflowPolicy::kBlock;  // every line must arrive
    Logger log(o);
    Scheduler scheduler;
    for (int id = 0; id < kCoroutines; ++id) {
      scheduler.Spawn(Handler(scheduler, log, id, trace_ids));
    }
    // Each coroutine is resumed once to start and once per yield.
    EXPECT_EQ(scheduler.Run(),
              static_cast<std::size_t>(kCoroutines * (1 + kLinesEach * kYieldsBetweenLines)));
  }

  const std::vector<test_support::JsonLine> lines = out.LogLines();
  std::map<std::string, int> lines_per_trace;
  std::vector<int> next_step(kCoroutines, 0);
  int previous_id = -1;
  int switches = 0;
  for (const test_support::JsonLine& line : lines) {
    const int id = std::stoi(line.Find("coroutine")->text);
    ASSERT_GE(id, 0);
    ASSERT_LT(id, kCoroutines);
    const auto* trace = line.Find("trace_id");
    ASSERT_NE(trace, nullptr);
    EXPECT_EQ(trace->text, trace_ids[static_cast<std::size_t>(id)]) << "coroutine " << id;
    EXPECT_EQ(std::stoi(line.Find("step")->text), next_step[static_cast<std::size_t>(id)]++);
    ++lines_per_trace[trace->text];
    switches += id != previous_id ? 1 : 0;
    previous_id = id;
  }
  EXPECT_EQ(lines.size(), static_cast<std::size_t>(kCoroutines * kLinesEach));
  ASSERT_EQ(lines_per_trace.size(), static_cast<std::size_t>(kCoroutines));  // all 1000 ids
  for (const auto& [trace, count] : lines_per_trace) {
    EXPECT_EQ(count, kLinesEach) << trace;
  }
  // The lines really were interleaved: consecutive lines come from different coroutines.
  EXPECT_EQ(switches, kCoroutines * kLinesEach);
}

}  // namespace
}  // namespace vigil::telemetry

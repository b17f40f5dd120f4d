// Logger::SetObserver: every line reaches the observer as the backend read it back
// (level, time, message, context, typed fields), and none after it is removed.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>
#include <vigil/telemetry/log.hpp>
#include <vigil/testing/files.hpp>

namespace vigil::telemetry {
namespace {

struct Seen {
  LogLevel level;
  std::int64_t time;
  std::string msg;
  bool has_context;
  std::string trace_id;
  std::string request_id;
  std::vector<std::pair<std::string, std::string>> fields;  // key, type:value
};

class Recorder final : public LogObserver {
 public:
  void OnLine(const LogLineView& line) noexcept override {
    Seen s{line.level,
           line.time_unix_nano,
           std::string(line.msg),
           line.has_context,
           line.has_context ? line.trace_id.ToHex() : "",
           std::string(line.request_id),
           {}};
    for (const Field& f : line.fields) {
      std::string value;
      switch (f.type()) {
        case Field::Type::kString:
          value = "s:" + std::string(f.string_value());
          break;
        case Field::Type::kInt:
          value = "i:" + std::to_string(f.int_value());
          break;
        case Field::Type::kDouble:
          value = "d:" + std::to_string(f.double_value());
          break;
        case Field::Type::kBool:
          value = f.bool_value() ? "b:true" : "b:false";
          break;
        default:
          value = "other";
      }
      s.fields.emplace_back(std::string(f.key()), value);
    }
    std::lock_guard lock(mu_);
    seen_.push_back(std::move(s));
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<Seen> seen_;
};

LoggerOptions Options(int fd) {
  LoggerOptions o;
  o.fd = fd;
  o.handle_signals = false;
  o.level = LogLevel::kDebug;
  return o;
}

TEST(LogObserverTest, SeesEveryLineWithItsContextAndTypedFields) {
  test_support::MemFile out;
  Recorder recorder;
  Logger log(Options(out.fd()));
  log.SetObserver(&recorder);
  RequestContext ctx = RequestContext::NewRoot();
  ctx.request_id = *RequestId::FromString("req-1");
  const auto before = std::chrono::system_clock::now();
  log.Info("plain", {{"n", 3}, {"ok", true}});
  log.Error(ctx, "failed", {{"error.message", "boom"}, {"ratio", 0.5}});
  log.Debug("below nothing", {"k", "v"});
  log.Flush();
  const auto seen = recorder.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].level, LogLevel::kInfo);
  EXPECT_EQ(seen[0].msg, "plain");
  EXPECT_FALSE(seen[0].has_context);
  EXPECT_EQ(seen[0].fields,
            (std::vector<std::pair<std::string, std::string>>{{"n", "i:3"}, {"ok", "b:true"}}));
  EXPECT_EQ(seen[1].level, LogLevel::kError);
  EXPECT_TRUE(seen[1].has_context);
  EXPECT_EQ(seen[1].trace_id, ctx.span.trace_id.ToHex());
  EXPECT_EQ(seen[1].request_id, "req-1");
  EXPECT_EQ(seen[1].fields[0], (std::pair<std::string, std::string>{"error.message", "s:boom"}));
  EXPECT_EQ(seen[1].fields[1].first, "ratio");
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(before.time_since_epoch()).count();
  EXPECT_GE(seen[1].time, ns - 1'000'000);
  EXPECT_LT(seen[1].time, ns + 10'000'000'000);
  EXPECT_NE(out.Text().find("\"msg\":\"failed\""), std::string::npos) << "still written";
}

TEST(LogObserverTest, NoLineAfterTheObserverIsRemoved) {
  test_support::MemFile out;
  Recorder recorder;
  Logger log(Options(out.fd()));
  log.SetObserver(&recorder);
  log.Info("one");
  log.Flush();
  log.SetObserver(nullptr);
  log.Info("two");
  log.Flush();
  const auto seen = recorder.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].msg, "one");
}

TEST(LogObserverTest, ShowsAtMostItsFieldLimit) {
  test_support::MemFile out;
  Recorder recorder;
  Logger log(Options(out.fd()));
  log.SetObserver(&recorder);
  std::vector<std::string> keys;
  std::vector<Field> fields;
  for (std::size_t i = 0; i < LogLineView::kMaxFields + 5; ++i)
    keys.push_back("k" + std::to_string(i));
  for (const auto& k : keys) fields.emplace_back(k, 1);
  log.LogFields(LogLevel::kInfo, RequestContext::NewRoot(), "many", fields);
  log.Flush();
  const auto seen = recorder.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].fields.size(), LogLineView::kMaxFields);
  log.SetObserver(nullptr);
}

}  // namespace
}  // namespace vigil::telemetry

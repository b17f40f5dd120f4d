// RetentionPurge on targets without a database: batches until one comes back short, one
// clock reading per purge, stopping between batches, failures reported and logged once,
// the counters and the info lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>
#include <vigil/service/retention.hpp>
#include <vigil/testing/coroutine.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::service {
namespace {

using test_support::Occurrences;

// Rows of one fake table; each batch takes up to kPurgeBatch of them and records the
// `now` it was given. With `fail_at_batch` set, that batch throws instead.
struct FakeTable {
  explicit FakeTable(std::int64_t initial_rows, int fail_at = -1)
      : rows(initial_rows), fail_at_batch(fail_at) {}

  std::int64_t rows;
  std::vector<std::int64_t> batches;  // the `now` of each batch, in order
  int fail_at_batch;
};

boost::asio::awaitable<std::int64_t> DeleteBatch(FakeTable& table, std::int64_t now) {
  if (static_cast<int>(table.batches.size()) == table.fail_at_batch) {
    throw std::runtime_error("no such table");
  }
  table.batches.push_back(now);
  const std::int64_t taken = std::min(table.rows, kPurgeBatch);
  table.rows -= taken;
  co_return taken;
}

class RetentionPurgeTest : public ::testing::Test {
 protected:
  RetentionPurgeTest()
      : log_([this] {
          telemetry::LoggerOptions options;
          options.fd = file_.fd();
          options.handle_signals = false;
          return options;
        }()) {}

  PurgeTarget Target(std::string table, FakeTable& rows) {
    telemetry::Counter& counter =
        registry_.AddCounter("purged_" + table + "_total", "Rows purged.");
    counters_[table] = &counter;
    return {table, "expired " + table + " purged", counter,
            [&rows](const telemetry::RequestContext&, std::int64_t now) {
              return DeleteBatch(rows, now);
            }};
  }
  RetentionPurge Purge(std::vector<PurgeTarget> targets) {
    return RetentionPurge(
        log_, [this] { return ++clock_; }, std::move(targets));
  }
  static PurgeReport Run(const RetentionPurge& purge, std::function<bool()> stopping = {}) {
    return test_support::RunCoroutine([&] { return purge.Run(std::move(stopping)); });
  }
  double Counted(const std::string& table) { return counters_.at(table)->Value(); }
  // Everything logged so far.
  std::string Logs() {
    log_.Flush();
    return file_.Text();
  }

  test_support::MemFile file_;
  telemetry::Logger log_;
  telemetry::Registry registry_;
  std::map<std::string, telemetry::Counter*> counters_;
  std::int64_t clock_ = 1000;
};

TEST_F(RetentionPurgeTest, DeletesBatchAfterBatchUntilOneComesBackShort) {
  FakeTable keys(1203);
  const RetentionPurge purge = Purge({Target("keys", keys)});
  const PurgeReport report = Run(purge);
  EXPECT_EQ(report.Deleted("keys"), 1203);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(keys.batches.size(), 3u) << "500 + 500 + 203";
  EXPECT_EQ(keys.rows, 0);
  EXPECT_EQ(Counted("keys"), 1203.0);
  const std::string logs = Logs();
  EXPECT_EQ(Occurrences(logs, "\"msg\":\"expired keys purged\""), 1u)
      << "one line per purge" << logs;
  EXPECT_EQ(Occurrences(logs, "\"rows\":1203"), 1u) << logs;
  EXPECT_EQ(Occurrences(logs, "\"db.collection.name\":\"keys\""), 1u) << logs;

  // Exactly one full batch: one more look finds nothing. Nothing deleted: no line.
  keys.rows = 500;
  keys.batches.clear();
  EXPECT_EQ(Run(purge).Deleted("keys"), 500);
  EXPECT_EQ(keys.batches.size(), 2u);
  EXPECT_EQ(Run(purge).Deleted("keys"), 0);
  EXPECT_EQ(Occurrences(Logs(), "\"msg\":\"expired keys purged\""), 2u);
  EXPECT_EQ(Counted("keys"), 1703.0);
}

TEST_F(RetentionPurgeTest, TargetsRunInOrderOnOneClockReading) {
  FakeTable tokens(700);
  FakeTable keys(3);
  const RetentionPurge purge = Purge({Target("tokens", tokens), Target("keys", keys)});
  const PurgeReport report = Run(purge);
  ASSERT_EQ(report.tables.size(), 2u);
  EXPECT_EQ(report.tables[0].name, "tokens");
  EXPECT_EQ(report.tables[0].rows, 700);
  EXPECT_EQ(report.tables[1].name, "keys");
  EXPECT_EQ(report.tables[1].rows, 3);
  EXPECT_EQ(report.Deleted("elsewhere"), 0);
  EXPECT_EQ(tokens.batches, (std::vector<std::int64_t>{1001, 1001}));
  EXPECT_EQ(keys.batches, (std::vector<std::int64_t>{1001}));
  Run(purge);
  EXPECT_EQ(keys.batches.back(), 1002) << "each purge reads the clock again";
}

TEST_F(RetentionPurgeTest, StopsBetweenBatchesOnceToldTo) {
  FakeTable tokens(1600);
  FakeTable keys(3);
  const RetentionPurge purge = Purge({Target("tokens", tokens), Target("keys", keys)});
  // Asked before each target and after each batch: stop after the second batch.
  const PurgeReport report = Run(purge, [&tokens] { return tokens.batches.size() >= 2; });
  EXPECT_EQ(report.Deleted("tokens"), 1000);
  EXPECT_EQ(report.Deleted("keys"), 0) << "no later target starts";
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(keys.batches.size(), 0u);

  // Shutting down already: nothing starts.
  EXPECT_EQ(Run(purge, [] { return true; }).Deleted("tokens"), 0);
  EXPECT_EQ(tokens.batches.size(), 2u);
}

TEST_F(RetentionPurgeTest, AFailureEndsThePurgeWithOneWarnLineAndIsReported) {
  FakeTable tokens(1600, 1);
  FakeTable keys(3);
  const RetentionPurge purge = Purge({Target("tokens", tokens), Target("keys", keys)});
  PurgeReport report;
  EXPECT_NO_THROW(report = Run(purge));
  EXPECT_EQ(report.error, "no such table");
  EXPECT_EQ(report.Deleted("tokens"), 500) << "the batch before the failure counts";
  EXPECT_EQ(report.Deleted("keys"), 0);
  EXPECT_EQ(keys.batches.size(), 0u);
  EXPECT_EQ(Counted("tokens"), 500.0);
  const std::string logs = Logs();
  EXPECT_EQ(Occurrences(logs, "\"level\":\"warn\",\"msg\":\"retention purge failed\""), 1u) << logs;
  EXPECT_EQ(Occurrences(logs, "\"error.message\":\"no such table\""), 1u) << logs;
  EXPECT_EQ(Occurrences(logs, "\"db.collection.name\":\"tokens\""), 2u) << "info and warn" << logs;
  EXPECT_EQ(Occurrences(logs, "\"db.collection.name\":\"keys\""), 0u) << logs;

  // The next purge starts over from what is left.
  tokens.fail_at_batch = -1;
  report = Run(purge);
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(report.Deleted("tokens"), 1100);
  EXPECT_EQ(report.Deleted("keys"), 3);
}

}  // namespace
}  // namespace vigil::service

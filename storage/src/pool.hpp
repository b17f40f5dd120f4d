// The Database behind Database::Open: a fixed set of connections, each owned by one
// thread, fed from one bounded queue of jobs.
//
// A job is one transaction: the thread that takes it runs BEGIN, the caller's work and
// COMMIT (ROLLBACK when the work throws), then hands the outcome to the job's `done`
// callback. A prober thread asks, every kProbeInterval, for a SELECT 1 on the next
// connection to fall idle; Healthy() reads the latest answer.
//
//   Pool pool(options, telemetry);                 // connects every connection
//   pool.Migrate("catalog", kMigrations);
//   pool.TransactBlocking(ctx, [](Session& s) { ... });
//
// Thread-safety: as Database (every public member may be called from any thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "connection.hpp"
#include "sqlite_connection.hpp"

namespace vigil::storage {

class Pool final : public Database {
 public:
  // How often the health probe runs, and how long a requested probe may wait for an
  // idle connection before the database counts as unhealthy.
  static constexpr std::chrono::milliseconds kProbeInterval{2000};
  static constexpr std::chrono::milliseconds kProbeDeadline{5000};

  Pool(const DatabaseOptions& options, telemetry::Telemetry& telemetry);
  // Lets running transactions finish; queued ones fail with Unavailable.
  ~Pool() override;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  void Migrate(std::string_view service, std::span<const Migration> migrations) override;
  bool Healthy() const noexcept override { return healthy_.load(std::memory_order_relaxed); }
  Engine engine() const noexcept override { return options_.engine; }

 protected:
  void Submit(const telemetry::RequestContext& context, std::function<void(Session&)> work,
              std::function<void(std::exception_ptr)> done) override;

 private:
  struct Job {
    telemetry::SpanContext parent;
    std::function<void(Session&)> work;
    std::function<void(std::exception_ptr)> done;
    std::chrono::steady_clock::time_point queued_at;
  };

  void Serve(Connection& connection);
  // BEGIN, the work, COMMIT (ROLLBACK when the work throws); the failure, if any.
  static std::exception_ptr RunTransaction(Connection& connection, Job& job);
  void Probe();

  const DatabaseOptions options_;
  telemetry::Gauge& in_use_;
  telemetry::Gauge& idle_gauge_;
  telemetry::Histogram& wait_;
  std::mutex sqlite_write_lock_;
  // SQLite files only; declared before the connections, which report to it.
  std::unique_ptr<SqliteCheckpointer> checkpointer_;
  std::vector<std::unique_ptr<Connection>> connections_;

  std::mutex mu_;
  std::condition_variable work_cv_;   // to connection threads: a job, a probe or stop
  std::condition_variable probe_cv_;  // to the prober: stop
  std::deque<Job> queue_;
  std::size_t idle_threads_ = 0;  // connection threads waiting on work_cv_
  bool stopping_ = false;
  bool probe_due_ = false;
  std::chrono::steady_clock::time_point probe_requested_at_;
  std::atomic<bool> healthy_{true};

  std::vector<std::thread> threads_;
  std::thread prober_;
};

}  // namespace vigil::storage

// The retention purge: deleting, periodically and in small transactions, the rows a
// service keeps only for a while (auth's expired refresh-token families and retired
// signing keys, orders' expired Idempotency-Keys).
//
// A purge walks its targets in order. For each it deletes batch after batch of at most
// kPurgeBatch rows, each batch its own transaction (so that no purge holds SQLite's write
// lock for more than a few milliseconds), until a batch comes back short. It counts the
// rows in each target's counter, logs one info line per target it deleted from (not one
// per batch), and stops between two batches once `stopping` says so. A failure (the
// database unavailable, a table missing) ends the purge with one warn line naming the
// table and is reported, never thrown: the next period starts over from what is left.
//
//   service::RetentionPurge purge(log, [] { return service::WallClockMillis(); },
//       {{"idempotency_keys", "expired idempotency keys purged", purged_counter,
//         [&store](const telemetry::RequestContext& ctx, std::int64_t now_ms) {
//           return store.PurgeKeys(ctx, now_ms); }}});
//   service::StartPurges(host, purge);  // 30 s after start, then every 10 minutes
//
// Thread-safety: Run() may be called from any thread, several at once, if the targets'
// delete functions allow it; the counters and the logger are thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/service/service.hpp>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::service {

// Rows deleted per purge transaction: a target's delete statement takes at most this many
// (its LIMIT), and a batch this full means more may be due.
inline constexpr std::int64_t kPurgeBatch = 500;

// When purges run unless told otherwise: 30 s after the service starts serving, then
// 10 minutes after the previous purge ended.
inline constexpr Schedule kPurgeSchedule{std::chrono::seconds(30), std::chrono::minutes(10)};

// One kind of row a purge deletes.
struct PurgeTarget {
  // The table, as the db.collection.name of the target's log lines and in PurgeReport.
  std::string table;
  // The info line logged when the purge deleted rows of this target, with their count.
  std::string purged_message;
  // Counts the rows deleted.
  telemetry::Counter& purged;
  // Deletes, in one transaction, at most kPurgeBatch rows due at `now` (the purge's
  // clock, read once per purge) and returns how many it deleted. Throws on failure.
  std::function<boost::asio::awaitable<std::int64_t>(const telemetry::RequestContext&,
                                                     std::int64_t now)>
      delete_batch;
};

// What one purge deleted, and why it stopped early if it did.
struct PurgeReport {
  struct Table {
    std::string name;
    std::int64_t rows = 0;
  };
  std::vector<Table> tables;  // one per target, in order; 0 rows for those not reached
  std::string error;          // empty when no target failed

  // The rows deleted from `table`; 0 for a table that is not a target.
  std::int64_t Deleted(std::string_view table) const noexcept;
};

class RetentionPurge {
 public:
  // `now` is read once at the start of each purge and handed to every delete_batch, in
  // the unit the targets expect (a service's clock may be replaced in tests). `log` and
  // the targets' counters must outlive the purge.
  RetentionPurge(telemetry::Logger& log, std::function<std::int64_t()> now,
                 std::vector<PurgeTarget> targets);

  // Runs one purge as the header comment describes. Never throws.
  boost::asio::awaitable<PurgeReport> Run(std::function<bool()> stopping = {}) const;

 private:
  telemetry::Logger& log_;
  std::function<std::int64_t()> now_;
  std::vector<PurgeTarget> targets_;
};

// Runs purge.Run() on the host's first worker as `schedule` says (ServiceHost::Every),
// from when the runtime runs until it stops. No purge starts, and a running one stops
// between two batches, once the host's health says the service is shutting down; a purge
// still waiting for the database when the runtime stops is abandoned with the runtime's
// other work, like any request's transaction. `purge` must outlive the runtime's last run
// (an object the host owns, or one owned by such an object, does).
void StartPurges(ServiceHost& host, const RetentionPurge& purge,
                 Schedule schedule = kPurgeSchedule);

}  // namespace vigil::service

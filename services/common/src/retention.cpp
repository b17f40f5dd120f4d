#include <exception>
#include <vigil/service/retention.hpp>

namespace vigil::service {

std::int64_t PurgeReport::Deleted(std::string_view table) const noexcept {
  for (const Table& t : tables) {
    if (t.name == table) return t.rows;
  }
  return 0;
}

RetentionPurge::RetentionPurge(telemetry::Logger& log, std::function<std::int64_t()> now,
                               std::vector<PurgeTarget> targets)
    : log_(log), now_(std::move(now)), targets_(std::move(targets)) {}

boost::asio::awaitable<PurgeReport> RetentionPurge::Run(std::function<bool()> stopping) const {
  const auto stop = [&stopping] { return stopping && stopping(); };
  PurgeReport report;
  for (const PurgeTarget& target : targets_) report.tables.push_back({target.table, 0});
  const telemetry::RequestContext context{};
  std::size_t current = 0;
  try {
    const std::int64_t now = now_();
    for (; current < targets_.size() && !stop(); ++current) {
      const PurgeTarget& target = targets_[current];
      for (;;) {
        const std::int64_t deleted = co_await target.delete_batch(context, now);
        report.tables[current].rows += deleted;
        target.purged.Inc(static_cast<double>(deleted));
        if (deleted < kPurgeBatch || stop()) break;
      }
    }
  } catch (const std::exception& e) {
    report.error = e.what();
  } catch (...) {
    report.error = "unknown error";
  }

  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (report.tables[i].rows > 0) {
      log_.Info(targets_[i].purged_message,
                {{"db.collection.name", targets_[i].table}, {"rows", report.tables[i].rows}});
    }
  }
  if (!report.error.empty()) {
    std::string_view table;
    if (current < targets_.size()) table = targets_[current].table;
    log_.Warn("retention purge failed",
              {{"db.collection.name", table}, {"error.message", report.error}});
  }
  co_return report;
}

void StartPurges(ServiceHost& host, const RetentionPurge& purge, Schedule schedule) {
  const http::Health& health = host.health();
  host.Every(schedule, [&purge, &health]() -> boost::asio::awaitable<void> {
    co_await purge.Run([&health] { return health.shutting_down(); });
  });
}

}  // namespace vigil::service

#include "pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <bit>
#include <set>
#include <string>

#include "postgres_connection.hpp"
#include "sqlite_connection.hpp"

namespace vigil::storage {
namespace {

namespace tel = vigil::telemetry;

constexpr std::size_t kMaxConnections = 1024;

// FNV-1a: stable across processes and builds (std::hash is neither), so every replica
// takes the same advisory lock for a service.
std::int64_t LockKey(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return std::bit_cast<std::int64_t>(h);
}

std::int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Validate(const DatabaseOptions& options) {
  if (options.target.empty()) throw DatabaseError("database: no target (file path or URL) given");
  if (options.connections == 0 || options.connections > kMaxConnections) {
    throw DatabaseError("database: connections must be from 1 to " +
                        std::to_string(kMaxConnections));
  }
  // Each connection to ":memory:" is a database of its own.
  if (options.engine == Engine::kSqlite && options.target == ":memory:" &&
      options.connections != 1) {
    throw DatabaseError("sqlite: \":memory:\" needs connections = 1");
  }
}

}  // namespace

std::unique_ptr<Database> Database::Open(const DatabaseOptions& options,
                                         telemetry::Telemetry& telemetry) {
  return std::make_unique<Pool>(options, telemetry);
}

Pool::Pool(const DatabaseOptions& options, telemetry::Telemetry& telemetry)
    : options_(options),
      in_use_(telemetry.metrics()
                  .GaugeFamily("vigil_db_pool_connections",
                               "Database connections of the pool, by state (in_use or idle).",
                               {"state"})
                  .WithLabels({"in_use"})),
      idle_gauge_(telemetry.metrics()
                      .GaugeFamily("vigil_db_pool_connections",
                                   "Database connections of the pool, by state (in_use or idle).",
                                   {"state"})
                      .WithLabels({"idle"})),
      wait_(telemetry.metrics().AddHistogram(
          "vigil_db_pool_wait_seconds", "Time a database call waited for a free connection.")) {
  Validate(options_);
  DatabaseInstruments instruments{&telemetry.metrics().HistogramFamily(
      "db_client_operation_duration_seconds", "Duration of database client operations.",
      {"db_system", "db_operation_name"})};
  // An in-memory database has no log to checkpoint.
  if (options_.engine == Engine::kSqlite && options_.target != ":memory:") {
    checkpointer_ = std::make_unique<SqliteCheckpointer>(options_, &sqlite_write_lock_);
  }
  connections_.reserve(options_.connections);
  for (std::size_t i = 0; i < options_.connections; ++i) {
    if (options_.engine == Engine::kSqlite) {
      connections_.push_back(std::make_unique<SqliteConnection>(
          options_, telemetry.tracer(), instruments, &sqlite_write_lock_, checkpointer_.get()));
    } else {
      connections_.push_back(
          std::make_unique<PostgresConnection>(options_, telemetry.tracer(), instruments));
    }
  }
  // Gauges count up and down (never Set) so that several databases in one process, which
  // share the registry, add up.
  idle_gauge_.Inc(static_cast<double>(connections_.size()));
  threads_.reserve(connections_.size());
  for (auto& connection : connections_) {
    threads_.emplace_back([this, c = connection.get()] { Serve(*c); });
  }
  prober_ = std::thread([this] { Probe(); });
}

Pool::~Pool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  probe_cv_.notify_all();
  for (auto& t : threads_) t.join();
  prober_.join();
  for (Job& job : queue_) {
    job.work = nullptr;
    try {
      job.done(std::make_exception_ptr(Unavailable("database: closed before the call ran")));
    } catch (...) {
    }
  }
  queue_.clear();
  idle_gauge_.Dec(static_cast<double>(connections_.size()));
}

void Pool::Submit(const telemetry::RequestContext& context, std::function<void(Session&)> work,
                  std::function<void(std::exception_ptr)> done) {
  Job job{context.span, std::move(work), std::move(done), std::chrono::steady_clock::now()};
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw Unavailable("database: closed");
    // Jobs an idle thread is about to take do not wait.
    if (queue_.size() + 1 > idle_threads_ + options_.max_waiting) {
      throw Unavailable("database: " + std::to_string(options_.max_waiting) +
                        " calls already wait for a connection");
    }
    queue_.push_back(std::move(job));
  }
  work_cv_.notify_one();
}

void Pool::Serve(Connection& connection) {
  pthread_setname_np(pthread_self(), "vigil-db");
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_threads_;
    work_cv_.wait(lock, [&] { return stopping_ || probe_due_ || !queue_.empty(); });
    --idle_threads_;
    if (stopping_) return;
    if (probe_due_) {
      probe_due_ = false;
      lock.unlock();
      healthy_.store(connection.Ping(), std::memory_order_relaxed);
      lock.lock();
      continue;
    }
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();

    const auto waited = std::chrono::steady_clock::now() - job.queued_at;
    wait_.Observe(std::chrono::duration<double>(waited).count(), job.parent);
    idle_gauge_.Dec();
    in_use_.Inc();
    const std::exception_ptr error = RunTransaction(connection, job);
    // Before `done`: a caller that reads the gauges once it has its result sees this
    // connection idle again.
    in_use_.Dec();
    idle_gauge_.Inc();
    // The work goes first: once `done` has run, the caller may have moved on and whatever
    // the work refers to may be gone.
    job.work = nullptr;
    try {
      job.done(error);
    } catch (...) {
    }
    job.done = nullptr;
    lock.lock();
  }
}

std::exception_ptr Pool::RunTransaction(Connection& connection, Job& job) {
  connection.set_parent(job.parent);
  try {
    connection.Begin();
    try {
      job.work(connection);
    } catch (...) {
      connection.Rollback();
      throw;
    }
    connection.Commit();
    return nullptr;
  } catch (...) {
    return std::current_exception();
  }
}

void Pool::Probe() {
  pthread_setname_np(pthread_self(), "vigil-db-probe");
  std::unique_lock lock(mu_);
  for (;;) {
    probe_cv_.wait_for(lock, kProbeInterval, [&] { return stopping_; });
    if (stopping_) return;
    const auto now = std::chrono::steady_clock::now();
    if (probe_due_) {
      // Every connection has been busy (or stuck) since the last request.
      if (now - probe_requested_at_ > kProbeDeadline) {
        healthy_.store(false, std::memory_order_relaxed);
      }
      continue;
    }
    probe_due_ = true;
    probe_requested_at_ = now;
    work_cv_.notify_one();
  }
}

void Pool::Migrate(std::string_view service, std::span<const Migration> migrations) {
  const std::string who(service);
  std::vector<const Migration*> ordered;
  for (const Migration& m : migrations) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    if (ordered[i]->version <= 0 || (i > 0 && ordered[i]->version == ordered[i - 1]->version)) {
      throw DatabaseError("migrations of " + who + ": version " +
                          std::to_string(ordered[i]->version) +
                          " is not positive or appears twice");
    }
  }

  static const Statement kApplied("SELECT version FROM schema_migrations WHERE service = $1");
  static const Statement kIsApplied(
      "SELECT 1 FROM schema_migrations WHERE service = $1 AND version = $2");
  static const Statement kRecord(
      "INSERT INTO schema_migrations (service, version, name, applied_at) "
      "VALUES ($1, $2, $3, $4)");
  const tel::RequestContext no_span;

  std::set<std::int64_t> applied;
  try {
    TransactBlocking(no_span, [&](Session& session) {
      auto& c = static_cast<Connection&>(session);
      // Concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL's catalog.
      c.LockForMigration(LockKey("vigil:schema_migrations"));
      c.ExecScript(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "service TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, "
          "applied_at BIGINT NOT NULL, PRIMARY KEY (service, version))");
      const Param params[] = {service};
      for (const Row& row : c.Execute(kApplied, params).rows) applied.insert(row.Int(0));
    });
  } catch (const std::exception& e) {
    throw DatabaseError("migrations of " + who + ": cannot read schema_migrations: " + e.what());
  }

  const std::int64_t key = LockKey("vigil:migrate:" + who);
  for (const Migration* m : ordered) {
    if (applied.contains(m->version)) continue;
    try {
      TransactBlocking(no_span, [&](Session& session) {
        auto& c = static_cast<Connection&>(session);
        c.LockForMigration(key);
        // Another process may have applied it while this one waited for the lock.
        const Param check[] = {service, m->version};
        if (!c.Execute(kIsApplied, check).rows.empty()) return;
        const bool postgres = options_.engine == Engine::kPostgres && !m->postgres_sql.empty();
        c.ExecScript(postgres ? m->postgres_sql : m->sql);
        const Param record[] = {service, m->version, m->name, UnixSeconds()};
        c.Execute(kRecord, record);
      });
    } catch (const std::exception& e) {
      throw DatabaseError("migration " + who + " " + std::to_string(m->version) + " \"" +
                          std::string(m->name) + "\" failed: " + e.what());
    }
  }
}

}  // namespace vigil::storage

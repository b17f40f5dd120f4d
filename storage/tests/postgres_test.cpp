// The PostgreSQL engine against a real PostgreSQL 15 started for this program: the
// shared checks (database_checks.hpp), each test in a database of its own, plus what
// only a server has (concurrent migrators, connection errors, broken connections).
//
// The server runs from a temporary directory on a free loopback port, as user postgres
// when this runs as root (initdb and postgres refuse root), with durability switched off
// for speed; it is stopped with SIGINT and its directory removed at the end.
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/ports.hpp>

#include "database_checks.hpp"

extern char** environ;

namespace vigil::storage {
namespace {

namespace fs = std::filesystem;
using test_support::Has;
using test_support::ReadFile;

const fs::path kBin = "/usr/lib/postgresql/15/bin";

class PostgresServer : public ::testing::Environment {
 public:
  static PostgresServer*& Instance() {
    static PostgresServer* instance = nullptr;
    return instance;
  }
  PostgresServer() { Instance() = this; }

  void SetUp() override {
    if (!fs::exists(kBin / "postgres") || !fs::exists(kBin / "initdb")) {
      FAIL() << "PostgreSQL 15 is not installed (" << kBin.string()
             << " is missing): install the Debian package postgresql (./vigil test does)";
    }
    dir_ = temp_.emplace("storage-pg").path();
    as_postgres_ = ::geteuid() == 0;
    if (as_postgres_) {
      const passwd* pw = ::getpwnam("postgres");
      ASSERT_NE(pw, nullptr) << "no user postgres to run the server as";
      ASSERT_EQ(::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid), 0);
    }
    const std::string data = (dir_ / "data").string();
    const pid_t initdb = Spawn({(kBin / "initdb").string(), "-D", data, "-U", "postgres",
                                "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
                               dir_ / "initdb.log");
    ASSERT_GT(initdb, 0);
    int status = 0;
    ::waitpid(initdb, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "initdb failed:\n"
                                                               << ReadFile(dir_ / "initdb.log");

    // Another program may take the free port before postgres binds it: try another.
    std::string failure;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (StartServer(data, &failure)) return;
      if (!Has(failure, "could not bind") && !Has(failure, "already in use")) break;
    }
    FAIL() << failure;
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);  // fast shutdown: disconnects clients, no checkpoint wait
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    temp_.reset();
  }

  std::uint16_t port() const { return port_; }
  std::string Url(std::string_view database) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + std::string(database);
  }

  // A new empty database.
  std::string CreateDatabase() {
    static int next = 0;
    const std::string name = "t" + std::to_string(next++);
    PGconn* conn = PQconnectdb(Url("postgres").c_str());
    PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string error = PQerrorMessage(conn);
    PQclear(r);
    PQfinish(conn);
    if (!ok) ADD_FAILURE() << "CREATE DATABASE " << name << ": " << error;
    return Url(name);
  }

 private:
  // Starts postgres on a free port and waits until it accepts connections. On failure,
  // `failure` tells why (with the server's log).
  bool StartServer(const std::string& data, std::string* failure) {
    port_ = test_support::UnusedPort();
    pid_ = Spawn(
        {(kBin / "postgres").string(), "-D", data, "-p", std::to_string(port_), "-k", dir_.string(),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=200"},
        dir_ / "postgres.log");
    if (pid_ <= 0) {
      *failure = "cannot start " + (kBin / "postgres").string();
      return false;
    }
    // Ready when it accepts a connection (polled); given up on early if it exited.
    const std::string admin = Url("postgres");
    bool exited = false;
    const bool ready = test_support::Eventually(
        [&] {
          int status = 0;
          exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
          return exited || PQping(admin.c_str()) == PQPING_OK;
        },
        std::chrono::seconds(30));
    if (exited) {
      pid_ = -1;
      *failure = "postgres exited:\n" + ReadFile(dir_ / "postgres.log");
      return false;
    }
    if (!ready) *failure = "postgres not ready in 30 s:\n" + ReadFile(dir_ / "postgres.log");
    return ready;
  }

  pid_t Spawn(std::vector<std::string> args, const fs::path& log) {
    if (as_postgres_) {
      args.insert(args.begin(),
                  {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"});
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : -1;
  }

  std::optional<test_support::TempDir> temp_;
  fs::path dir_;
  bool as_postgres_ = false;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

const auto* const kServer = ::testing::AddGlobalTestEnvironment(new PostgresServer);

}  // namespace

DatabaseOptions FreshDatabase(Engine) {
  DatabaseOptions options;
  options.engine = Engine::kPostgres;
  options.target = PostgresServer::Instance()->CreateDatabase();
  return options;
}

INSTANTIATE_TEST_SUITE_P(Postgres, EngineTest, ::testing::Values(Engine::kPostgres));

namespace {

class PostgresTest : public ::testing::Test {
 protected:
  std::unique_ptr<Database> Open(const DatabaseOptions& options, std::size_t connections = 2) {
    DatabaseOptions o = options;
    o.connections = connections;
    return Database::Open(o, *telemetry_);
  }

  testing_support::CapturingTelemetry telemetry_;
  tel::RequestContext ctx_ = tel::RequestContext::NewRoot();
};

TEST_F(PostgresTest, TwoDatabasesMigratingAtOnceApplyEachMigrationOnce) {
  static const Migration kOnce[] = {
      // The sleep keeps the first migrator inside its transaction while the other arrives.
      {1, "table",
       "CREATE TABLE once (v BIGINT); SELECT pg_sleep(0.2); INSERT INTO once VALUES (1)"},
      {2, "second row", "INSERT INTO once VALUES (2)"},
      {3, "third row", "INSERT INTO once VALUES (3)"},
  };
  for (int round = 0; round < 2; ++round) {
    const DatabaseOptions options = FreshDatabase(Engine::kPostgres);
    auto a = Open(options);
    auto b = Open(options);
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    std::exception_ptr failure_a;
    std::exception_ptr failure_b;
    std::thread ta([&] {
      start.wait();
      try {
        a->Migrate("svc", kOnce);
      } catch (...) {
        failure_a = std::current_exception();
      }
    });
    std::thread tb([&] {
      start.wait();
      try {
        b->Migrate("svc", kOnce);
      } catch (...) {
        failure_b = std::current_exception();
      }
    });
    go.set_value();
    ta.join();
    tb.join();
    EXPECT_FALSE(failure_a);
    EXPECT_FALSE(failure_b);
    static const Statement kRows("SELECT v FROM once ORDER BY v");
    auto rows = a->TransactBlocking(ctx_, [](Session& s) { return s.Query(kRows).rows; });
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].Int(0), 1);
    EXPECT_EQ(rows[2].Int(0), 3);
    static const Statement kApplied("SELECT count(*) FROM schema_migrations WHERE service = $1");
    EXPECT_EQ(a->TransactBlocking(
                  ctx_, [](Session& s) { return s.Query(kApplied, {"svc"}).rows.at(0).Int(0); }),
              3);
  }
}

TEST_F(PostgresTest, ConnectionErrorsNameHostAndPortButNeverThePassword) {
  const std::string secret = "Sup3rSecretPw";
  const std::string port = std::to_string(test_support::UnusedPort());
  const std::string server_port = std::to_string(PostgresServer::Instance()->port());
  struct Case {
    std::string url;
    std::string must_name;
  };
  const Case cases[] = {
      // Nothing listens there.
      {"postgresql://vigil:" + secret + "@127.0.0.1:" + port + "/catalog", "127.0.0.1:" + port},
      // The server is there, the database is not.
      {"postgresql://postgres:" + secret + "@127.0.0.1:" + server_port + "/no_such_db",
       "no_such_db"},
      {"postgresql://127.0.0.1:" + port + "/x?user=u&password=" + secret, "127.0.0.1:" + port},
  };
  for (const Case& c : cases) {
    DatabaseOptions options;
    options.engine = Engine::kPostgres;
    options.target = c.url;
    try {
      Open(options);
      ADD_FAILURE() << "connected to " << c.must_name;
    } catch (const Unavailable& e) {
      EXPECT_TRUE(Has(e.what(), c.must_name)) << e.what();
      EXPECT_FALSE(Has(e.what(), secret)) << e.what();
    }
  }
}

TEST_F(PostgresTest, ABrokenConnectionIsReplacedBeforeTheNextTransaction) {
  const DatabaseOptions options = FreshDatabase(Engine::kPostgres);
  auto db = Open(options, 1);
  auto admin = Open(options, 1);
  db->Migrate("catalog", testing_support::kMigrations);
  static const Statement kPid("SELECT pg_backend_pid()");
  auto pid_and_hits = [&] {
    return db->TransactBlocking(ctx_, [](Session& s) {
      return std::pair(s.Query(kPid).rows.at(0).Int(0),
                       s.Query(testing_support::kHits).rows.at(0).Int(0));
    });
  };
  const auto [before, hits] = pid_and_hits();
  EXPECT_EQ(hits, 0);
  // Waits (up to 5 s) until the backend is gone, so the next BEGIN meets a dead socket.
  static const Statement kTerminate(
      "SELECT pg_terminate_backend(CAST($1 AS INTEGER), CAST(5000 AS BIGINT))");
  const bool terminated = admin->TransactBlocking(
      ctx_, [&](Session& s) { return s.Query(kTerminate, {before}).rows.at(0).Text(0) == "t"; });
  ASSERT_TRUE(terminated);
  // The statements prepared on the old session are prepared again on the new one.
  const auto [after, hits_after] = pid_and_hits();
  EXPECT_NE(after, before);
  EXPECT_EQ(hits_after, 0);
  EXPECT_TRUE(db->Healthy());
}

TEST_F(PostgresTest, ADatabaseThatGoesAwayTurnsUnhealthyAndUnavailable) {
  const DatabaseOptions options = FreshDatabase(Engine::kPostgres);
  auto db = Open(options, 1);
  static const Statement kOne("SELECT 1");
  db->TransactBlocking(ctx_, [](Session& s) { s.Query(kOne); });
  EXPECT_TRUE(db->Healthy());
  // Cut every session and make reconnecting impossible.
  const std::string name = options.target.substr(options.target.rfind('/') + 1);
  PGconn* admin = PQconnectdb(PostgresServer::Instance()->Url("postgres").c_str());
  PGresult* dropped = PQexec(admin, ("DROP DATABASE " + name + " WITH (FORCE)").c_str());
  EXPECT_EQ(PQresultStatus(dropped), PGRES_COMMAND_OK) << PQerrorMessage(admin);
  PQclear(dropped);
  PQfinish(admin);

  // The next probe (every 2 s) finds out; Healthy() itself never waits.
  EXPECT_TRUE(test_support::Eventually([&] { return !db->Healthy(); }));
  try {
    db->TransactBlocking(ctx_, [](Session& s) { s.Query(kOne); });
    FAIL() << "ran on a database that is gone";
  } catch (const Unavailable& e) {
    EXPECT_TRUE(Has(e.what(), name)) << e.what();
  }
}

TEST_F(PostgresTest, AnErrorCaughtInsideTheWorkStillFailsTheTransaction) {
  const DatabaseOptions options = FreshDatabase(Engine::kPostgres);
  auto db = Open(options);
  db->Migrate("catalog", testing_support::kMigrations);
  try {
    db->TransactBlocking(ctx_, [](Session& s) {
      s.Query(testing_support::kInsertItem, {"a", "n", "c", 1, 1});
      try {
        s.Query(testing_support::kInsertItem, {"a", "n", "c", 1, 1});
      } catch (const ConstraintViolation&) {
        // Swallowed: PostgreSQL has aborted the transaction all the same.
      }
    });
    FAIL() << "the transaction looked committed";
  } catch (const DatabaseError& e) {
    EXPECT_TRUE(Has(e.what(), "rolled back")) << e.what();
  }
  EXPECT_EQ(
      db->TransactBlocking(
          ctx_, [](Session& s) { return s.Query(testing_support::kCountItems).rows.at(0).Int(0); }),
      0);
}

}  // namespace
}  // namespace vigil::storage

// The Redis store against a real redis-server (one per test, on a free port): the script's
// arithmetic against ratelimit::Decide, limits shared by replicas, pipelining, timeouts,
// NOSCRIPT, authentication, and what happens while Redis is gone (fail fast, count, one
// log line each way, come back by itself).
//
// Each store runs on io_contexts with a thread each, as a service's workers do; decisions
// are spawned onto them and awaited through futures.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <vigil/ratelimit/limiter.hpp>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/ports.hpp>
#include <vigil/testing/redis.hpp>
#include <vigil/testing/scoped_env.hpp>
#include <vigil/testing/text.hpp>

#include "redis_connection.hpp"
#include "redis_protocol.hpp"

namespace {

namespace asio = boost::asio;
namespace rl = vigil::ratelimit;
namespace tel = vigil::telemetry;
using namespace std::chrono_literals;
using rl::StoreError;
using vigil::test_support::Eventually;
using vigil::test_support::Has;
using vigil::test_support::RedisReply;
using vigil::test_support::RedisServer;
using vigil::test_support::ScopedEnv;

constexpr std::int64_t kNow = 1'700'000'000'123'457;  // Unix microseconds, every digit counts
constexpr std::int64_t kSecond = 1'000'000;
// The decisions' timeout in these tests, and how late past it a decision may still count
// as on time (a loaded machine, ASan).
constexpr auto kTimeout = 100ms;
constexpr auto kLateness = 150ms;
const rl::Rate kFivePerHour = rl::Rate::Of(5, 1h, 5);

// io_contexts with a thread each, the store's workers.
class Workers {
 public:
  explicit Workers(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.push_back(asio::make_work_guard(*contexts_.back()));
    }
    for (auto& io : contexts_) threads_.emplace_back([&io = *io] { io.run(); });
  }
  ~Workers() { Join(); }

  // Lets the threads end once their io_contexts have nothing left to do, and waits.
  void Join() {
    guards_.clear();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  std::vector<asio::any_io_executor> executors() const {
    std::vector<asio::any_io_executor> out;
    for (const auto& io : contexts_) out.push_back(io->get_executor());
    return out;
  }
  asio::io_context& operator[](std::size_t i) { return *contexts_.at(i); }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// Telemetry exporting nothing, whose log lines and metrics the test reads back.
class Observed {
 public:
  Observed() : telemetry_(Options(log_.fd())) {}
  tel::Telemetry& operator*() { return telemetry_; }

  std::vector<vigil::test_support::JsonLine> Lines() {
    telemetry_.log().Flush();
    return log_.LogLines();
  }
  std::size_t LinesSaying(std::string_view level, std::string_view msg) {
    std::size_t n = 0;
    for (const auto& line : Lines()) n += line.Text("level") == level && line.Text("msg") == msg;
    return n;
  }
  // The value of one series ("name{labels}"), -1 when absent.
  double Metric(std::string_view series) {
    const std::string text = telemetry_.metrics().Expose(tel::ExpositionFormat::kPrometheusText);
    for (const std::string& line : vigil::test_support::SplitLines(text)) {
      if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
        return std::stod(line.substr(series.size() + 1));
      }
    }
    return -1;
  }
  double Errors(StoreError reason) {
    return Metric("vigil_ratelimit_store_errors_total{store=\"redis\",reason=\"" +
                  std::string(rl::ToString(reason)) + "\"}");
  }
  double Up() { return Metric("vigil_ratelimit_store_up{store=\"redis\"}"); }

 private:
  static tel::TelemetryOptions Options(int fd) {
    tel::TelemetryOptions options;
    options.service.name = "ratelimit-test";
    options.log.service = "ratelimit-test";
    options.log.fd = fd;
    options.log.handle_signals = false;
    return options;
  }

  vigil::test_support::MemFile log_;
  tel::Telemetry telemetry_;
};

constexpr const char* kDown = "rate-limit store unavailable";
constexpr const char* kBack = "rate-limit store available again";

struct Timed {
  rl::SharedDecision result;
  std::chrono::milliseconds took;
};

// A store on workers of its own: a replica of a service. Stopped, its workers joined, then
// destroyed.
class Replica {
 public:
  Replica(rl::RedisOptions options, tel::Telemetry& telemetry, std::size_t workers = 2)
      : workers_(workers),
        store_(std::make_unique<rl::RedisStore>(workers_.executors(), std::move(options),
                                                telemetry)) {}
  ~Replica() {
    store_->Stop();
    workers_.Join();
    store_.reset();
  }

  rl::RedisStore& store() { return *store_; }
  // Starts the store and waits until it is up.
  ::testing::AssertionResult StartUp() {
    store_->Start();
    if (Eventually([&] { return store_->up(); })) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "the store did not come up";
  }

  std::future<rl::SharedDecision> Spawn(std::size_t worker, const std::string& key, rl::Rate rate,
                                        std::int64_t cost = 1) {
    return asio::co_spawn(workers_[worker], store_->Decide(worker, key, rate, cost),
                          asio::use_future);
  }
  // Runs `work` on worker `worker` and waits for its result.
  template <typename T>
  T Run(std::size_t worker, asio::awaitable<T> work) {
    return asio::co_spawn(workers_[worker], std::move(work), asio::use_future).get();
  }
  Timed Decide(std::size_t worker, const std::string& key, rl::Rate rate, std::int64_t cost = 1) {
    const auto start = std::chrono::steady_clock::now();
    Timed timed;
    timed.result = Spawn(worker, key, rate, cost).get();
    timed.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    return timed;
  }

 private:
  Workers workers_;
  std::unique_ptr<rl::RedisStore> store_;
};

rl::RedisOptions OptionsFor(const std::string& url) {
  rl::RedisOptions options = rl::RedisOptions::FromUrl(url, "VIGIL_REDIS_URL");
  options.timeout = kTimeout;
  options.backoff_min = 10ms;
  options.backoff_max = 100ms;
  return options;
}

std::string Str(std::int64_t v) { return std::to_string(v); }

// --- the script and ratelimit::Decide agree --------------------------------------------

struct ScriptCase {
  const char* name;
  rl::Rate rate;
  std::int64_t stored;  // 0: no key
  std::int64_t cost;
  bool allowed;
  std::int64_t remaining;
};

TEST(RedisScriptTest, DecidesAsDecideDoesWithRealisticTimes) {
  const rl::Rate six_s = rl::Rate::Of(10, 60s, 5);  // T = 6 s, tolerance 30 s
  const rl::Rate day = rl::Rate::Of(1, 24h, 100);   // T = 86400 s: 8.64e12 us at most ahead
  // One a minute, no burst: whether a request is on time turns on one microsecond (and what
  // it stores lives long enough to be read back).
  const rl::Rate minute = rl::Rate::Of(1, 60s, 1);
  const ScriptCase cases[] = {
      {"new key", six_s, 0, 1, true, 4},
      {"last of the burst", six_s, kNow + 24 * kSecond, 1, true, 0},
      {"one past the burst", six_s, kNow + 25 * kSecond, 1, false, 0},
      {"stale TAT is a full quota", six_s, kNow - 3600 * kSecond, 5, true, 0},
      {"cost above the burst", six_s, 0, 6, false, 5},
      {"cost 0 only asks", six_s, kNow + 12 * kSecond, 0, true, 3},
      {"a microsecond too early", minute, kNow + 1, 1, false, 0},
      {"exactly on time", minute, kNow, 1, true, 0},
      {"a day's quota, far ahead", day, kNow + 50 * day.interval_us, 50, true, 0},
      {"a day's quota, one too many", day, kNow + 50 * day.interval_us, 51, false, 50},
  };
  RedisServer redis;
  for (const ScriptCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string key = rl::internal::RedisKey(c.name);
    if (c.stored > 0) {
      ASSERT_EQ(redis.Command({"SET", key, Str(c.stored)}).text, "OK");
    } else {
      redis.Command({"DEL", key});
    }
    const RedisReply reply = redis.Command(std::vector<std::string>{
        "EVAL", std::string(rl::internal::kDecisionScript), "1", key, Str(c.rate.interval_us),
        Str(c.rate.tolerance_us), Str(c.cost), Str(kNow)});
    ASSERT_EQ(reply.type, RedisReply::Type::kArray) << reply.text;
    ASSERT_EQ(reply.elements.size(), 3u);
    EXPECT_EQ(reply.elements[0].integer, c.allowed ? 1 : 0);
    EXPECT_EQ(reply.elements[1].integer, c.stored) << "the TAT it read";
    EXPECT_EQ(reply.elements[2].integer, kNow) << "the time it decided at";

    const rl::Decision expected = rl::Decide(kNow, c.stored, c.rate, c.cost);
    EXPECT_EQ(expected.allowed, c.allowed);
    EXPECT_EQ(expected.remaining, c.remaining);
    // What the store computes from the reply is the same decision.
    const rl::Decision from_reply =
        rl::Decide(reply.elements[2].integer, reply.elements[1].integer, c.rate, c.cost);
    EXPECT_EQ(from_reply.remaining, expected.remaining);
    EXPECT_EQ(from_reply.tat_us, expected.tat_us);

    const RedisReply after = redis.Command({"GET", key});
    if (!c.allowed && c.stored == 0) {
      EXPECT_EQ(after.type, RedisReply::Type::kNil) << "a refused request stores nothing";
      continue;
    }
    EXPECT_EQ(after.text, Str(expected.tat_us)) << "every digit of the TAT is stored";
    if (c.allowed) {
      // Kept until the quota is whole again (1 ms more, rounded up), then forgotten.
      const long long ttl = redis.Command({"PTTL", key}).integer;
      const std::int64_t until_ms = (expected.tat_us - kNow + 999) / 1000 + 1;
      EXPECT_GT(ttl, 0);
      EXPECT_LE(ttl, until_ms);
      EXPECT_GT(ttl, until_ms - 5000);
    }
  }
}

// --- replies and what they mean -------------------------------------------------------

// The first reply in `bytes`, through hiredis's reader as the store reads it.
rl::internal::Reply Parse(std::string_view bytes) {
  rl::internal::ReplyReader reader;
  EXPECT_TRUE(reader.Feed(bytes.data(), bytes.size()));
  rl::internal::Reply reply = reader.Next();
  EXPECT_NE(reply, nullptr) << bytes;
  return reply;
}

TEST(RedisProtocolTest, WhatAReplyMeans) {
  const rl::Rate rate = rl::Rate::Of(5, 1h, 5);  // T = 720 s
  const std::string now = Str(kNow);
  const rl::SharedDecision allowed =
      rl::internal::ReadDecision(*Parse("*3\r\n:1\r\n:0\r\n:" + now + "\r\n"), rate, 1);
  ASSERT_EQ(allowed.error, StoreError::kNone);
  EXPECT_TRUE(allowed.decision.allowed);
  EXPECT_EQ(allowed.decision.remaining, 4);
  EXPECT_EQ(allowed.decision.tat_us, kNow + 720 * kSecond);
  const std::string full = Str(kNow + 3600 * kSecond);
  const rl::SharedDecision refused =
      rl::internal::ReadDecision(*Parse("*3\r\n:0\r\n:" + full + "\r\n:" + now + "\r\n"), rate, 1);
  ASSERT_EQ(refused.error, StoreError::kNone);
  EXPECT_FALSE(refused.decision.allowed);
  EXPECT_EQ(refused.decision.retry_after_us, 720 * kSecond);

  const std::pair<std::string, StoreError> cases[] = {
      {"-LOADING Redis is loading the dataset in memory\r\n", StoreError::kLoading},
      {"-NOAUTH Authentication required.\r\n", StoreError::kAuth},
      {"-WRONGPASS invalid username-password pair or user is disabled.\r\n", StoreError::kAuth},
      {"-ERR invalid password\r\n", StoreError::kAuth},
      {"-NOPERM this user has no permissions to run the 'evalsha' command\r\n", StoreError::kAuth},
      {"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
       StoreError::kProtocol},
      {"-ERR Error running script\r\n", StoreError::kProtocol},
      {"+OK\r\n", StoreError::kProtocol},
      {"$-1\r\n", StoreError::kProtocol},
      {"*2\r\n:1\r\n:0\r\n", StoreError::kProtocol},
      {"*3\r\n:1\r\n$1\r\n0\r\n:" + now + "\r\n", StoreError::kProtocol},
      {"*3\r\n:2\r\n:0\r\n:" + now + "\r\n", StoreError::kProtocol},
      // The script says allowed where Decide refuses (and the reverse): not to be trusted.
      {"*3\r\n:1\r\n:" + full + "\r\n:" + now + "\r\n", StoreError::kProtocol},
      {"*3\r\n:0\r\n:0\r\n:" + now + "\r\n", StoreError::kProtocol},
  };
  for (const auto& [bytes, error] : cases) {
    SCOPED_TRACE(bytes);
    EXPECT_EQ(rl::internal::ReadDecision(*Parse(bytes), rate, 1).error, error);
  }
}

TEST(RedisProtocolTest, ReadsRepliesInPiecesAndRefusesNonsense) {
  rl::internal::ReplyReader reader;
  const std::string bytes = "+OK\r\n*3\r\n:1\r\n:0\r\n:42\r\n";
  for (char c : bytes) ASSERT_TRUE(reader.Feed(&c, 1));
  const rl::internal::Reply ok = reader.Next();
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->type, REDIS_REPLY_STATUS);
  const rl::internal::Reply array = reader.Next();
  ASSERT_NE(array, nullptr);
  EXPECT_EQ(array->elements, 3u);
  EXPECT_EQ(reader.Next(), nullptr) << "nothing more yet";
  EXPECT_FALSE(reader.failed());

  rl::internal::ReplyReader broken;
  broken.Feed("?what\r\n", 7);
  EXPECT_EQ(broken.Next(), nullptr);
  EXPECT_TRUE(broken.failed());
}

TEST(RedisProtocolTest, TheDecisionCommand) {
  std::string out;
  rl::internal::AppendDecision(out, "0123abcd", false, "ip:1", rl::Rate{720, 3600}, 2);
  EXPECT_EQ(out,
            "*7\r\n$7\r\nEVALSHA\r\n$8\r\n0123abcd\r\n$1\r\n1\r\n$15\r\nvigil:rl:{ip:1}"
            "\r\n$3\r\n720\r\n$4\r\n3600\r\n$1\r\n2\r\n");
  out.clear();
  rl::internal::AppendDecision(out, "0123abcd", true, "k", rl::Rate{1, 1}, 1, kNow);
  EXPECT_TRUE(out.starts_with("*8\r\n$4\r\nEVAL\r\n")) << out;
  EXPECT_TRUE(Has(out, rl::internal::kDecisionScript));
  EXPECT_TRUE(out.ends_with("$16\r\n" + Str(kNow) + "\r\n")) << out;
}

// --- URLs and the environment -----------------------------------------------------------

TEST(RedisOptionsTest, UrlsThatParse) {
  struct Case {
    const char* url;
    const char* host;
    std::uint16_t port;
    const char* username;
    const char* password;
    int db;
  };
  const Case cases[] = {
      {"redis://localhost", "localhost", 6379, "", "", 0},
      {"redis://redis.internal:6380", "redis.internal", 6380, "", "", 0},
      {"redis://10.0.0.5:7000/3", "10.0.0.5", 7000, "", "", 3},
      {"redis://:s3cret@cache/2", "cache", 6379, "", "s3cret", 2},
      {"redis://limiter:s3cret@cache:6390/", "cache", 6390, "limiter", "s3cret", 0},
      {"redis://u:p%40ss%3Aw%2Frd@h", "h", 6379, "u", "p@ss:w/rd", 0},
      {"redis://[::1]:6381/1", "::1", 6381, "", "", 1},
      {"redis://[::1]", "::1", 6379, "", "", 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    const rl::RedisOptions o = rl::RedisOptions::FromUrl(c.url, "VIGIL_REDIS_URL");
    EXPECT_EQ(o.host, c.host);
    EXPECT_EQ(o.port, c.port);
    EXPECT_EQ(o.username, c.username);
    EXPECT_EQ(o.password, c.password);
    EXPECT_EQ(o.db, c.db);
    EXPECT_EQ(o.timeout, 20ms);
  }
}

TEST(RedisOptionsTest, UrlsThatDoNotParseNameTheVariableAndHideThePassword) {
  const char* const cases[] = {
      "",
      "localhost:6379",
      "http://:hunter2@localhost",
      "rediss://:hunter2@localhost",
      "redis://",
      "redis://:hunter2@",
      "redis://:hunter2@host:0",
      "redis://:hunter2@host:65536",
      "redis://:hunter2@host:port",
      "redis://:hunter2@host:",
      "redis://:hunter2@host/x",
      "redis://:hunter2@host/-1",
      "redis://:hunter2@host/1?timeout=5",
      "redis://hunter2@host",
      "redis://user:@host",
      "redis://:hunter2%zz@host",
      "redis://:hunter2@[::1",
      "redis://:hunter2@[::1]x",
      "redis://:hunter2@a:b:1",
  };
  for (const char* url : cases) {
    SCOPED_TRACE(url);
    try {
      rl::RedisOptions::FromUrl(url, "VIGIL_REDIS_URL");
      ADD_FAILURE() << "accepted";
    } catch (const tel::ConfigError& e) {
      EXPECT_EQ(e.variable(), "VIGIL_REDIS_URL");
      EXPECT_TRUE(std::string_view(e.what()).starts_with("VIGIL_REDIS_URL=")) << e.what();
      EXPECT_FALSE(Has(e.what(), "hunter2")) << e.what();
    }
  }
}

TEST(RedisOptionsTest, FromTheEnvironment) {
  ScopedEnv url("VIGIL_REDIS_URL", nullptr), file("VIGIL_REDIS_URL_FILE", nullptr),
      timeout("VIGIL_REDIS_TIMEOUT_MS", nullptr);
  EXPECT_FALSE(rl::RedisOptions::FromEnv().has_value()) << "no URL: no Redis";
  {
    ScopedEnv set("VIGIL_REDIS_URL", "redis://:pw@cache:6390/4"),
        ms("VIGIL_REDIS_TIMEOUT_MS", "35");
    const auto o = rl::RedisOptions::FromEnv();
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->host, "cache");
    EXPECT_EQ(o->port, 6390);
    EXPECT_EQ(o->password, "pw");
    EXPECT_EQ(o->db, 4);
    EXPECT_EQ(o->timeout, 35ms);
  }
  {
    ScopedEnv set("VIGIL_REDIS_URL", "redis://cache"), ms("VIGIL_REDIS_TIMEOUT_MS", "0");
    try {
      rl::RedisOptions::FromEnv();
      ADD_FAILURE() << "a timeout of 0 accepted";
    } catch (const tel::ConfigError& e) {
      EXPECT_EQ(e.variable(), "VIGIL_REDIS_TIMEOUT_MS");
    }
  }
  // From a file (a Docker or Kubernetes secret); a bad URL there names the _FILE variable.
  vigil::test_support::TempDir dir("redis-url");
  const std::string path = dir.File("url");
  std::ofstream(path) << "redis://:from-file@cache\n";
  ScopedEnv from_file("VIGIL_REDIS_URL_FILE", path.c_str());
  const auto o = rl::RedisOptions::FromEnv();
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->password, "from-file");
  std::ofstream(path) << "redis://:from-file@cache:99999\n";
  try {
    rl::RedisOptions::FromEnv();
    ADD_FAILURE() << "a bad port accepted";
  } catch (const tel::ConfigError& e) {
    EXPECT_EQ(e.variable(), "VIGIL_REDIS_URL_FILE");
    EXPECT_FALSE(Has(e.what(), "from-file")) << e.what();
  }
}

TEST(RedisOptionsTest, ErrorNames) {
  EXPECT_EQ(rl::ToString(StoreError::kNone), "none");
  EXPECT_EQ(rl::ToString(StoreError::kDown), "down");
  EXPECT_EQ(rl::ToString(StoreError::kRefused), "refused");
  EXPECT_EQ(rl::ToString(StoreError::kReset), "reset");
  EXPECT_EQ(rl::ToString(StoreError::kTimeout), "timeout");
  EXPECT_EQ(rl::ToString(StoreError::kLoading), "loading");
  EXPECT_EQ(rl::ToString(StoreError::kAuth), "auth");
  EXPECT_EQ(rl::ToString(StoreError::kProtocol), "protocol");
  EXPECT_EQ(rl::ToString(StoreError::kOverload), "overload");
}

// --- the store --------------------------------------------------------------------------

TEST(RedisStoreTest, ReplicasShareOneLimit) {
  RedisServer redis;
  Observed telemetry;
  // One by address, one by name (resolved when connecting).
  Replica a(OptionsFor(redis.url()), *telemetry),
      b(OptionsFor("redis://localhost:" + std::to_string(redis.port())), *telemetry);
  EXPECT_EQ(telemetry.Up(), 0) << "down before Start";
  ASSERT_TRUE(a.StartUp());
  ASSERT_TRUE(b.StartUp());
  EXPECT_EQ(telemetry.Up(), 1);
  const std::string key = "client:203.0.113.7";
  for (std::int64_t i = 0; i < 5; ++i) {
    Replica& replica = i % 2 == 0 ? a : b;
    const rl::SharedDecision d =
        replica.Decide(static_cast<std::size_t>(i) % 2, key, kFivePerHour).result;
    ASSERT_EQ(d.error, StoreError::kNone) << rl::ToString(d.error);
    EXPECT_TRUE(d.decision.allowed) << i;
    EXPECT_EQ(d.decision.remaining, 4 - i);
  }
  for (Replica* replica : {&a, &b}) {
    for (std::size_t worker : {0u, 1u}) {
      const rl::SharedDecision d = replica->Decide(worker, key, kFivePerHour).result;
      ASSERT_EQ(d.error, StoreError::kNone);
      EXPECT_FALSE(d.decision.allowed);
      EXPECT_EQ(d.decision.remaining, 0);
      EXPECT_GT(d.decision.retry_after_us, 700 * kSecond) << "a 12-minute interval";
    }
  }
  // The key carries its hash tag and the TAT in microseconds.
  const RedisReply stored = redis.Command({"GET", "vigil:rl:{" + key + "}"});
  ASSERT_EQ(stored.type, RedisReply::Type::kString);
  EXPECT_EQ(stored.text.size(), 16u) << stored.text;
  EXPECT_EQ(telemetry.Errors(StoreError::kProtocol), 0);
}

// A started one-worker replica whose decisions may wait 10 s, on a Redis paused for a
// while: its decisions pile up in flight.
class PausedRedisTest : public ::testing::Test {
 protected:
  void StartThenPause(const char* pause_ms) {
    rl::RedisOptions options = OptionsFor(redis_.url());
    options.timeout = 10s;
    replica_.emplace(options, *telemetry_, 1);
    ASSERT_TRUE(replica_->StartUp());
    ASSERT_EQ(redis_.Command({"CLIENT", "PAUSE", pause_ms}).text, "OK");
  }

  RedisServer redis_;
  Observed telemetry_;
  std::optional<Replica> replica_;
};

TEST_F(PausedRedisTest, ManyDecisionsInFlightOnOneConnectionAnswerInOrder) {
  // All 64 are in flight at once; each reply must reach its own decision: the n-th
  // leaves 63 - n.
  StartThenPause("200");
  const rl::Rate rate = rl::Rate::Of(64, 1h, 64);
  const std::string key = "pipelined";
  std::vector<std::future<rl::SharedDecision>> futures;
  for (int i = 0; i < 65; ++i) futures.push_back(replica_->Spawn(0, key, rate));
  for (int i = 0; i < 65; ++i) {
    const rl::SharedDecision d = futures[static_cast<std::size_t>(i)].get();
    ASSERT_EQ(d.error, StoreError::kNone) << i << ": " << rl::ToString(d.error);
    EXPECT_EQ(d.decision.allowed, i < 64) << i;
    if (i < 64) {
      EXPECT_EQ(d.decision.remaining, 63 - i);
    }
  }
}

TEST_F(PausedRedisTest, DecisionsBeyondTheBoundFailAtOnce) {
  StartThenPause("1000");
  const std::string key = "flood";
  std::vector<std::future<rl::SharedDecision>> futures;
  const std::size_t extra = 10;
  for (std::size_t i = 0; i < rl::internal::kMaxWaiting + extra; ++i) {
    futures.push_back(replica_->Spawn(0, key, kFivePerHour));
  }
  // The last ones are refused before the pause ends; the others are decided after it.
  for (std::size_t i = rl::internal::kMaxWaiting; i < futures.size(); ++i) {
    ASSERT_EQ(futures[i].wait_for(200ms), std::future_status::ready) << i;
    EXPECT_EQ(futures[i].get().error, StoreError::kOverload);
  }
  std::size_t allowed = 0;
  for (std::size_t i = 0; i < rl::internal::kMaxWaiting; ++i) {
    const rl::SharedDecision d = futures[i].get();
    ASSERT_EQ(d.error, StoreError::kNone) << i;
    allowed += d.decision.allowed;
  }
  EXPECT_EQ(allowed, 5u);
  EXPECT_EQ(telemetry_.Errors(StoreError::kOverload), static_cast<double>(extra));
}

TEST(RedisStoreTest, RedisGoneFailsFastOnceLoggedAndComesBackByItself) {
  RedisServer redis;
  Observed telemetry;
  Replica replica(OptionsFor(redis.url()), *telemetry);
  ASSERT_TRUE(replica.StartUp());
  for (std::size_t worker : {0u, 1u}) {
    ASSERT_EQ(replica.Decide(worker, "before", kFivePerHour).result.error, StoreError::kNone);
  }
  EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 0u);

  redis.Kill();
  for (int i = 0; i < 20; ++i) {
    for (std::size_t worker : {0u, 1u}) {
      const Timed t = replica.Decide(worker, "during", kFivePerHour);
      const StoreError e = t.result.error;
      EXPECT_TRUE(e == StoreError::kDown || e == StoreError::kRefused || e == StoreError::kReset)
          << rl::ToString(e);
      EXPECT_LT(t.took, kTimeout + kLateness);
    }
  }
  EXPECT_FALSE(replica.store().up());
  EXPECT_EQ(telemetry.Up(), 0);
  EXPECT_GE(telemetry.Errors(StoreError::kDown), 38) << "most find no connection up";
  // Reconnecting fails, is counted, and logs nothing more.
  ASSERT_TRUE(Eventually([&] { return telemetry.Errors(StoreError::kRefused) >= 4; }));
  EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 1u);
  for (const auto& line : telemetry.Lines()) {
    if (line.Text("msg") != kDown) continue;
    EXPECT_EQ(line.Text("store"), "redis");
    EXPECT_TRUE(line.Text("reason") == "reset" || line.Text("reason") == "refused")
        << line.Text("reason");
    EXPECT_EQ(line.Text("server.address"), "127.0.0.1");
    EXPECT_EQ(line.Text("server.port"), std::to_string(redis.port()));
  }

  redis.Restart();
  // Nobody restarts the store: decisions succeed again once it reconnects (the script is
  // loaded afresh into the new, empty Redis).
  ASSERT_TRUE(Eventually([&] {
    return replica.store().up() &&
           replica.Decide(0, "after", kFivePerHour).result.error == StoreError::kNone &&
           replica.Decide(1, "after", kFivePerHour).result.error == StoreError::kNone;
  }));
  EXPECT_EQ(telemetry.Up(), 1);
  EXPECT_EQ(telemetry.LinesSaying("info", kBack), 1u);
  EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 1u);
}

TEST(RedisStoreTest, NothingListeningIsOneEpisodeFromTheStart) {
  Observed telemetry;
  const std::uint16_t port = vigil::test_support::UnusedPort();
  Replica replica(OptionsFor("redis://:hunter2@127.0.0.1:" + std::to_string(port)), *telemetry);
  replica.store().Start();
  ASSERT_TRUE(Eventually([&] { return telemetry.Errors(StoreError::kRefused) >= 4; }));
  const Timed t = replica.Decide(0, "k", kFivePerHour);
  EXPECT_EQ(t.result.error, StoreError::kDown);
  EXPECT_LT(t.took, kLateness) << "no waiting on a connection that is not up";
  EXPECT_EQ(telemetry.Up(), 0);
  EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 1u);
  for (const auto& line : telemetry.Lines()) {
    EXPECT_FALSE(Has(line.Text("error.message"), "hunter2"));
    if (line.Text("msg") == kDown) {
      EXPECT_EQ(line.Text("reason"), "refused");
    }
  }
}

TEST(RedisStoreTest, PausedRedisTimesOutThenTheConnectionStaysInStep) {
  RedisServer redis;
  Observed telemetry;
  Replica replica(OptionsFor(redis.url()), *telemetry);
  ASSERT_TRUE(replica.StartUp());
  ASSERT_EQ(redis.Command({"CLIENT", "PAUSE", "600"}).text, "OK");
  for (std::size_t worker : {0u, 1u}) {
    const Timed t = replica.Decide(worker, "paused", kFivePerHour);
    EXPECT_EQ(t.result.error, StoreError::kTimeout) << rl::ToString(t.result.error);
    EXPECT_GE(t.took, kTimeout - 5ms);
    EXPECT_LT(t.took, kTimeout + kLateness);
  }
  EXPECT_EQ(telemetry.Errors(StoreError::kTimeout), 2);
  EXPECT_TRUE(replica.store().up()) << "slow is not down";
  // Once the pause ends, the late replies are read and dropped, and later decisions get
  // their own: a fresh key counts down from the burst exactly.
  ASSERT_TRUE(Eventually([&] {
    return replica.Decide(0, "probe", rl::Rate::Of(1000, 1s, 1000)).result.error ==
           StoreError::kNone;
  }));
  for (std::int64_t i = 0; i < 6; ++i) {
    const rl::SharedDecision d = replica.Decide(0, "in-step", kFivePerHour).result;
    ASSERT_EQ(d.error, StoreError::kNone) << i;
    EXPECT_EQ(d.decision.allowed, i < 5) << i;
    if (i < 5) {
      EXPECT_EQ(d.decision.remaining, 4 - i);
    }
  }
  EXPECT_EQ(telemetry.Errors(StoreError::kProtocol), 0);
}

TEST(RedisStoreTest, ARedisThatStopsAnsweringIsTakenDownThenComesBack) {
  RedisServer redis;
  Observed telemetry;
  Replica replica(OptionsFor(redis.url()), *telemetry, 1);
  ASSERT_TRUE(replica.StartUp());
  // Longer than the one second after which a link that gets no reply at all is failed.
  ASSERT_EQ(redis.Command({"CLIENT", "PAUSE", "2500"}).text, "OK");
  ASSERT_TRUE(Eventually([&] {
    replica.Decide(0, "silent", kFivePerHour);
    return !replica.store().up();
  })) << "timeouts alone never took the store down";
  EXPECT_EQ(telemetry.Up(), 0);
  EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 1u);
  const Timed t = replica.Decide(0, "silent", kFivePerHour);
  EXPECT_NE(t.result.error, StoreError::kNone);
  EXPECT_LT(t.took, kTimeout + kLateness) << "no decision waits longer than its timeout";
  // The pause ends: the store reconnects by itself.
  ASSERT_TRUE(Eventually([&] { return replica.store().up(); }, std::chrono::seconds(10)));
  EXPECT_EQ(replica.Decide(0, "after", kFivePerHour).result.error, StoreError::kNone);
  EXPECT_EQ(telemetry.LinesSaying("info", kBack), 1u);
}

TEST(RedisStoreTest, AScriptFlushIsRepairedOnTheNextDecision) {
  RedisServer redis;
  Observed telemetry;
  Replica replica(OptionsFor(redis.url()), *telemetry, 1);
  ASSERT_TRUE(replica.StartUp());
  ASSERT_EQ(replica.Decide(0, "k", kFivePerHour).result.decision.remaining, 4);
  ASSERT_EQ(redis.Command({"SCRIPT", "FLUSH"}).text, "OK");
  for (std::int64_t i = 0; i < 3; ++i) {
    const rl::SharedDecision d = replica.Decide(0, "k", kFivePerHour).result;
    ASSERT_EQ(d.error, StoreError::kNone) << rl::ToString(d.error);
    EXPECT_EQ(d.decision.remaining, 3 - i);
  }
  // One EVAL brought the script back; EVALSHA did the rest.
  const std::string stats = redis.Command({"INFO", "commandstats"}).text;
  EXPECT_TRUE(Has(stats, "cmdstat_eval:calls=1,")) << stats;
  EXPECT_TRUE(Has(stats, "cmdstat_evalsha:calls=4,")) << stats;
}

TEST_F(PausedRedisTest, StopFailsWaitingDecisionsAtOnce) {
  StartThenPause("2000");
  const std::string key = "k";
  auto waiting = replica_->Spawn(0, key, kFivePerHour);
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout);
  replica_->store().Stop();
  ASSERT_EQ(waiting.wait_for(500ms), std::future_status::ready);
  EXPECT_EQ(waiting.get().error, StoreError::kDown);
  EXPECT_FALSE(replica_->store().up());
  EXPECT_EQ(telemetry_.Up(), 0);
  EXPECT_EQ(replica_->Decide(0, key, kFivePerHour).result.error, StoreError::kDown);
  EXPECT_EQ(telemetry_.LinesSaying("warn", kDown), 0u) << "stopping is no failure";
}

TEST(RedisStoreTest, PasswordUserAndDatabaseFromTheUrl) {
  RedisServer redis("s3cret");
  Observed telemetry;
  {
    Replica replica(OptionsFor(redis.url() + "/3"), *telemetry, 1);
    ASSERT_TRUE(replica.StartUp());
    EXPECT_EQ(replica.Decide(0, "in-db-3", kFivePerHour).result.error, StoreError::kNone);
  }
  EXPECT_TRUE(Has(redis.Command({"INFO", "keyspace"}).text, "db3:keys=1"));
  // An ACL user whose password needs escaping in a URL.
  ASSERT_EQ(
      redis.Command({"ACL", "SETUSER", "limiter", "on", ">pa:ss@wo/rd", "~vigil:rl:*", "+@all"})
          .text,
      "OK");
  {
    Replica replica(OptionsFor("redis://limiter:pa%3Ass%40wo%2Frd@127.0.0.1:" +
                               std::to_string(redis.port()) + "/5"),
                    *telemetry, 1);
    ASSERT_TRUE(replica.StartUp());
    EXPECT_EQ(replica.Decide(0, "as-limiter", kFivePerHour).result.error, StoreError::kNone);
  }
  EXPECT_TRUE(Has(redis.Command({"INFO", "keyspace"}).text, "db5:keys=1"));
  EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 0u);
}

TEST(RedisStoreTest, AWrongPasswordIsAnAuthenticationFailure) {
  RedisServer redis("s3cret");
  const std::string port = std::to_string(redis.port());
  for (const std::string& url :
       {"redis://:not-the-password-123@127.0.0.1:" + port, "redis://127.0.0.1:" + port}) {
    SCOPED_TRACE(url);
    Observed telemetry;
    Replica replica(OptionsFor(url), *telemetry, 1);
    replica.store().Start();
    ASSERT_TRUE(Eventually([&] { return telemetry.Errors(StoreError::kAuth) >= 2; }));
    EXPECT_FALSE(replica.store().up());
    EXPECT_EQ(replica.Decide(0, "k", kFivePerHour).result.error, StoreError::kDown);
    EXPECT_EQ(telemetry.LinesSaying("warn", kDown), 1u);
    for (const auto& line : telemetry.Lines()) {
      if (line.Text("msg") == kDown) {
        EXPECT_EQ(line.Text("reason"), "auth");
      }
      for (const auto& [key, value] : line.members) {
        EXPECT_FALSE(Has(value.text, "not-the-password")) << key;
      }
    }
  }
}

// --- the limiter over a shared store ----------------------------------------------------

TEST(LimiterTest, WhatTheSharedStoreCannotDecideIsDecidedLocallyOrRefused) {
  Observed telemetry;
  // Never started: every shared decision fails at once (down).
  Replica replica(
      OptionsFor("redis://127.0.0.1:" + std::to_string(vigil::test_support::UnusedPort())),
      *telemetry, 1);
  rl::Limiter limiter(rl::ParseLimits(R"({"replicas": 2, "policies": [{"name": "p",
      "key": ["client_address"], "quota": 4, "window_s": 60}]})",
                                      "t"),
                      *telemetry, &replica.store());
  EXPECT_TRUE(limiter.shared());
  const auto decide = [&] {
    return replica.Run(0, limiter.Decide(0, *limiter.limits().Find("p"), "p\x1fk"));
  };
  // Fail open: each of two replicas alone allows half the quota.
  EXPECT_TRUE(decide().decision.allowed);
  EXPECT_TRUE(decide().decision.allowed);
  const rl::Verdict third = decide();
  EXPECT_FALSE(third.decision.allowed);
  EXPECT_FALSE(third.unavailable);
  EXPECT_EQ(telemetry.Metric("vigil_ratelimit_decisions_total{policy=\"p\",decision=\"allowed\","
                             "store=\"fallback\"}"),
            2);
  EXPECT_EQ(telemetry.Metric("vigil_ratelimit_decisions_total{policy=\"p\",decision=\"limited\","
                             "store=\"fallback\"}"),
            1);
  EXPECT_EQ(telemetry.Errors(StoreError::kDown), 3);
  // Fail closed: unavailable, and not counted as a decision.
  limiter.Reload(rl::ParseLimits(R"({"on_store_failure": "closed", "policies": [{"name": "p",
      "key": ["client_address"], "quota": 4, "window_s": 60}]})",
                                 "t"));
  EXPECT_TRUE(decide().unavailable);
}

}  // namespace

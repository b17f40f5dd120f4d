// RedisOptions from URLs and the environment, and the names of StoreError.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vigil/ratelimit/redis_store.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/scoped_env.hpp>
#include <vigil/testing/text.hpp>

namespace {

namespace rl = vigil::ratelimit;
namespace tel = vigil::telemetry;
using namespace std::chrono_literals;
using rl::StoreError;
using vigil::test_support::Has;
using vigil::test_support::ScopedEnv;

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

}  // namespace

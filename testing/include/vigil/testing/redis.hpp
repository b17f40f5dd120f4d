// Test support: a real redis-server of the test's own, on a free loopback port in a
// temporary directory (nothing saved to disk), and a tiny blocking client to talk to it.
//
//   vigil::test_support::RedisServer redis;                 // ready when constructed
//   options = RedisOptions::FromUrl(redis.url(), "VIGIL_REDIS_URL");
//   redis.Command({"CLIENT", "PAUSE", "200"});
//   EXPECT_EQ(redis.Command({"GET", "vigil:rl:{k}"}).text, "1700000000000000");
//   redis.Kill();      // SIGKILL: connections break at once
//   redis.Restart();   // the same port, empty, ready again
//
// Thread-safety: none; one thread drives a server. Command() opens a connection of its own
// each call, so the server's other clients are unaffected.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/testing/files.hpp"

namespace vigil::test_support {

// One RESP reply.
struct RedisReply {
  enum class Type { kString, kStatus, kError, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string text;  // a bulk string, a status ("OK") or an error ("ERR ...")
  long long integer = 0;
  std::vector<RedisReply> elements;
};

class RedisServer {
 public:
  // Starts redis-server (with `requirepass` when not empty) and waits until it answers
  // PING. Throws std::runtime_error saying why when it cannot: redis-server missing
  // (install the Debian package redis-server; ./vigil test does), or not ready within 10 s.
  explicit RedisServer(std::string requirepass = "");
  // Kills the server (if running) and removes its directory.
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  // redis://[:requirepass@]127.0.0.1:<port>
  std::string url() const;

  // Sends one command on a connection of its own (authenticated when the server has a
  // password) and returns the reply; error replies are returned, not thrown. Throws
  // std::runtime_error when the server cannot be reached or does not answer in 10 s.
  RedisReply Command(std::initializer_list<std::string_view> args) const;
  RedisReply Command(const std::vector<std::string>& args) const;

  // SIGKILL, and waits for the process to end.
  void Kill();
  // Starts the server again on the same port (empty: nothing was saved) and waits until
  // it is ready. Throws like the constructor.
  void Restart();

 private:
  void Launch();
  RedisReply Call(const std::vector<std::string_view>& args) const;

  TempDir dir_;
  std::string password_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace vigil::test_support

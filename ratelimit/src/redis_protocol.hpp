// What the Redis store says and hears, without the network: the decision script, commands
// in RESP, replies parsed by hiredis's reader, and what a reply means.
//
// Thread-safety: ReplyReader is used by one thread at a time; the functions are pure.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vigil/ratelimit/gcra.hpp>
#include <vigil/ratelimit/redis_store.hpp>

namespace vigil::ratelimit::internal {

// The decision script (Lua 5.1). KEYS[1]: the key's TAT. ARGV: interval_us, tolerance_us,
// cost and, for tests only, now_us (otherwise Redis's TIME). Stores the new TAT with an
// expiry just past the moment it is reached when the request is allowed; stores nothing
// when it is refused. Returns {allowed (0/1), the TAT it read (0: none), now_us}.
extern const std::string_view kDecisionScript;

// "vigil:rl:{<key>}": the hash tag keeps every key on one Redis Cluster slot.
std::string RedisKey(std::string_view key);

// Appends `args` (at most kMaxCommandArgs) as one RESP command: an array of bulk strings.
// Throws std::bad_alloc, or std::length_error for too many arguments.
inline constexpr std::size_t kMaxCommandArgs = 8;
void AppendCommand(std::string& out, std::span<const std::string_view> args);

// Appends the decision command: EVALSHA `sha` (or, with `script`, EVAL of the script) on
// `key`'s Redis key, with `now_us` when given (> 0). Throws std::bad_alloc.
void AppendDecision(std::string& out, std::string_view sha, bool script, std::string_view key,
                    const Rate& rate, std::int64_t cost, std::int64_t now_us = 0);

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Replies from a stream of bytes, in order (hiredis's redisReader).
class ReplyReader {
 public:
  // Throws std::bad_alloc.
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Adds bytes read from the connection. False when the stream is not RESP (or no memory).
  bool Feed(const char* data, std::size_t size) noexcept;
  // The next whole reply; null when more bytes are needed or the stream is broken
  // (failed() tells which).
  Reply Next() noexcept;
  bool failed() const noexcept { return failed_; }

 private:
  redisReader* reader_;
  bool failed_ = false;
};

// The text of an error reply, or empty when `reply` is not one.
std::string_view ErrorText(const redisReply& reply) noexcept;

// What an error reply means for a decision: LOADING -> kLoading; NOAUTH, WRONGPASS and
// refused authentication -> kAuth; anything else -> kProtocol. NOSCRIPT is the caller's.
StoreError ClassifyError(std::string_view error) noexcept;

// The decision a script reply carries, decided again by ratelimit::Decide on the TAT and
// the time the script read; kProtocol when the reply has another shape or the script's
// verdict differs.
SharedDecision ReadDecision(const redisReply& reply, const Rate& rate, std::int64_t cost) noexcept;

}  // namespace vigil::ratelimit::internal

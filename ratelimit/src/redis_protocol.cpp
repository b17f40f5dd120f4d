#include "redis_protocol.hpp"

#include <array>
#include <charconv>
#include <stdexcept>

namespace vigil::ratelimit::internal {

// Every number is an integer below 2^53, which a Lua number holds exactly; but Lua 5.1's
// tostring() prints 14 significant digits (1700000000123456 -> 1.7000000001235e+15), so
// what is stored is written with string.format('%d'), which prints every digit. The
// numbers returned become integer replies, exact too. A missing or unreadable TAT reads
// as 0: a full quota.
const std::string_view kDecisionScript = R"lua(
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local stored = tonumber(redis.call('GET', KEYS[1])) or 0
local tat = math.max(stored, now)
local new_tat = tat + cost * interval
if new_tat - now > tolerance then
  return {0, stored, now}
end
local expire_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', expire_ms))
return {1, stored, now}
)lua";

std::string RedisKey(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 11);
  out.append("vigil:rl:{").append(key).push_back('}');
  return out;
}

namespace {

// A decimal integer in a buffer of its own.
class Decimal {
 public:
  explicit Decimal(std::int64_t value) noexcept
      : size_(static_cast<std::size_t>(
            std::to_chars(digits_.data(), digits_.data() + digits_.size(), value).ptr -
            digits_.data())) {}
  std::string_view view() const noexcept { return {digits_.data(), size_}; }

 private:
  std::array<char, 24> digits_{};
  std::size_t size_;
};

// "*<count>\r\n" or "$<length>\r\n": the head of a RESP array or bulk string.
void AppendHead(std::string& out, char type, std::size_t n) {
  out.push_back(type);
  out.append(Decimal(static_cast<std::int64_t>(n)).view());
  out.append("\r\n");
}

}  // namespace

void AppendCommand(std::string& out, std::span<const std::string_view> args) {
  if (args.size() > kMaxCommandArgs) throw std::length_error("too many arguments for a command");
  // An array of bulk strings, as every client sends commands (no formatting library: this
  // runs once per decision).
  AppendHead(out, '*', args.size());
  for (const std::string_view arg : args) {
    AppendHead(out, '$', arg.size());
    out.append(arg);
    out.append("\r\n");
  }
}

void AppendDecision(std::string& out, std::string_view sha, bool script, std::string_view key,
                    const Rate& rate, std::int64_t cost, std::int64_t now_us) {
  const std::string redis_key = RedisKey(key);
  const Decimal interval(rate.interval_us), tolerance(rate.tolerance_us), units(cost), now(now_us);
  // EVALSHA sha|EVAL script, 1 key, then ARGV.
  const std::array<std::string_view, 8> args = {script ? "EVAL" : "EVALSHA",
                                                script ? kDecisionScript : sha,
                                                "1",
                                                redis_key,
                                                interval.view(),
                                                tolerance.view(),
                                                units.view(),
                                                now.view()};
  AppendCommand(out, std::span(args.data(), now_us > 0 ? 8 : 7));
}

ReplyReader::ReplyReader() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) throw std::bad_alloc();
}

ReplyReader::~ReplyReader() { redisReaderFree(reader_); }

bool ReplyReader::Feed(const char* data, std::size_t size) noexcept {
  if (redisReaderFeed(reader_, data, size) != REDIS_OK) failed_ = true;
  return !failed_;
}

Reply ReplyReader::Next() noexcept {
  if (failed_) return nullptr;
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    failed_ = true;
    return nullptr;
  }
  return Reply(static_cast<redisReply*>(reply));
}

std::string_view ErrorText(const redisReply& reply) noexcept {
  if (reply.type != REDIS_REPLY_ERROR || reply.str == nullptr) return {};
  return {reply.str, reply.len};
}

StoreError ClassifyError(std::string_view error) noexcept {
  if (error.starts_with("LOADING")) return StoreError::kLoading;
  if (error.starts_with("NOAUTH") || error.starts_with("WRONGPASS") ||
      error.starts_with("NOPERM") || error.starts_with("ERR invalid password") ||
      error.starts_with("ERR AUTH") || error.starts_with("ERR Client sent AUTH")) {
    return StoreError::kAuth;
  }
  return StoreError::kProtocol;
}

SharedDecision ReadDecision(const redisReply& reply, const Rate& rate, std::int64_t cost) noexcept {
  SharedDecision out;
  if (reply.type == REDIS_REPLY_ERROR) {
    out.error = ClassifyError(ErrorText(reply));
    return out;
  }
  out.error = StoreError::kProtocol;
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3) return out;
  for (std::size_t i = 0; i < 3; ++i) {
    if (reply.element[i]->type != REDIS_REPLY_INTEGER) return out;
  }
  const long long allowed = reply.element[0]->integer;
  const std::int64_t stored = reply.element[1]->integer;
  const std::int64_t now = reply.element[2]->integer;
  if ((allowed != 0 && allowed != 1) || now <= 0 || stored < 0) return out;
  const Decision decision = Decide(now, stored, rate, cost);
  if (decision.allowed != (allowed == 1)) return out;
  out.error = StoreError::kNone;
  out.decision = decision;
  return out;
}

}  // namespace vigil::ratelimit::internal

// Random ids, hex formatting and request ids.
#include <pthread.h>
#include <sys/random.h>

#include <atomic>

#include <chrono>
#include <cstring>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// xoshiro256++ (Blackman & Vigna), one state per thread, seeded from getrandom().
class Xoshiro256 {
 public:
  Xoshiro256() noexcept {
    std::uint64_t seed[4] = {};
    if (getrandom(seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      // getrandom cannot fail for 32 bytes once the pool is initialised; fall back to a
      // clock- and address-derived seed rather than ever returning constant ids.
      std::uint64_t x = static_cast<std::uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count());
      x ^= reinterpret_cast<std::uintptr_t>(this);
      for (auto& s : seed) s = SplitMix(x);
    }
    std::memcpy(s_, seed, sizeof s_);
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
  }

  std::uint64_t Next() noexcept {
    const std::uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t SplitMix(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t s_[4];
};

void WriteHex(const std::uint8_t* bytes, std::size_t n, char* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[bytes[i] >> 4];
    out[2 * i + 1] = kHexDigits[bytes[i] & 0x0f];
  }
}

template <std::size_t N>
bool ReadHex(std::string_view hex, std::array<std::uint8_t, N>& out) noexcept {
  if (hex.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    // W3C ids are lowercase only.
    const int hi = text::LowerHexValue(hex[2 * i]);
    const int lo = text::LowerHexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

template <std::size_t N>
std::array<std::uint8_t, N> RandomNonZero() noexcept {
  std::array<std::uint8_t, N> bytes{};
  bool nonzero = false;
  while (!nonzero) {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t r = RandomU64();
      std::memcpy(bytes.data() + i, &r, N - i < 8 ? N - i : 8);
    }
    for (auto b : bytes) nonzero = nonzero || b != 0;
  }
  return bytes;
}

bool IsRequestIdChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == ':' || c == '-';
}

// A forked child starts with its parent's generator state: it would draw the same ids
// as the parent. Each fork moves this on, and a thread that sees it moved reseeds.
std::atomic<unsigned> g_forks{0};
void OnForkInChild() noexcept { g_forks.fetch_add(1, std::memory_order_relaxed); }
[[maybe_unused]] const int g_at_fork = pthread_atfork(nullptr, nullptr, &OnForkInChild);

}  // namespace

std::uint64_t RandomU64() noexcept {
  thread_local Xoshiro256 rng;
  thread_local unsigned seeded_at = 0;
  if (const unsigned forks = g_forks.load(std::memory_order_relaxed); forks != seeded_at) {
    rng = Xoshiro256();
    seeded_at = forks;
  }
  return rng.Next();
}

template <typename Id, std::size_t N>
Id OpaqueId<Id, N>::Random() noexcept {
  return Id(RandomNonZero<N>());
}

template <typename Id, std::size_t N>
std::optional<Id> OpaqueId<Id, N>::FromHex(std::string_view hex) noexcept {
  std::array<std::uint8_t, N> bytes{};
  if (!ReadHex(hex, bytes)) return std::nullopt;
  Id id(bytes);
  if (!id.IsValid()) return std::nullopt;
  return id;
}

template <typename Id, std::size_t N>
void OpaqueId<Id, N>::ToHex(char* out) const noexcept {
  WriteHex(bytes_.data(), N, out);
}

template <typename Id, std::size_t N>
std::string OpaqueId<Id, N>::ToHex() const {
  std::string s(kHexSize, '\0');
  ToHex(s.data());
  return s;
}

template class OpaqueId<TraceId, 16>;
template class OpaqueId<SpanId, 8>;

RequestId RequestId::Generate() noexcept {
  // ULID: 48-bit millisecond timestamp then 80 random bits, Crockford base32, 26 chars.
  static constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  const std::uint64_t r1 = RandomU64();
  const std::uint64_t r2 = RandomU64();
  // 48 bits of time then 80 random bits (16 from r1, 64 from r2).
  __extension__ using U128 = unsigned __int128;
  U128 v = (static_cast<U128>(ms & 0xFFFFFFFFFFFFULL) << 80) |
           (static_cast<U128>(r1 & 0xFFFF) << 64) | r2;
  RequestId id;
  // 26 chars * 5 bits = 130 bits; the first char carries the top 3 bits.
  for (int i = 25; i >= 0; --i) {
    id.data_[static_cast<std::size_t>(i)] = kCrockford[static_cast<unsigned>(v & 0x1f)];
    v >>= 5;
  }
  id.size_ = 26;
  return id;
}

std::optional<RequestId> RequestId::FromString(std::string_view text) noexcept {
  if (text.empty() || text.size() > kMaxSize) return std::nullopt;
  for (char c : text) {
    if (!IsRequestIdChar(c)) return std::nullopt;
  }
  RequestId id;
  std::memcpy(id.data_.data(), text.data(), text.size());
  id.size_ = static_cast<std::uint8_t>(text.size());
  return id;
}

RequestContext RequestContext::NewRoot(bool sampled) noexcept {
  RequestContext ctx;
  ctx.span.trace_id = TraceId::Random();
  ctx.span.span_id = SpanId::Random();
  ctx.span.flags.bits =
      static_cast<std::uint8_t>(TraceFlags::kRandom | (sampled ? TraceFlags::kSampled : 0));
  return ctx;
}

RequestContext RequestContext::ChildOf(const SpanContext& parent) {
  RequestContext ctx;
  ctx.span.trace_id = parent.trace_id;
  ctx.span.span_id = SpanId::Random();
  ctx.span.flags = parent.flags;
  ctx.span.trace_state = parent.trace_state;
  return ctx;
}

}  // namespace vigil::telemetry

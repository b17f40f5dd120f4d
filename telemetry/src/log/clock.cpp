// Stamp kind selection, rate calibration and RFC 3339 formatting.
#include "log/clock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace vigil::telemetry::internal {

std::atomic<bool> g_stamp_is_tsc{false};

namespace {

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

std::int64_t ClockNanos(clockid_t clock) noexcept {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

// The TSC is only trusted when the kernel trusts it: it demotes the TSC clocksource when
// it is unstable across CPUs or stops in deep idle states.
bool KernelUsesTsc() noexcept {
#if VIGIL_LOG_HAVE_TSC
  const int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                      O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  char buf[16] = {};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n >= 3 && std::memcmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n');
#else
  return false;
#endif
}

struct Pair {
  std::uint64_t stamp;
  std::int64_t nanos;
};

// A (counter, clock) pair read as close together as possible: the best of a few tries,
// the counter taken as the midpoint of the reads around the clock.
Pair ReadPair(clockid_t clock) noexcept {
  Pair best{0, 0};
  std::uint64_t best_width = ~std::uint64_t{0};
  for (int i = 0; i < 5; ++i) {
#if VIGIL_LOG_HAVE_TSC
    const std::uint64_t a = __rdtsc();
    const std::int64_t ns = ClockNanos(clock);
    const std::uint64_t b = __rdtsc();
#else
    const std::uint64_t a = 0;
    const std::int64_t ns = ClockNanos(clock);
    const std::uint64_t b = 0;
#endif
    if (b - a < best_width) {
      best_width = b - a;
      best = Pair{a + (b - a) / 2, ns};
    }
  }
  return best;
}

double Calibrate() noexcept {
  const bool tsc = KernelUsesTsc();
  g_stamp_is_tsc.store(tsc, std::memory_order_relaxed);
  if (!tsc) {
    return 1.0;
  }
  // 2 ms against read jitter of a few tens of nanoseconds: a rate good to ~1e-5, which
  // keeps the error under 0.2 us across one 10 ms anchor period until the converters
  // refine it over a longer baseline.
  const Pair start = ReadPair(CLOCK_MONOTONIC_RAW);
  Pair end = start;
  while (end.nanos - start.nanos < 2'000'000) {
    end = ReadPair(CLOCK_MONOTONIC_RAW);
  }
  return static_cast<double>(end.nanos - start.nanos) /
         static_cast<double>(end.stamp - start.stamp);
}

void Write2(char* out, unsigned v) noexcept {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

double ClockSetup() noexcept {
  static const double ns_per_tick = Calibrate();
  return ns_per_tick;
}

StampConverter::StampConverter() noexcept : ns_per_tick_(ClockSetup()) {
  tsc_ = g_stamp_is_tsc.load(std::memory_order_relaxed);
  Anchor();
  base_stamp_ = anchor_stamp_;
  base_mono_ = anchor_mono_;
}

void StampConverter::Anchor() noexcept {
  const Pair real = ReadPair(CLOCK_REALTIME);
  const Pair mono = ReadPair(CLOCK_MONOTONIC_RAW);
  anchor_stamp_ = real.stamp;
  anchor_ns_ = real.nanos;
  if (base_mono_ != 0 && mono.nanos - base_mono_ >= kNanosPerSecond) {
    ns_per_tick_ = static_cast<double>(mono.nanos - base_mono_) /
                   static_cast<double>(mono.stamp - base_stamp_);
  }
  anchor_mono_ = mono.nanos;
}

void StampConverter::MaybeReanchor() noexcept {
  if (!tsc_) {
    return;
  }
  if (ClockNanos(CLOCK_MONOTONIC_RAW) - anchor_mono_ >= 10'000'000) {
    Anchor();
  }
}

void TimeFormatter::Format(std::int64_t unix_nanos, char* out) noexcept {
  std::int64_t second = unix_nanos / kNanosPerSecond;
  std::int64_t sub = unix_nanos % kNanosPerSecond;
  if (sub < 0) {  // before 1970: floor, not truncation
    sub += kNanosPerSecond;
    --second;
  }
  if (second != cached_second_) {
    using namespace std::chrono;
    const sys_seconds tp{seconds{second}};
    const auto day = floor<days>(tp);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> hms{tp - day};
    int y = static_cast<int>(ymd.year());
    if (y < 0) {
      y = 0;
    }
    if (y > 9999) {
      y = 9999;
    }
    const auto uy = static_cast<unsigned>(y);
    Write2(prefix_, uy / 100);
    Write2(prefix_ + 2, uy % 100);
    prefix_[4] = '-';
    Write2(prefix_ + 5, static_cast<unsigned>(ymd.month()));
    prefix_[7] = '-';
    Write2(prefix_ + 8, static_cast<unsigned>(ymd.day()));
    prefix_[10] = 'T';
    Write2(prefix_ + 11, static_cast<unsigned>(hms.hours().count()));
    prefix_[13] = ':';
    Write2(prefix_ + 14, static_cast<unsigned>(hms.minutes().count()));
    prefix_[16] = ':';
    Write2(prefix_ + 17, static_cast<unsigned>(hms.seconds().count()));
    prefix_[19] = '.';
    cached_second_ = second;
  }
  std::memcpy(out, prefix_, sizeof prefix_);
  const auto micros = static_cast<unsigned>(sub / 1000);
  Write2(out + 20, micros / 10000);
  Write2(out + 22, micros / 100 % 100);
  Write2(out + 24, micros % 100);
  out[26] = 'Z';
}

}  // namespace vigil::telemetry::internal

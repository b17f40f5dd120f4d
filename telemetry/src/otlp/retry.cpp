#include "otlp/retry.hpp"

#include <algorithm>
#include <array>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry::otlp {
namespace {

using std::chrono::system_clock;

// Reads exactly `n` digits at the front of `s`.
bool TakeDigits(std::string_view& s, std::size_t n, int& out) {
  if (s.size() < n) {
    return false;
  }
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  s.remove_prefix(n);
  return true;
}

bool TakeLiteral(std::string_view& s, std::string_view lit) {
  if (s.substr(0, lit.size()) != lit) {
    return false;
  }
  s.remove_prefix(lit.size());
  return true;
}

constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

template <std::size_t N>
bool TakeName(std::string_view& s, const std::array<std::string_view, N>& names, int* index) {
  for (std::size_t i = 0; i < N; ++i) {
    if (TakeLiteral(s, names[i])) {
      if (index != nullptr) {
        *index = static_cast<int>(i);
      }
      return true;
    }
  }
  return false;
}

// "HH:MM:SS"
bool TakeTime(std::string_view& s, int& h, int& m, int& sec) {
  return TakeDigits(s, 2, h) && TakeLiteral(s, ":") && TakeDigits(s, 2, m) && TakeLiteral(s, ":") &&
         TakeDigits(s, 2, sec) && h <= 23 && m <= 59 && sec <= 60;
}

std::optional<system_clock::time_point> Assemble(int year, int month0, int day, int h, int m,
                                                 int sec) {
  using namespace std::chrono;
  const year_month_day ymd{std::chrono::year{year},
                           std::chrono::month{static_cast<unsigned>(month0 + 1)},
                           std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  return system_clock::time_point{sys_days{ymd} + hours{h} + minutes{m} + seconds{sec}};
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<system_clock::time_point> ImfFixdate(std::string_view s) {
  int month = 0, day = 0, year = 0, h = 0, m = 0, sec = 0;
  if (TakeName(s, kDays, nullptr) && TakeLiteral(s, ", ") && TakeDigits(s, 2, day) &&
      TakeLiteral(s, " ") && TakeName(s, kMonths, &month) && TakeLiteral(s, " ") &&
      TakeDigits(s, 4, year) && TakeLiteral(s, " ") && TakeTime(s, h, m, sec) && s == " GMT") {
    return Assemble(year, month, day, h, m, sec);
  }
  return std::nullopt;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<system_clock::time_point> Rfc850Date(std::string_view s, int current_year) {
  int month = 0, day = 0, yy = 0, h = 0, m = 0, sec = 0;
  if (TakeName(s, kLongDays, nullptr) && TakeLiteral(s, ", ") && TakeDigits(s, 2, day) &&
      TakeLiteral(s, "-") && TakeName(s, kMonths, &month) && TakeLiteral(s, "-") &&
      TakeDigits(s, 2, yy) && TakeLiteral(s, " ") && TakeTime(s, h, m, sec) && s == " GMT") {
    int year = current_year / 100 * 100 + yy;
    if (year > current_year + 50) {
      year -= 100;
    }
    return Assemble(year, month, day, h, m, sec);
  }
  return std::nullopt;
}

// "Sun Nov  6 08:49:37 1994"
std::optional<system_clock::time_point> AsctimeDate(std::string_view s) {
  int month = 0, day = 0, year = 0, h = 0, m = 0, sec = 0;
  if (!(TakeName(s, kDays, nullptr) && TakeLiteral(s, " ") && TakeName(s, kMonths, &month) &&
        TakeLiteral(s, " "))) {
    return std::nullopt;
  }
  if (TakeLiteral(s, " ")) {
    if (!TakeDigits(s, 1, day)) {
      return std::nullopt;
    }
  } else if (!TakeDigits(s, 2, day)) {
    return std::nullopt;
  }
  if (TakeLiteral(s, " ") && TakeTime(s, h, m, sec) && TakeLiteral(s, " ") &&
      TakeDigits(s, 4, year) && s.empty()) {
    return Assemble(year, month, day, h, m, sec);
  }
  return std::nullopt;
}

}  // namespace

bool IsRetryableStatus(long status) noexcept {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

std::optional<std::chrono::system_clock::time_point> ParseHttpDate(
    std::string_view text, std::chrono::system_clock::time_point now) noexcept {
  using namespace std::chrono;
  text = text::TrimOws(text);
  if (auto t = ImfFixdate(text)) {
    return t;
  }
  const int current_year = static_cast<int>(year_month_day{floor<days>(now)}.year());
  if (auto t = Rfc850Date(text, current_year)) {
    return t;
  }
  return AsctimeDate(text);
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now) noexcept {
  using namespace std::chrono;
  constexpr std::int64_t kMaxSeconds = 365LL * 24 * 3600;
  value = text::TrimOws(value);
  if (value.empty()) {
    return std::nullopt;
  }
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t secs = 0;
    for (char c : value) {
      secs = std::min(kMaxSeconds, secs * 10 + (c - '0'));
    }
    return duration_cast<milliseconds>(seconds{secs});
  }
  auto when = ParseHttpDate(value, now);
  if (!when) {
    return std::nullopt;
  }
  if (*when <= now) {
    return milliseconds{0};
  }
  return std::min(ceil<milliseconds>(*when - now),
                  duration_cast<milliseconds>(seconds{kMaxSeconds}));
}

std::chrono::milliseconds BackoffDelay(unsigned retry, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max,
                                       std::uint64_t random) noexcept {
  if (initial.count() <= 0) {
    return std::chrono::milliseconds{0};
  }
  std::int64_t cap = std::max(max.count(), std::int64_t{0});
  std::int64_t base = initial.count();
  for (unsigned i = 0; i < retry && base < cap; ++i) {
    base *= 2;
  }
  base = std::min(base, cap);
  const std::int64_t half = base / 2;
  const auto span = static_cast<std::uint64_t>(base - half + 1);
  return std::chrono::milliseconds{half + static_cast<std::int64_t>(random % span)};
}

}  // namespace vigil::telemetry::otlp

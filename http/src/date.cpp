#include "date.hpp"

#include <time.h>

namespace vigil::http::internal {

std::string_view FormatHttpDate(std::time_t seconds, char (&out)[29]) noexcept {
  static constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  const auto two = [&](char* at, int v) {
    at[0] = static_cast<char>('0' + v / 10 % 10);
    at[1] = static_cast<char>('0' + v % 10);
  };
  const int year = tm.tm_year + 1900;
  char* p = out;
  for (int i = 0; i < 3; ++i) *p++ = kDays[tm.tm_wday % 7][i];
  *p++ = ',';
  *p++ = ' ';
  two(p, tm.tm_mday);
  p += 2;
  *p++ = ' ';
  for (int i = 0; i < 3; ++i) *p++ = kMonths[tm.tm_mon % 12][i];
  *p++ = ' ';
  two(p, year / 100);
  two(p + 2, year % 100);
  p += 4;
  *p++ = ' ';
  two(p, tm.tm_hour);
  p[2] = ':';
  two(p + 3, tm.tm_min);
  p[5] = ':';
  two(p + 6, tm.tm_sec);
  p += 8;
  *p++ = ' ';
  *p++ = 'G';
  *p++ = 'M';
  *p++ = 'T';
  return {out, static_cast<std::size_t>(p - out)};
}

std::string_view HttpDateNow() noexcept {
  thread_local std::time_t second = -1;
  thread_local char text[29];
  thread_local std::string_view view;
  timespec now{};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != second) {
    view = FormatHttpDate(now.tv_sec, text);
    second = now.tv_sec;
  }
  return view;
}

}  // namespace vigil::http::internal

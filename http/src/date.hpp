// The Date field of every response (RFC 9110 section 6.6.1), as an IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT").
//
// Each thread keeps the text of the current second and formats it again only when the
// second changes. The time comes from CLOCK_REALTIME_COARSE: the kernel's time as of its
// last tick, read from the vDSO without touching a hardware clock, a few nanoseconds per
// response; a Date is only precise to the second anyway.
//
//   res.set(beast::http::field::date, internal::HttpDateNow());
//
// Thread-safety: the view is the calling thread's own and stays valid until that thread
// calls again in a later second.
#pragma once

#include <ctime>
#include <string_view>

namespace vigil::http::internal {

// IMF-fixdate of `seconds` since the epoch into `out` (29 characters).
std::string_view FormatHttpDate(std::time_t seconds, char (&out)[29]) noexcept;

std::string_view HttpDateNow() noexcept;

}  // namespace vigil::http::internal

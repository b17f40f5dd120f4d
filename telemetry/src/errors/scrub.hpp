// What never leaves the process in an error report: the values of sensitive headers,
// query parameters, log fields and breadcrumb data. "Sensitive" is the log redaction list
// (log/json.hpp: authorization, cookie, password, token, secret, ...) applied to the
// name, plus the reporter's own header names.
//
//   if (IsSensitiveName(name, options.sensitive_headers)) value = kFiltered;
//   request.query_string = FilterQuery("access_token=abc&page=2");  //
//   access_token=[Filtered]&page=2
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace vigil::telemetry::internal {

inline constexpr std::string_view kFiltered = "[Filtered]";

// The log redaction rule, or (case-insensitively) one of `also`.
bool IsSensitiveName(std::string_view name, std::span<const std::string> also = {}) noexcept;

// A query string with the value of every parameter whose (percent-decoded) name is
// sensitive replaced by [Filtered]; the rest as it was.
std::string FilterQuery(std::string_view query);

}  // namespace vigil::telemetry::internal

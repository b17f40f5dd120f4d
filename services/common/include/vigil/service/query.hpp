// Reading the parameters every listing shares from a request's query string, with the
// errors a client can act on (the detail names the parameter).
//
//   std::int64_t limit = service::QueryLimit(ex.query(), /*default_limit=*/20,
//                                            /*max_limit=*/100);
//
// Thread-safety: pure functions; use from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace vigil::service {

// The `limit` parameter of `query` (the target's query string, without the '?'):
// `default_limit` when absent, else its value, which must be written as decimal digits
// (percent-encoded or not) and lie in 1..max_limit. Throws http::HttpError 422
// "limit: must be an integer between 1 and <max_limit>" for any other value (empty, 0,
// negative, too large, not digits), 400 "limit: must be given once" when the parameter
// appears more than once, and 400 for malformed percent-encoding. `max_limit` >= 1.
std::int64_t QueryLimit(std::string_view query, std::int64_t default_limit, std::int64_t max_limit);

}  // namespace vigil::service

// Entity tags for conditional GETs (RFC 9110 sections 8.8.3 and 13.1.2).
//
// A handler that serves a representation computes its ETag from the body it would send
// and answers 304 Not Modified, without the body, when the client's If-None-Match
// already names it. Clients then revalidate cheaply (Cache-Control: no-cache).
//
//   const std::string etag = http::StrongEtag(body);
//   ex.response().set("ETag", etag);
//   if (http::IfNoneMatchMatches(ex.header("if-none-match"), etag)) { /* answer 304 */ }
//
// The tag is a 64-bit hash of the bytes, the same in every process and on every
// platform, so that replicas behind a load balancer agree on it.
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::http {

// The 64-bit hash behind StrongEtag (stable across processes, builds and platforms).
std::uint64_t BodyHash(std::string_view body) noexcept;

// A strong entity tag for `body`: 16 lowercase hex digits in double quotes,
// e.g. "\"3f2a9c0d17b4e8a1\"".
std::string StrongEtag(std::string_view body);

// True when an If-None-Match value matches `etag` by the weak comparison RFC 9110 asks
// for with this field: "*" matches any tag; otherwise any listed entity-tag whose opaque
// part equals that of `etag`, with or without a W/ prefix on either side. An empty or
// malformed value does not match (the elements are read in order, and reading stops at
// the first malformed one), so the request proceeds to a full response. Never throws.
bool IfNoneMatchMatches(std::string_view if_none_match, std::string_view etag) noexcept;

}  // namespace vigil::http

// What the server checks in a request head once Beast has parsed it, before routing:
// the message framing and Host rules of RFC 9112 that Beast leaves to its user, and the
// request target's form.
//
// Beast frames a request by its Content-Length or a final `chunked` coding, and treats
// any other Transfer-Encoding as "no body". A proxy that did the same would forward the
// body bytes as the next request on the connection (request smuggling), so every case
// Beast lets through is decided here:
//
//   if (auto refusal = internal::CheckFraming(parser.get())) Reject(refusal->status, ...);
//   internal::RequestTarget t = internal::ParseTarget(parser.get().target());
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vigil/http/exchange.hpp>

namespace vigil::http::internal {

// Why a request head is refused: the status, the problem's detail and the error.type.
struct Refusal {
  unsigned status;
  std::string_view detail;
  std::string_view error_type;
};

// RFC 9112 section 6 (framing) and section 3.2 (Host), for a head Beast accepted:
//   - Transfer-Encoding in an HTTP/1.0 request, or together with Content-Length: 400;
//   - Transfer-Encoding whose final coding is not `chunked` (the body's length cannot be
//     known): 400; `chunked` applied twice: 400; any other coding before it: 400;
//   - HTTP/1.1 without Host, or any request with more than one Host line: 400;
//   - more than `max_fields` field lines: 431.
// Every refusal closes the connection: what follows cannot be trusted to be a request.
std::optional<Refusal> CheckFraming(const RequestHeader& head, std::size_t max_fields) noexcept;

// The request target (RFC 9112 section 3.2) as the router and handlers see it.
struct RequestTarget {
  // The origin form ("/path?query"): the target itself, or the path and query of an
  // absolute-form target ("http://host/path?query"). It views into the target, or into
  // `made` when it had to be made ("http://host?q" is "/?q").
  std::string_view origin() const noexcept { return made.empty() ? in_target : made; }
  std::string_view in_target;
  std::string made;
  std::optional<Refusal> refusal;
};

// Accepts the origin form and the absolute form (http or https). Refuses with 400 any
// other form, and any path with a dot-segment ("." or "..", also percent-encoded as
// "%2e"): such a path names another resource once normalised (RFC 3986 section 5.2.4),
// so a prefix route could be left towards an upstream that normalises paths itself.
// `target` must outlive the result.
RequestTarget ParseTarget(std::string_view target);

}  // namespace vigil::http::internal

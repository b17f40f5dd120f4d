#include "request_head.hpp"

#include <vigil/telemetry/text.hpp>

namespace vigil::http::internal {

namespace bhttp = boost::beast::http;
namespace text = vigil::telemetry::text;

namespace {

constexpr Refusal kBadRequest{400, "The request is not valid HTTP/1.1.", "malformed_request"};

// The transfer codings of every Transfer-Encoding line, in order (RFC 9110 section 5.3:
// several lines are one list). Returns the number of codings, the final one (lowercase
// comparison is done by the caller) and whether `chunked` appears before the end.
struct Codings {
  std::size_t count = 0;
  std::string_view last;
  bool chunked_before_last = false;
  bool empty_member = false;
  bool nameless_coding = false;  // parameters without a coding (";x"): malformed
};

Codings ReadCodings(const RequestHeader& head) {
  Codings c;
  for (auto it = head.find(bhttp::field::transfer_encoding);
       it != head.end() && it->name() == bhttp::field::transfer_encoding; ++it) {
    std::string_view v(it->value().data(), it->value().size());
    for (;;) {
      const auto comma = v.find(',');
      std::string_view member = text::TrimOws(v.substr(0, comma));
      if (!member.empty() && member.front() == ';') c.nameless_coding = true;
      // A coding's parameters (";q=1") do not change which coding it is.
      member = text::TrimOws(member.substr(0, member.find(';')));
      if (member.empty()) {
        // Empty list members are allowed by the list syntax, but a field with no coding
        // at all says nothing about the framing.
        if (comma == std::string_view::npos && c.count == 0) c.empty_member = true;
      } else {
        if (c.count > 0 && text::EqualsIgnoreCase(c.last, "chunked")) c.chunked_before_last = true;
        c.last = member;
        ++c.count;
      }
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return c;
}

// True when `segment` means "." or ".." once its percent-escapes of '.' are decoded.
bool IsDotSegment(std::string_view segment) noexcept {
  std::size_t dots = 0;
  for (std::size_t i = 0; i < segment.size();) {
    if (segment[i] == '.') {
      ++i;
    } else if (segment[i] == '%' && i + 2 < segment.size() && segment[i + 1] == '2' &&
               (segment[i + 2] == 'e' || segment[i + 2] == 'E')) {
      i += 3;
    } else {
      return false;
    }
    if (++dots > 2) return false;
  }
  return dots == 1 || dots == 2;
}

bool HasDotSegment(std::string_view path) noexcept {
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    const auto slash = path.find('/');
    if (IsDotSegment(path.substr(0, slash))) return true;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return false;
}

}  // namespace

std::optional<Refusal> CheckFraming(const RequestHeader& head, std::size_t max_fields) noexcept {
  std::size_t fields = 0;
  std::size_t hosts = 0;
  bool has_transfer_encoding = false;
  bool has_content_length = false;
  for (const auto& field : head) {
    ++fields;
    switch (field.name()) {
      case bhttp::field::host:
        ++hosts;
        break;
      case bhttp::field::transfer_encoding:
        has_transfer_encoding = true;
        break;
      case bhttp::field::content_length:
        has_content_length = true;
        break;
      default:
        break;
    }
  }
  if (fields > max_fields) {
    return Refusal{431, "The request has too many header fields.", "header_too_large"};
  }
  if (hosts > 1 || (hosts == 0 && head.version() >= 11)) {
    return Refusal{400, "An HTTP/1.1 request must have exactly one Host header field.",
                   "malformed_request"};
  }
  if (!has_transfer_encoding) return std::nullopt;
  if (head.version() < 11 || has_content_length) {
    return Refusal{400,
                   "Transfer-Encoding is not allowed in an HTTP/1.0 request or together with "
                   "Content-Length.",
                   "malformed_request"};
  }
  const Codings codings = ReadCodings(head);
  if (codings.count == 0 || codings.empty_member || codings.nameless_coding ||
      !text::EqualsIgnoreCase(codings.last, "chunked") || codings.chunked_before_last) {
    return Refusal{400,
                   "The request body's length cannot be determined: chunked must be the "
                   "final transfer coding, applied once.",
                   "malformed_request"};
  }
  if (codings.count > 1) {
    return Refusal{400, "Only the chunked transfer coding is accepted.", "unsupported_coding"};
  }
  return std::nullopt;
}

RequestTarget ParseTarget(std::string_view target) {
  RequestTarget t;
  if (!target.empty() && target.front() == '/') {
    t.in_target = target;
  } else {
    std::size_t scheme = 0;
    if (text::EqualsIgnoreCase(target.substr(0, 7), "http://")) {
      scheme = 7;
    } else if (text::EqualsIgnoreCase(target.substr(0, 8), "https://")) {
      scheme = 8;
    } else {
      t.refusal = Refusal{400, "The request target must be a path or an absolute http URL.",
                          "malformed_request"};
      return t;
    }
    const std::string_view rest = target.substr(scheme);
    const auto path_start = rest.find_first_of("/?");
    if (path_start == 0 || rest.substr(0, path_start).find('#') != std::string_view::npos) {
      t.refusal = kBadRequest;
      return t;
    }
    if (path_start == std::string_view::npos) {
      t.made.push_back('/');
    } else if (rest[path_start] == '?') {
      t.made.reserve(1 + rest.size() - path_start);
      t.made.append("/").append(rest.substr(path_start));
    } else {
      t.in_target = rest.substr(path_start);
    }
  }
  const std::string_view origin = t.origin();
  if (HasDotSegment(origin.substr(0, origin.find('?')))) {
    t.refusal =
        Refusal{400, "The request path contains a \".\" or \"..\" segment.", "malformed_request"};
  }
  return t;
}

}  // namespace vigil::http::internal

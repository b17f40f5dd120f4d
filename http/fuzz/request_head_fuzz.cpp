// Fuzzes what the server decides about a request head before routing: any bytes that
// Beast accepts as a head go through CheckFraming and ParseTarget, and an accepted
// request must be one whose body length is known the way the RFC says (no
// Transfer-Encoding, or exactly "chunked" in HTTP/1.1 without Content-Length; exactly
// one Host in HTTP/1.1), and whose target is a path without dot-segments.
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vigil/telemetry/text.hpp>

#include "request_head.hpp"

namespace {

namespace bhttp = boost::beast::http;
namespace text = vigil::telemetry::text;

void Require(bool condition) {
  if (!condition) std::abort();
}

bool IsDotSegment(std::string_view s) {
  std::string decoded;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && s[i + 1] == '2' &&
        (s[i + 2] == 'e' || s[i + 2] == 'E')) {
      decoded.push_back('.');
      i += 2;
    } else {
      decoded.push_back(s[i]);
    }
  }
  return decoded == "." || decoded == "..";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The target alone, whatever bytes it holds.
  {
    const auto t = vigil::http::internal::ParseTarget(input);
    if (!t.refusal) {
      const std::string_view origin = t.origin();
      Require(!origin.empty() && origin.front() == '/');
      const std::string_view path = origin.substr(0, origin.find('?'));
      std::size_t start = 1;
      for (;;) {
        const auto slash = path.find('/', start);
        Require(!IsDotSegment(path.substr(start, slash - start)));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
      }
    }
  }

  // A whole head, as Beast parses it.
  bhttp::request_parser<bhttp::empty_body> parser;
  parser.header_limit(64 * 1024);
  parser.eager(false);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  const auto& head = parser.get();
  const auto refusal = vigil::http::internal::CheckFraming(head, 100);
  if (refusal) {
    Require(refusal->status == 400 || refusal->status == 431 || refusal->status == 501);
    return 0;
  }
  Require(head.count(bhttp::field::host) == 1 ||
          (head.version() < 11 && head.count(bhttp::field::host) == 0));
  if (head.count(bhttp::field::transfer_encoding) != 0) {
    // Accepted only as the one coding "chunked", which Beast must then frame as chunked.
    Require(head.version() >= 11);
    Require(head.count(bhttp::field::content_length) == 0);
    Require(parser.chunked());
    std::size_t codings = 0;
    for (auto it = head.find(bhttp::field::transfer_encoding);
         it != head.end() && it->name() == bhttp::field::transfer_encoding; ++it) {
      std::string_view v(it->value().data(), it->value().size());
      for (;;) {
        const auto comma = v.find(',');
        std::string_view m = text::TrimOws(v.substr(0, comma));
        m = text::TrimOws(m.substr(0, m.find(';')));
        if (!m.empty()) {
          Require(text::EqualsIgnoreCase(m, "chunked"));
          ++codings;
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
    Require(codings == 1);
  }
  return 0;
}

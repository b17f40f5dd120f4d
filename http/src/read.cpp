#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>

#include "read.hpp"
#include "tls.hpp"

namespace vigil::http::internal {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

template <typename Stream, bool isRequest>
asio::awaitable<error_code> ReadMessage(Stream& socket, boost::beast::flat_buffer& buffer,
                                        bhttp::basic_parser<isRequest>& parser, ReadUntil until,
                                        std::size_t max_head_bytes) {
  const bool whole = until == ReadUntil::kMessage;
  const auto done = [&] { return whole ? parser.is_done() : parser.is_header_done(); };
  // A parser that stops at the end of the header would need one put() per piece of body.
  if (whole) parser.eager(true);
  std::size_t head_used = 0;
  while (!done()) {
    if (buffer.size() != 0) {
      const bool in_head = max_head_bytes != 0 && !parser.is_header_done();
      error_code ec;
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (in_head && !parser.is_header_done()) {
        // The fields Beast took so far and the bytes it waits to complete are all head.
        head_used += used;
        if (head_used + buffer.size() >= max_head_bytes) co_return bhttp::error::header_limit;
      }
      if (ec && ec != bhttp::error::need_more) co_return ec;
      if (!ec && used != 0) continue;
    }
    const std::size_t room = boost::beast::read_size(buffer, 65536);
    if (room == 0) co_return bhttp::error::buffer_overflow;
    auto [ec, n] =
        co_await socket.async_read_some(buffer.prepare(room), asio::as_tuple(asio::use_awaitable));
    buffer.commit(n);
    if (ec == asio::error::eof) {
      if (!parser.got_some()) co_return bhttp::error::end_of_stream;
      // A message framed by the end of the connection ends here; others are cut short.
      error_code eof;
      parser.put_eof(eof);
      co_return eof;
    }
    if (ec) co_return ec;
  }
  co_return error_code{};
}

template asio::awaitable<error_code> ReadMessage(asio::ip::tcp::socket&, boost::beast::flat_buffer&,
                                                 bhttp::basic_parser<true>&, ReadUntil,
                                                 std::size_t);
template asio::awaitable<error_code> ReadMessage(asio::ip::tcp::socket&, boost::beast::flat_buffer&,
                                                 bhttp::basic_parser<false>&, ReadUntil,
                                                 std::size_t);
// A server reads requests through TLS.
template asio::awaitable<error_code> ReadMessage(TlsStream&, boost::beast::flat_buffer&,
                                                 bhttp::basic_parser<true>&, ReadUntil,
                                                 std::size_t);

}  // namespace vigil::http::internal

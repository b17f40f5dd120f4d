// Reading HTTP messages with Beast's parser, without a posted completion for bytes that
// already arrived.
//
// Beast's async_read and async_read_header complete through a posted handler when the
// buffer already holds what they need, which on a keep-alive connection is the common
// case (the request arrived with the read that woke the connection; a small response body
// arrived with its header). ReadMessage parses what the buffer holds first and awaits the
// socket only while the parser needs more, so the hot path costs no extra trip through
// the event loop. The parsing itself is Beast's (basic_parser::put). Internal to
// libvigil_http: the server's connections and the client read with it.
//
//   auto ec = co_await http::ReadMessage(socket, buffer, parser, http::ReadUntil::kHeader);
//
// Thread-safety: as the socket, buffer and parser: one coroutine at a time.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/system/error_code.hpp>

namespace vigil::http::internal {

enum class ReadUntil { kHeader, kMessage };

// Feeds `parser` from `buffer`, reading from `socket` into `buffer` when it runs dry,
// until the header (or the whole message) is complete. Returns Beast's and Asio's errors
// as its async_read would: end_of_stream when the peer closed before a message started,
// partial_message when it closed in the middle, header_limit, body_limit...
//
// `max_head_bytes` (when not 0) bounds the whole head, start line and fields together:
// Beast's own header_limit applies to what one put() has not consumed yet (it takes
// complete fields as they arrive), so a head made of many fields arriving in several
// reads could pass it many times over.
//
// `Stream` is a tcp::socket or a server connection's TLS stream (the two read.cpp
// instantiates).
template <typename Stream, bool isRequest>
boost::asio::awaitable<boost::system::error_code> ReadMessage(
    Stream& socket, boost::beast::flat_buffer& buffer,
    boost::beast::http::basic_parser<isRequest>& parser, ReadUntil until,
    std::size_t max_head_bytes = 0);

}  // namespace vigil::http::internal

// Writing an HTTP/1.1 message whose body is in memory, in one system call when the
// socket takes it.
//
// Beast's async_write walks a generic buffer sequence (one piece per field) through its
// serializer and completes through the event loop even when the kernel took every byte
// at once, which on a keep-alive connection is nearly always. WriteMessage lays the
// start line and fields out in one contiguous buffer, offers head and body to the
// kernel in one gathered, non-blocking send, and only when the socket's send buffer is
// full waits for the rest asynchronously. The message is framed by its own fields:
// set Content-Length (prepare_payload) first; the body is sent as is. Internal to
// libvigil_http: the server's connections and the client write with it.
//
//   std::string scratch;  // reused across messages of one connection
//   response.prepare_payload();
//   auto ec = co_await http::WriteMessage(socket, response, response.body(), scratch);
//
// The socket is switched to non-blocking mode (Asio's user-visible flag): synchronous
// operations on it then fail with would_block instead of waiting.
//
// Thread-safety: as the socket: one coroutine at a time.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/system/error_code.hpp>

#include <string>
#include <string_view>
#include <vigil/http/field_block.hpp>

namespace vigil::http::internal {

// Replaces `out` with the start line ("GET /x HTTP/1.1" or "HTTP/1.1 200 OK"; a
// response's reason is its own or the standard one), the fields in order and the empty
// line: the bytes Beast's serializer writes for the header.
template <bool isRequest>
void SerializeHead(const boost::beast::http::header<isRequest>& head, std::string& out);

// The same for a response, with `block`'s fields written after the response's own: a
// response field the block replaces or removes is left out (field_block.hpp).
void SerializeHead(const boost::beast::http::response_header<>& head, std::string& out,
                   const FieldBlock& block);

// Sends SerializeHead(head) followed by `body`. Returns the socket's error, if any.
template <bool isRequest>
boost::asio::awaitable<boost::system::error_code> WriteMessage(
    boost::asio::ip::tcp::socket& socket, const boost::beast::http::header<isRequest>& head,
    std::string_view body, std::string& scratch);
// A response's, with `block`'s fields (when not null).
boost::asio::awaitable<boost::system::error_code> WriteMessage(
    boost::asio::ip::tcp::socket& socket, const boost::beast::http::response_header<>& head,
    std::string_view body, std::string& scratch, const FieldBlock* block);

// Sends `head` then `body`, bytes already laid out by the caller (either may be empty),
// the same way: one non-blocking gathered send, the event loop only for what the socket
// did not take. Both must stay valid until the call completes.
boost::asio::awaitable<boost::system::error_code> WriteBuffers(boost::asio::ip::tcp::socket& socket,
                                                               std::string_view head,
                                                               std::string_view body);
// The same, and `sent` tells how many bytes the kernel took before the call ended (all of
// them on success). A client uses it to know that a failed request never left the
// process (0), which makes sending it again safe whatever its method.
boost::asio::awaitable<boost::system::error_code> WriteBuffers(boost::asio::ip::tcp::socket& socket,
                                                               std::string_view head,
                                                               std::string_view body,
                                                               std::size_t& sent);

// Appends "name: value\r\n" to a head being laid out by hand.
inline void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace vigil::http::internal

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include <array>

#include "write.hpp"

namespace vigil::http::internal {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

void AppendVersion(unsigned version, std::string& out) {
  out.append("HTTP/");
  out.push_back(static_cast<char>('0' + version / 10 % 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
}

void AppendStartLine(const bhttp::request_header<>& head, std::string& out) {
  const auto method = head.method_string();
  const auto target = head.target();
  out.append(method.data(), method.size()).push_back(' ');
  out.append(target.data(), target.size()).push_back(' ');
  AppendVersion(head.version(), out);
  out.append("\r\n");
}

void AppendStartLine(const bhttp::response_header<>& head, std::string& out) {
  AppendVersion(head.version(), out);
  char code[4] = {' ', '0', '0', '0'};
  unsigned status = head.result_int() % 1000;
  for (int i = 3; i >= 1; --i, status /= 10) code[i] = static_cast<char>('0' + status % 10);
  out.append(code, sizeof code).push_back(' ');
  auto reason = head.reason();
  if (reason.empty()) reason = bhttp::obsolete_reason(head.result());
  out.append(reason.data(), reason.size()).append("\r\n");
}

}  // namespace

template <bool isRequest>
void SerializeHead(const bhttp::header<isRequest>& head, std::string& out) {
  out.clear();
  AppendStartLine(head, out);
  for (const auto& field : head) {
    const auto name = field.name_string();
    const auto value = field.value();
    AppendField(out, {name.data(), name.size()}, {value.data(), value.size()});
  }
  out.append("\r\n");
}

void SerializeHead(const bhttp::response_header<>& head, std::string& out,
                   const FieldBlock& block) {
  out.clear();
  AppendStartLine(head, out);
  std::uint32_t kept = 0;  // the block's entries whose field the response keeps
  for (const auto& field : head) {
    const auto name = field.name_string();
    const std::string_view n(name.data(), name.size());
    if (const int entry = block.Find(n); entry >= 0) {
      if (!block.KeepsResponseField(entry)) continue;
      kept |= 1U << entry;
    }
    const auto value = field.value();
    AppendField(out, n, {value.data(), value.size()});
  }
  block.AppendTo(out, kept);
  out.append("\r\n");
}

namespace {

// Both overloads of WriteBuffers; `sent` may be null. (They forward without a coroutine
// of their own, so that the common overload costs no extra frame.)
asio::awaitable<error_code> Write(asio::ip::tcp::socket& socket, std::string_view head,
                                  std::string_view body, std::size_t* sent) {
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head.data(), head.size()),
                                            asio::buffer(body.data(), body.size())};
  const std::size_t total = head.size() + body.size();
  error_code ec;
  std::size_t done = 0;
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  if (!ec) done = socket.write_some(buffers, ec);
  if (sent != nullptr) *sent = done;
  if (!ec && done == total) co_return error_code{};
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) co_return ec;
  // The send buffer is full: the rest goes out as the peer reads.
  if (done < head.size()) {
    buffers[0] = asio::buffer(head.data() + done, head.size() - done);
  } else {
    buffers[0] = asio::const_buffer();
    buffers[1] = asio::buffer(body.data() + (done - head.size()), total - done);
  }
  auto [wec, n] = co_await asio::async_write(socket, buffers, asio::as_tuple(asio::use_awaitable));
  if (sent != nullptr) *sent = done + n;
  co_return wec;
}

}  // namespace

asio::awaitable<error_code> WriteBuffers(asio::ip::tcp::socket& socket, std::string_view head,
                                         std::string_view body) {
  return Write(socket, head, body, nullptr);
}

asio::awaitable<error_code> WriteBuffers(asio::ip::tcp::socket& socket, std::string_view head,
                                         std::string_view body, std::size_t& sent) {
  sent = 0;
  return Write(socket, head, body, &sent);
}

template <bool isRequest>
asio::awaitable<error_code> WriteMessage(asio::ip::tcp::socket& socket,
                                         const bhttp::header<isRequest>& head,
                                         std::string_view body, std::string& scratch) {
  SerializeHead(head, scratch);
  return WriteBuffers(socket, scratch, body);
}

asio::awaitable<error_code> WriteMessage(asio::ip::tcp::socket& socket,
                                         const bhttp::response_header<>& head,
                                         std::string_view body, std::string& scratch,
                                         const FieldBlock* block) {
  if (block == nullptr) {
    SerializeHead(head, scratch);
  } else {
    SerializeHead(head, scratch, *block);
  }
  return WriteBuffers(socket, scratch, body);
}

template void SerializeHead<true>(const bhttp::header<true>&, std::string&);
template void SerializeHead<false>(const bhttp::header<false>&, std::string&);
template asio::awaitable<error_code> WriteMessage<true>(asio::ip::tcp::socket&,
                                                        const bhttp::header<true>&,
                                                        std::string_view, std::string&);
template asio::awaitable<error_code> WriteMessage<false>(asio::ip::tcp::socket&,
                                                         const bhttp::header<false>&,
                                                         std::string_view, std::string&);

}  // namespace vigil::http::internal

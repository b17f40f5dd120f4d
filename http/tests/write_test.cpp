// http::WriteMessage and SerializeHead: the bytes on the wire are those Beast's own
// serializer produces, whole, whether the kernel takes them at once or not.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>
#include <sstream>
#include <string>

#include "write.hpp"

namespace vigil::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using internal::SerializeHead;
using internal::WriteMessage;

template <bool isRequest>
std::string BeastHead(const bhttp::header<isRequest>& head) {
  std::ostringstream os;
  os << head;
  return os.str();
}

template <bool isRequest>
std::string OurHead(const bhttp::header<isRequest>& head) {
  std::string out = "stale bytes that must go";
  SerializeHead(head, out);
  return out;
}

TEST(SerializeHead, RequestsMatchBeast) {
  bhttp::request_header<> get;
  get.method(bhttp::verb::get);
  get.target("/items/7?x=1");
  get.version(11);
  get.set(bhttp::field::host, "catalog:8082");
  get.insert("X-Custom", "a");
  get.insert("X-Custom", "b");
  get.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(OurHead(get), BeastHead(get));
  EXPECT_EQ(OurHead(get).substr(0, 27), "GET /items/7?x=1 HTTP/1.1\r\n");

  bhttp::request_header<> brew;
  brew.method_string("BREW");
  brew.target("/pot");
  brew.version(10);
  EXPECT_EQ(OurHead(brew), "BREW /pot HTTP/1.0\r\n\r\n");
  EXPECT_EQ(OurHead(brew), BeastHead(brew));
}

TEST(SerializeHead, ResponsesMatchBeast) {
  for (const unsigned status : {200u, 204u, 304u, 404u, 418u, 503u, 299u, 599u}) {
    bhttp::response_header<> res;
    res.result(status);
    res.version(11);
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::content_length, "2");
    EXPECT_EQ(OurHead(res), BeastHead(res)) << status;
  }
  bhttp::response_header<> custom;
  custom.result(200);
  custom.reason("Fine Indeed");
  custom.version(10);
  EXPECT_EQ(OurHead(custom), "HTTP/1.0 200 Fine Indeed\r\n\r\n");
  EXPECT_EQ(OurHead(custom), BeastHead(custom));
}

// A field block: its fields follow the response's own; a kept field stays and the block's
// value is left out, a replaced one is the block's, a removed one is gone, whatever the
// case of its name.
TEST(SerializeHead, ResponsesWithAFieldBlock) {
  FieldBlock block;
  block.Set("X-Frame-Options", "DENY", FieldBlock::kReplace)
      .Set("Cache-Control", "no-store", FieldBlock::kKeep)
      .Remove("Server");

  bhttp::response_header<> bare;
  bare.result(200);
  bare.version(11);
  bare.set(bhttp::field::content_length, "0");
  std::string out;
  SerializeHead(bare, out, block);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Frame-Options: DENY\r\n"
            "Cache-Control: no-store\r\n\r\n");

  bhttp::response_header<> upstream;
  upstream.result(200);
  upstream.version(11);
  upstream.set("x-frame-options", "ALLOWALL");
  upstream.set(bhttp::field::server, "nginx/1.22");
  upstream.set(bhttp::field::cache_control, "no-cache");
  SerializeHead(upstream, out, block);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nX-Frame-Options: DENY\r\n\r\n");

  // A streamed head gets the same through the field container.
  const std::string with_block = out;
  block.ApplyTo(upstream);
  EXPECT_EQ(OurHead(upstream), with_block);
  EXPECT_EQ(upstream["X-Frame-Options"], "DENY");
  EXPECT_EQ(upstream["Cache-Control"], "no-cache");
  EXPECT_EQ(upstream.count(bhttp::field::server), 0u);
}

TEST(FieldBlock, RefusesWhatCouldSplitAHead) {
  FieldBlock block;
  EXPECT_THROW(block.Set("Bad Name", "x", FieldBlock::kKeep), std::invalid_argument);
  EXPECT_THROW(block.Set("X-A", "a\r\nSet-Cookie: s=1", FieldBlock::kKeep), std::invalid_argument);
  block.Set("X-A", "a", FieldBlock::kKeep);
  EXPECT_THROW(block.Set("x-a", "b", FieldBlock::kKeep), std::invalid_argument);
  EXPECT_EQ(block.Find("X-a"), 0);
  EXPECT_EQ(block.Find("X-B"), -1);
  EXPECT_EQ(block.Find(std::string(100, 'x')), -1);
}

// A connected pair of loopback sockets on one io_context.
struct SocketPair {
  asio::io_context io;
  asio::ip::tcp::socket writer{io};
  asio::ip::tcp::socket reader{io};

  SocketPair() {
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    writer.connect(acceptor.local_endpoint());
    reader = acceptor.accept();
  }
};

// Writes `body` behind a response head while the other end reads everything; returns
// what arrived and the writer's error.
std::pair<std::string, error_code> RoundTrip(SocketPair& pair, const std::string& body,
                                             bool close_reader_first = false) {
  bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/octet-stream");
  res.body() = body;
  res.prepare_payload();
  std::string scratch;
  std::optional<error_code> result;
  std::string received;
  if (close_reader_first) pair.reader.close();
  asio::co_spawn(
      pair.io,
      [&]() -> asio::awaitable<void> {
        result = co_await WriteMessage(pair.writer, res.base(), res.body(), scratch);
        pair.writer.shutdown(asio::ip::tcp::socket::shutdown_send);
      },
      asio::detached);
  if (!close_reader_first) {
    asio::co_spawn(
        pair.io,
        [&]() -> asio::awaitable<void> {
          auto [ec, n] = co_await asio::async_read(pair.reader, asio::dynamic_buffer(received),
                                                   asio::as_tuple(asio::use_awaitable));
          (void)n;
          EXPECT_EQ(ec, asio::error::eof);
        },
        asio::detached);
  }
  pair.io.run();
  EXPECT_TRUE(result.has_value());
  EXPECT_EQ(received.empty() ? std::string() : received.substr(0, BeastHead(res.base()).size()),
            received.empty() ? std::string() : BeastHead(res.base()));
  return {received, result.value_or(error_code{})};
}

TEST(WriteMessage, SmallMessageArrivesWhole) {
  SocketPair pair;
  const auto [received, ec] = RoundTrip(pair, "{\"ok\":true}");
  EXPECT_FALSE(ec);
  EXPECT_TRUE(received.ends_with("\r\n\r\n{\"ok\":true}")) << received;
  EXPECT_NE(received.find("Content-Length: 11\r\n"), std::string::npos);
}

// Larger than any socket send buffer: the first send is partial and the rest follows
// asynchronously, in order.
TEST(WriteMessage, BodyLargerThanTheSendBufferArrivesWhole) {
  SocketPair pair;
  std::string body(16 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i * 7 % 26);
  const auto [received, ec] = RoundTrip(pair, body);
  EXPECT_FALSE(ec);
  ASSERT_GT(received.size(), body.size());
  EXPECT_EQ(received.substr(received.size() - body.size()), body);
}

TEST(WriteMessage, PeerGoneIsAnErrorNotAnException) {
  SocketPair pair;
  std::string body(8 * 1024 * 1024, 'x');
  const auto [received, ec] = RoundTrip(pair, body, /*close_reader_first=*/true);
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe) << ec.message();
}

}  // namespace
}  // namespace vigil::http

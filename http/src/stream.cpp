#include "stream.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>

namespace vigil::http::internal {

using boost::system::error_code;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

void ConnectionStream::StartTls(std::shared_ptr<asio::ssl::context> context) {
  context_ = std::move(context);
  tls_ = std::make_unique<TlsStream>(socket_, *context_);
}

asio::awaitable<void> ConnectionStream::SendCloseNotify() {
  SSL* ssl = tls_->native_handle();
  // As if the client's close_notify had arrived: SSL_shutdown then sends ours and is done,
  // instead of waiting to read the client's.
  SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  auto [ec] = co_await tls_->async_shutdown(kTuple);
  (void)ec;
}

asio::awaitable<error_code> WriteTlsMessage(TlsStream& stream,
                                            const boost::beast::http::response_header<>& head,
                                            std::string_view body, std::string& scratch,
                                            const FieldBlock* block) {
  if (block != nullptr) {
    SerializeHead(head, scratch, *block);
  } else {
    SerializeHead(head, scratch);
  }
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(scratch),
                                                  asio::buffer(body.data(), body.size())};
  auto [ec, n] = co_await asio::async_write(stream, buffers, kTuple);
  (void)n;
  co_return ec;
}

}  // namespace vigil::http::internal

#include "vigil/testing/server.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include <poll.h>

namespace vigil::test_support {

RunningServer::RunningServer(http::Routes routes, http::Pipeline pipeline,
                             http::ServerOptions options, std::size_t workers,
                             telemetry::Telemetry* telemetry)
    : runtime_(workers) {
  Start(std::move(routes), std::move(pipeline), std::move(options), telemetry);
}

RunningServer::RunningServer(std::uint16_t port, http::Routes routes, http::Pipeline pipeline,
                             http::ServerOptions options)
    : runtime_(1), fixed_port_(port) {
  Start(std::move(routes), std::move(pipeline), std::move(options));
}

RunningServer::~RunningServer() {
  Shutdown(std::chrono::milliseconds(10)).wait_for(std::chrono::seconds(5));
  runtime_.Stop();
  thread_.join();
}

void RunningServer::Start(http::Routes routes, http::Pipeline pipeline, http::ServerOptions options,
                          telemetry::Telemetry* telemetry) {
  options.port = fixed_port_;
  server_ = std::make_unique<http::Server>(runtime_, std::move(options), std::move(routes),
                                           std::move(pipeline));
  if (telemetry != nullptr) server_->Instrument(*telemetry);
  server_->Start();
  thread_ = std::thread([this] { runtime_.Run(); });
}

std::future<void> RunningServer::Shutdown(std::chrono::milliseconds deadline) {
  auto done = std::make_shared<std::promise<void>>();
  if (shut_down_) {
    done->set_value();
    return done->get_future();
  }
  shut_down_ = true;
  server_->Shutdown(deadline, [done] { done->set_value(); });
  return done->get_future();
}

ClientResponse RunningServer::RoundTrip(std::string_view request) const {
  RawClient client(port());
  return client.RoundTrip(request);
}

RawClient::RawClient(std::uint16_t port) : socket_(io_) {
  socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
}

void RawClient::Send(std::string_view bytes) {
  boost::asio::write(socket_, boost::asio::buffer(bytes));
}

ClientResponse RawClient::Read() {
  ClientResponse res;
  boost::beast::http::read(socket_, buffer_, res);
  return res;
}

ClientResponse RawClient::ReadHead() {
  boost::beast::http::response_parser<boost::beast::http::string_body> parser;
  parser.skip(true);
  boost::beast::http::read(socket_, buffer_, parser);
  return parser.release();
}

bool RawClient::ClosedByServer() {
  if (buffer_.size() != 0) return false;
  char byte;
  boost::system::error_code ec;
  socket_.read_some(boost::asio::buffer(&byte, 1), ec);
  return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
}

bool RawClient::ClosedByServerWithin(std::chrono::milliseconds within) {
  if (buffer_.size() != 0) return false;
  pollfd p{socket_.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return false;
  return ClosedByServer();
}

}  // namespace vigil::test_support

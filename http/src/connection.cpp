#include "connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>

#include "date.hpp"
#include "read.hpp"
#include "request_head.hpp"
#include "tls.hpp"
#include "write.hpp"

namespace vigil::http {

namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadSize = 16 * 1024;
// How long a connection that is done may take to close: its last bytes out (TLS
// close_notify), the client's unread input drained (DrainBeforeClose).
constexpr auto kMaxLinger = std::chrono::milliseconds(2000);

bool IsClientGone(const error_code& ec) noexcept {
  return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

Connection::Connection(Server& server, Server::Worker& worker, asio::ip::tcp::socket socket,
                       asio::cancellation_signal& cancel)
    : server_(server),
      worker_(worker),
      cancel_(cancel),
      socket_(std::move(socket)),
      stream_(socket_),
      deadline_(socket_.get_executor(), socket_) {
  next = worker_.connections;
  if (next != nullptr) next->prev = this;
  worker_.connections = this;
}

Connection::~Connection() {
  deadline_.Stop();
  if (prev != nullptr) prev->next = next;
  if (next != nullptr) next->prev = prev;
  if (worker_.connections == this) worker_.connections = next;
}

std::optional<std::uint64_t> Connection::RequestContentLength() const noexcept {
  boost::optional<std::uint64_t> n;
  if (stream_parser_) {
    n = stream_parser_->content_length();
  } else if (string_parser_) {
    n = string_parser_->content_length();
  } else if (head_parser_ && head_parser_->is_header_done()) {
    n = head_parser_->content_length();
  }
  return n ? std::optional<std::uint64_t>(*n) : std::nullopt;
}

bool Connection::RequestChunked() const noexcept {
  if (stream_parser_) return stream_parser_->chunked();
  if (string_parser_) return string_parser_->chunked();
  return head_parser_ && head_parser_->is_header_done() && head_parser_->chunked();
}

void Connection::RequestClose() noexcept {
  close_requested_ = true;
  if (idle_) {
    error_code ignored;
    socket_.cancel(ignored);
  }
}

void Connection::Abort() noexcept {
  close_requested_ = true;
  error_code ignored;
  socket_.cancel(ignored);
  cancel_.emit(asio::cancellation_type::terminal);
}

bool Connection::KeepAlive(const Exchange& ex) const noexcept {
  return !ex.closing() && !close_requested_ && !worker_.stopping && request_keep_alive_;
}

// TLS: the handshake, within the header timeout. A client that connects and closes
// without sending a byte (a load balancer's probe) is no failure; anything else that ends
// without a session is counted by reason and logged at debug (it is the client's doing).
asio::awaitable<bool> Connection::Handshake(std::string_view peer_address) {
  deadline_.Set(server_.options_.header_timeout);
  auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, kTuple);
  if (!ec && socket_.available(ec) == 0 && !ec) co_return false;
  if (!ec) {
    stream_.StartTls(server_.tls_->current());
    auto [handshake] =
        co_await stream_.tls()->async_handshake(asio::ssl::stream_base::server, kTuple);
    if (!handshake) co_return true;
    ec = handshake;
  }
  if (!close_requested_) server_.tls_->HandshakeFailed(ec, deadline_.expired(), peer_address);
  co_return false;
}

// Reads the next request's header. Returns false when the connection should simply end
// (client gone, idle too long, shutdown); true with `ex` either ready for routing or
// already answered with the reason it was rejected.
asio::awaitable<bool> Connection::ReadHeader(Exchange& ex, bool first) {
  const ServerOptions& opt = server_.options_;
  head_parser_.emplace();
  head_parser_->header_limit(static_cast<std::uint32_t>(opt.max_header_bytes));
  // Body limits depend on the route, known only once the header is read.
  head_parser_->body_limit(boost::none);
  rejection_status_ = 0;
  string_parser_.reset();
  stream_parser_.reset();
  stream_response_.reset();
  serializer_.reset();
  continue_sent_ = false;

  // Waiting for a request to start is idling: shutdown may close the connection now,
  // and the idle timeout (the header timeout for a new connection) applies.
  if (buffer_.size() == 0) {
    idle_ = true;
    if (close_requested_) co_return false;
    deadline_.Set(first ? opt.header_timeout : opt.idle_timeout);
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kReadSize), kTuple);
    idle_ = false;
    if (ec) co_return false;
    buffer_.commit(n);
  }
  idle_ = false;
  if (!first) deadline_.Set(opt.header_timeout);
  const error_code ec = co_await internal::ReadMessage(
      stream_, buffer_, *head_parser_, internal::ReadUntil::kHeader, opt.max_header_bytes);
  ex.request_ = &head_parser_->get();
  request_keep_alive_ = !ec && head_parser_->keep_alive();
  if (!ec) {
    if (const auto refusal = internal::CheckFraming(head_parser_->get(), opt.max_header_fields)) {
      ex.CloseAfterResponse();
      ex.set_error_type(refusal->error_type);
      Reject(refusal->status, std::string(refusal->detail));
    }
    co_return true;
  }

  // A rejection is answered (by the pipeline, so that it carries the request's ids),
  // then the connection closes: what follows in the stream cannot be trusted to start a
  // request.
  ex.CloseAfterResponse();
  if (deadline_.expired()) {
    ex.set_error_type("timeout");
    Reject(408, "The request headers did not arrive in time.");
  } else if (ec == bhttp::error::header_limit && head_parser_->get().target().empty()) {
    // The limit was crossed before the request line ended (the parser takes it whole):
    // its target is what is long.
    ex.set_error_type("uri_too_long");
    Reject(414, "The request target exceeds " + std::to_string(opt.max_header_bytes) + " bytes.");
  } else if (ec == bhttp::error::header_limit) {
    ex.set_error_type("header_too_large");
    Reject(431, "The request line and headers exceed " + std::to_string(opt.max_header_bytes) +
                    " bytes.");
  } else if (IsClientGone(ec)) {
    co_return false;
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() ||
             ec == bhttp::error::body_limit) {
    ex.set_error_type("malformed_request");
    Reject(400, "The request is not valid HTTP/1.1.");
  } else {
    co_return false;
  }
  co_return true;
}

void Connection::Reject(unsigned status, std::string detail) {
  unread_input_ = true;
  rejection_status_ = status;
  rejection_detail_ = std::move(detail);
}

// Fills in what routing decides: the route, and how the body is read.
void Connection::Route(Exchange& ex, Handler& handler) {
  const RequestHeader& req = head_parser_->get();
  ex.method_label_ = MethodLabel(req.method());
  internal::RequestTarget target =
      internal::ParseTarget(std::string_view(req.target().data(), req.target().size()));
  if (target.refusal) {
    // Nothing of the request is trusted, its body included: answer, then close.
    ex.CloseAfterResponse();
    unread_input_ = true;
    ex.set_error_type(target.refusal->error_type);
    handler = [refusal = *target.refusal](Exchange& e) -> asio::awaitable<void> {
      e.RespondProblem(refusal.status, refusal.detail);
      co_return;
    };
    return;
  }
  ex.target_storage_ = std::move(target.made);
  ex.target_ = ex.target_storage_.empty() ? target.in_target : ex.target_storage_;
  const auto q = ex.target_.find('?');
  ex.path_ = ex.target_.substr(0, q);
  ex.query_ = q == std::string_view::npos ? std::string_view() : ex.target_.substr(q + 1);
  const std::string_view method(req.method_string().data(), req.method_string().size());
  const Routes& routes = server_.routes();
  ex.match_ = routes.router().Find(method, ex.path_);

  const bool has_body = head_parser_->chunked() ||
                        (head_parser_->content_length() && *head_parser_->content_length() > 0);
  // A method outside the HTTP registry that Beast knows is refused whatever the route,
  // so that even a route accepting "*" never sees one: 405 where the path exists (a
  // client's mistake, not the server's failure: no 501 for what anyone may send), with
  // the methods it takes.
  if (req.method() == bhttp::verb::unknown && ex.match_.found()) {
    ex.match_.result = Router::Match::Result::kMethodNotAllowed;
    ex.match_.allow = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";
  }
  if (!ex.match_.found()) {
    // The body of a request we refuse is not read: the connection closes after the answer.
    if (has_body) ex.CloseAfterResponse();
    if (ex.match_.result == Router::Match::Result::kMethodNotAllowed) {
      handler = [](Exchange& e) -> asio::awaitable<void> {
        e.RespondProblem(405, "The route does not accept this method.");
        e.response().set(bhttp::field::allow,
                         boost::beast::string_view(e.match_.allow.data(), e.match_.allow.size()));
        co_return;
      };
    } else {
      handler = [](Exchange& e) -> asio::awaitable<void> {
        e.RespondProblem(404, "No route matches the request's path.");
        co_return;
      };
    }
    return;
  }

  const Routes::Entry& entry = routes.entry(ex.match_.id);
  body_limit_ = entry.options.max_body_bytes != 0 ? entry.options.max_body_bytes
                                                  : server_.options_.max_body_bytes;
  if (head_parser_->content_length() && *head_parser_->content_length() > body_limit_) {
    ex.CloseAfterResponse();
    unread_input_ = true;
    const std::uint64_t limit = body_limit_;
    handler = [limit](Exchange& e) -> asio::awaitable<void> {
      e.set_error_type("body_too_large");
      e.RespondProblem(413, "The request body exceeds " + std::to_string(limit) + " bytes.");
      co_return;
    };
    return;
  }

  if (entry.options.body == BodyMode::kStreamed) {
    stream_parser_.emplace(std::move(*head_parser_));
    stream_parser_->body_limit(body_limit_);
    ex.request_ = &stream_parser_->get();
    handler = entry.handler;
  } else {
    string_parser_.emplace(std::move(*head_parser_));
    string_parser_->body_limit(body_limit_);
    ex.request_ = &string_parser_->get();
    const Handler* inner = &entry.handler;
    handler = [this, inner](Exchange& e) -> asio::awaitable<void> {
      co_await ReadBufferedBody(e);
      co_await (*inner)(e);
    };
  }
}

void Connection::FailBodyRead(Exchange& ex, const error_code& ec) {
  ex.CloseAfterResponse();
  if (deadline_.expired()) {
    ex.set_error_type("timeout");
    throw HttpError(408, "The request body did not arrive in time.");
  }
  if (ec == bhttp::error::body_limit) {
    ex.set_error_type("body_too_large");
    throw HttpError(413, "The request body exceeds " + std::to_string(body_limit_) + " bytes.");
  }
  ex.set_error_type(IsClientGone(ec) ? "client_closed" : "malformed_request");
  throw HttpError(400, "The request body is incomplete or malformed.");
}

asio::awaitable<void> Connection::SendContinueIfExpected(Exchange& ex) {
  if (continue_sent_) co_return;
  continue_sent_ = true;
  const auto expect = ex.request().find(bhttp::field::expect);
  if (expect == ex.request().end() || ex.request().version() < 11 ||
      !boost::beast::iequals(expect->value(), "100-continue")) {
    co_return;
  }
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  deadline_.Set(server_.options_.body_timeout);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(kContinue), kTuple);
  (void)n;
  if (ec) FailBodyRead(ex, ec);
}

asio::awaitable<void> Connection::ReadBufferedBody(Exchange& ex) {
  if (string_parser_->is_done()) co_return;
  co_await SendContinueIfExpected(ex);
  deadline_.Set(server_.options_.body_timeout);
  const error_code ec = co_await internal::ReadMessage(stream_, buffer_, *string_parser_,
                                                       internal::ReadUntil::kMessage);
  if (ec) FailBodyRead(ex, ec);
  ex.body_ = std::move(string_parser_->get().body());
}

asio::awaitable<std::size_t> Connection::ReadSome(Exchange& ex, char* out, std::size_t size) {
  if (!stream_parser_) throw std::logic_error("ReadSome is for routes with BodyMode::kStreamed");
  if (stream_parser_->is_done() || size == 0) co_return 0;
  co_await SendContinueIfExpected(ex);
  // Beast reads at most the buffer's free capacity per call: room for a full piece.
  if (buffer_.capacity() - buffer_.size() < size) buffer_.reserve(buffer_.size() + size);
  auto& body = stream_parser_->get().body();
  while (!stream_parser_->is_done()) {
    body.data = out;
    body.size = size;
    deadline_.Set(server_.options_.body_timeout);
    auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, *stream_parser_, kTuple);
    (void)n;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) FailBodyRead(ex, ec);
    const std::size_t got = size - body.size;
    if (got > 0) co_return got;
  }
  co_return 0;
}

asio::awaitable<std::string> Connection::ReadAll(Exchange& ex) {
  std::string all;
  char chunk[kReadSize];
  for (;;) {
    const std::size_t n = co_await ReadSome(ex, chunk, sizeof chunk);
    if (n == 0) break;
    all.append(chunk, n);
  }
  co_return all;
}

asio::awaitable<void> Connection::SendHead(Exchange& ex, const ResponseHeader& head,
                                           std::optional<std::uint64_t> content_length) {
  if (ex.head_sent_) throw std::logic_error("SendHead called twice");
  stream_response_.emplace();
  static_cast<ResponseHeader&>(*stream_response_) = head;
  // Fields the middleware set (X-Request-Id, ...) unless the handler's head has them.
  for (const auto& field : ex.response_) {
    if (stream_response_->find(field.name_string()) == stream_response_->end()) {
      stream_response_->insert(field.name_string(), field.value());
    }
  }
  if (stream_response_->find(bhttp::field::date) == stream_response_->end()) {
    const std::string_view date = internal::HttpDateNow();
    stream_response_->set(bhttp::field::date, beast::string_view(date.data(), date.size()));
  }
  stream_response_->version(ex.request().version() >= 11 ? 11 : 10);
  stream_response_->keep_alive(KeepAlive(ex));
  // A response to HEAD is the GET's head alone: its framing fields describe the body a
  // GET would get, and nothing follows them (SendBody and Finish send nothing).
  const bool head_only = ex.request().method() == bhttp::verb::head;
  if (content_length) {
    stream_response_->content_length(*content_length);
  } else if (stream_response_->version() >= 11) {
    stream_response_->chunked(true);
  } else if (!head_only) {
    stream_response_->keep_alive(false);
    ex.CloseAfterResponse();
  }
  ex.response_.result(head.result_int());
  ex.responded_ = true;
  ex.head_sent_ = true;
  if (ex.field_block_ != nullptr) ex.field_block_->ApplyTo(*stream_response_);
  serializer_.emplace(*stream_response_);
  deadline_.Set(server_.options_.body_timeout);
  auto [ec, n] = co_await bhttp::async_write_header(stream_, *serializer_, kTuple);
  (void)n;
  if (ec) {
    ex.CloseAfterResponse();
    ex.set_error_type("client_closed");
    throw boost::system::system_error(ec);
  }
  if (head_only) ex.finished_ = true;
}

asio::awaitable<void> Connection::SendBody(Exchange& ex, const char* data, std::size_t size) {
  if (!serializer_) throw std::logic_error("SendBody before SendHead");
  if (size == 0 || ex.request().method() == bhttp::verb::head) co_return;
  auto& body = stream_response_->body();
  body.data = const_cast<char*>(data);  // buffer_body only reads through it when writing
  body.size = size;
  body.more = true;
  deadline_.Set(server_.options_.body_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream_, *serializer_, kTuple);
  (void)n;
  if (ec == bhttp::error::need_buffer) ec = {};
  if (ec) {
    ex.CloseAfterResponse();
    ex.set_error_type("client_closed");
    throw boost::system::system_error(ec);
  }
  ex.bytes_sent_ += size;
}

asio::awaitable<void> Connection::Finish(Exchange& ex) {
  if (!serializer_) throw std::logic_error("Finish before SendHead");
  if (ex.finished_) co_return;
  auto& body = stream_response_->body();
  body.data = nullptr;
  body.size = 0;
  body.more = false;
  deadline_.Set(server_.options_.body_timeout);
  auto [ec, n] = co_await bhttp::async_write(stream_, *serializer_, kTuple);
  (void)n;
  if (ec && ec != bhttp::error::need_buffer) {
    ex.CloseAfterResponse();
    ex.set_error_type("client_closed");
    throw boost::system::system_error(ec);
  }
  ex.finished_ = true;
}

asio::awaitable<bool> Connection::WriteResponse(Exchange& ex) {
  if (ex.abort_) co_return false;
  if (ex.head_sent_) {
    // A streamed response that did not finish cannot be completed: the connection ends.
    const bool reusable = ex.finished_ && KeepAlive(ex);
    co_return reusable;
  }
  if (!ex.responded_) ex.RespondProblem(500, "The server could not produce a response.");
  Response& res = ex.response_;
  const unsigned status = res.result_int();
  // 1xx, 204 and 304 responses have no body (RFC 9110 section 6.4.1).
  if (status < 200 || status == 204 || status == 304) res.body().clear();
  const bool keep_alive = KeepAlive(ex);
  res.version(ex.request_ != nullptr && ex.request_->version() < 11 ? 10 : 11);
  res.keep_alive(keep_alive);
  // An upstream's Date passes through the gateway; every other answer gets ours.
  if (res.find(bhttp::field::date) == res.end()) {
    const std::string_view date = internal::HttpDateNow();
    res.set(bhttp::field::date, beast::string_view(date.data(), date.size()));
  }
  // A response to HEAD has the GET's fields and no body: the Content-Length its handler
  // set (a proxy relays the upstream's), else that of the body the GET would get.
  const bool head = ex.request_ != nullptr && ex.request_->method() == bhttp::verb::head;
  std::string head_length = head ? std::string(res[bhttp::field::content_length]) : std::string();
  res.prepare_payload();
  if (head) {
    if (head_length.empty()) head_length = std::string(res[bhttp::field::content_length]);
    res.body().clear();
    if (!head_length.empty()) res.set(bhttp::field::content_length, head_length);
  }
  deadline_.Set(server_.options_.body_timeout);
  const error_code ec = co_await internal::WriteMessage(stream_, res.base(), res.body(),
                                                        head_buffer_, ex.field_block_);
  co_return !ec && keep_alive;
}

asio::awaitable<void> Connection::Run() {
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  const asio::ip::tcp::endpoint peer = socket_.remote_endpoint(ignored);
  std::string peer_address;
  try {
    peer_address = peer.address().to_string();
  } catch (...) {
    peer_address = "unknown";
  }
  if (server_.tls_ != nullptr && !co_await Handshake(peer_address)) {
    deadline_.Stop();
    socket_.close(ignored);
    co_return;
  }
  const bool secure = stream_.tls() != nullptr;
  // Whether the stream may end with TLS close_notify: not after a response cut short,
  // which close_notify would make look complete to a client reading to the end.
  bool ended_cleanly = true;
  for (bool first = true;; first = false) {
    Exchange ex(*this);
    ex.peer_ = peer;
    ex.peer_address_ = peer_address;
    ex.secure_ = secure;
    ex.worker_ = worker_.index;
    if (!co_await ReadHeader(ex, first)) break;
    ex.start_ = std::chrono::steady_clock::now();

    Handler handler;
    if (rejection_status_ == 0) {
      Route(ex, handler);
    } else {
      // Rejected while reading: the pipeline still runs so the request is observed.
      handler = [this](Exchange& e) -> asio::awaitable<void> {
        e.RespondProblem(rejection_status_, rejection_detail_);
        co_return;
      };
    }
    co_await server_.pipeline_.Run(ex, handler);
    if (!ex.responded_ && ex.error_) {
      ex.RespondProblem(500, "The server could not produce a response.");
    }
    const bool keep_alive = co_await WriteResponse(ex);
    ended_cleanly = !ex.aborted() && (!ex.head_sent_ || ex.finished_);
    if (ex.aborted()) break;
    // A body the handler left unread would be taken for the next request, and closing
    // with it unread would reset the connection under the response (see
    // DrainBeforeClose), whether or not the response said "close" already (a body over
    // its limit, an upstream's early answer relayed by a proxy). A request answered
    // without routing had no body, or set unread_input_ itself.
    if ((string_parser_ && !string_parser_->is_done()) ||
        (stream_parser_ && !stream_parser_->is_done())) {
      unread_input_ = true;
      break;
    }
    if (!keep_alive) break;
  }
  if (secure && ended_cleanly) {
    deadline_.Set(std::min<std::chrono::milliseconds>(kMaxLinger, server_.options_.body_timeout));
    co_await stream_.SendCloseNotify();
  }
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  if (unread_input_) co_await DrainBeforeClose();
  deadline_.Stop();
  socket_.close(ignored);
}

// Closing a socket with unread input makes the kernel send a reset, and a reset can
// destroy the response on its way: the client (or a proxy such as our gateway, still
// sending the body we refused) then sees "connection reset" instead of our 413. So after
// answering we stop sending (FIN), and read and discard what still arrives until the
// client closes, for a bounded time and amount, as HTTP servers do (a "lingering close").
asio::awaitable<void> Connection::DrainBeforeClose() {
  constexpr std::uint64_t kMaxDrainBytes = 4 * 1024 * 1024;
  deadline_.Set(std::min<std::chrono::milliseconds>(kMaxLinger, server_.options_.body_timeout));
  char scratch[16 * 1024];
  std::uint64_t drained = 0;
  while (drained < kMaxDrainBytes) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(scratch), kTuple);
    if (ec) break;
    drained += n;
  }
}

}  // namespace vigil::http

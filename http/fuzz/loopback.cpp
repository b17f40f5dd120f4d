#include "loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>

#include <boost/beast/core/string.hpp>

namespace vigil::http::fuzz {

namespace {

// Open descriptors of this process.
std::size_t OpenDescriptors() {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n;
}

[[noreturn]] void SystemFailure(const char* call) { FuzzFailure(call, std::strerror(errno)); }

constexpr std::string_view kTokenChars =
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

bool IsFieldValue(std::string_view v) {
  for (const char c : v) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && b != '\t') || b == 0x7F) return false;
  }
  return true;
}

bool IsDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

bool Closes(const Reply& r) {
  const std::string_view connection = r.Field("connection");
  if (boost::beast::iequals(connection, "close")) return true;
  return r.version == "HTTP/1.0" && !boost::beast::iequals(connection, "keep-alive");
}

}  // namespace

std::string_view Reply::Field(std::string_view name) const noexcept {
  for (const auto& [n, v] : fields) {
    if (boost::beast::iequals(n, name)) return v;
  }
  return {};
}

std::size_t Reply::Count(std::string_view name) const noexcept {
  std::size_t count = 0;
  for (const auto& field : fields) {
    if (boost::beast::iequals(field.first, name)) ++count;
  }
  return count;
}

std::vector<Reply> SplitReplies(const LoopbackServer::Answer& answer) {
  std::vector<Reply> replies;
  std::string_view rest = answer.bytes;
  while (!rest.empty()) {
    if (!replies.empty() && replies.back().status >= 200 && Closes(replies.back())) {
      FuzzFailure("bytes after a response that closes the connection", answer.bytes);
    }
    const std::size_t end = rest.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (answer.reset) break;
      FuzzFailure("a response ends inside its head", answer.bytes);
    }
    std::string_view head = rest.substr(0, end + 2);
    rest.remove_prefix(end + 4);
    Reply r;
    // "HTTP/1.1 200 OK\r\n"
    const std::size_t line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    r.version = line.substr(0, 8);
    if ((r.version != "HTTP/1.1" && r.version != "HTTP/1.0") || line.size() < 13 ||
        line[8] != ' ' || !IsDigits(line.substr(9, 3)) || line[12] != ' ' ||
        !IsFieldValue(line.substr(13))) {
      FuzzFailure("a malformed status line", answer.bytes);
    }
    r.status = static_cast<unsigned>(std::stoul(std::string(line.substr(9, 3))));
    if (r.status < 100 || r.status > 599) FuzzFailure("a status out of range", answer.bytes);
    while (!head.empty()) {
      const std::size_t eol = head.find("\r\n");
      const std::string_view field = head.substr(0, eol);
      head.remove_prefix(eol + 2);
      const std::size_t colon = field.find(':');
      const std::string_view name = field.substr(0, colon);
      if (colon == std::string_view::npos || name.empty() ||
          name.find_first_not_of(kTokenChars) != std::string_view::npos ||
          field.substr(colon + 1, 1) != " " || !IsFieldValue(field.substr(colon + 2))) {
        FuzzFailure("a malformed field line in a response", answer.bytes);
      }
      r.fields.emplace_back(name, field.substr(colon + 2));
    }
    if (r.Count("transfer-encoding") != 0) {
      FuzzFailure("a response with Transfer-Encoding (the server's own are not chunked)",
                  answer.bytes);
    }
    std::size_t length = 0;
    if (r.status >= 200 && r.status != 204 && r.status != 304) {
      const std::string_view declared = r.Field("content-length");
      if (r.Count("content-length") != 1 || !IsDigits(declared) || declared.size() > 9) {
        FuzzFailure("a response without one Content-Length", answer.bytes);
      }
      length = std::stoul(std::string(declared));
    } else if (r.Count("content-length") != 0 && r.Field("content-length") != "0") {
      FuzzFailure("a bodiless status with a Content-Length", answer.bytes);
    }
    const bool head_response = length > 0 && (rest.empty() || rest.starts_with("HTTP/1."));
    if (!head_response) {
      if (rest.size() < length) {
        if (answer.reset) break;
        FuzzFailure("a response body shorter than its Content-Length", answer.bytes);
      }
      r.body = rest.substr(0, length);
      rest.remove_prefix(length);
    }
    replies.push_back(std::move(r));
  }
  return replies;
}

telemetry::Logger& QuietLog() {
  static telemetry::Logger log([] {
    telemetry::LoggerOptions o;
    o.file_path = "/dev/null";
    o.handle_signals = false;
    return o;
  }());
  return log;
}

void FuzzFailure(std::string_view what, std::string_view detail) {
  std::string text;
  for (const char c : detail.substr(0, 2048)) {
    const auto b = static_cast<unsigned char>(c);
    if (b == '\n') {
      text += "\\n\n";
    } else if (b >= 0x20 && b < 0x7F) {
      text.push_back(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", b);
      text += escaped;
    }
  }
  std::fprintf(stderr, "\n==fuzz== %.*s\n%s\n", static_cast<int>(what.size()), what.data(),
               text.c_str());
  std::abort();
}

LoopbackServer::LoopbackServer(Routes routes, Pipeline pipeline, ServerOptions options) {
  options.bind = "127.0.0.1";
  options.port = 0;
  server_ = std::make_unique<Server>(runtime_, std::move(options), std::move(routes),
                                     std::move(pipeline));
  server_->Start();
  thread_ = std::thread([this] { runtime_.Run(); });
}

LoopbackServer::~LoopbackServer() {
  std::promise<void> done;
  server_->Shutdown(std::chrono::milliseconds(10), [&done] { done.set_value(); });
  done.get_future().wait_for(std::chrono::seconds(5));
  runtime_.Stop();
  thread_.join();
}

LoopbackServer::Answer LoopbackServer::Converse(std::string_view request) {
  // Non-blocking: the server may answer (and stop reading) before the request is all
  // written, so writing and reading alternate as the socket allows; and libFuzzer's timer
  // signal interrupts calls, which a blocking connect() could not resume.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) SystemFailure("socket()");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EINPROGRESS && errno != EINTR) SystemFailure("connect() to the loopback server");
    pollfd p{fd, POLLOUT, 0};
    while (::poll(&p, 1, -1) < 0) {
      if (errno != EINTR) SystemFailure("poll() for connect()");
    }
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      errno = error;
      SystemFailure("connect() to the loopback server");
    }
  }

  Answer answer;
  std::size_t sent = 0;
  bool sending = true;
  if (request.empty()) {
    ::shutdown(fd, SHUT_WR);
    sending = false;
  }
  char buffer[16 * 1024];
  for (;;) {
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      SystemFailure("poll()");
    }
    if (sending && (p.revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      // A server that closed its side (an answer and "close") takes no more: stop there.
      if (n < 0 && errno != EAGAIN && errno != EINTR) sent = request.size();
      if (sent == request.size()) {
        ::shutdown(fd, SHUT_WR);
        sending = false;
      }
    }
    if ((p.revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      answer.bytes.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == ECONNRESET) {
      answer.reset = true;
      break;
    } else if (errno != EAGAIN && errno != EINTR) {
      SystemFailure("recv()");
    }
  }
  ::close(fd);

  // The server has closed its side; it lets the connection go right after.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->connections() != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      FuzzFailure("the server still counts a connection 10 s after its client closed", request);
    }
    std::this_thread::yield();
  }
  // Descriptors: counted once things are warm, then checked now and then.
  ++calls_;
  if (calls_ == 64) baseline_fds_ = OpenDescriptors();
  if (calls_ > 64 && calls_ % 1024 == 0 && OpenDescriptors() > baseline_fds_ + 16) {
    FuzzFailure("open descriptors grow with the inputs (a leak per connection)",
                std::to_string(OpenDescriptors()) + " open, " + std::to_string(baseline_fds_) +
                    " after the first 64 inputs");
  }
  return answer;
}

}  // namespace vigil::http::fuzz

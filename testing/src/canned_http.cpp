#include "vigil/testing/canned_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace vigil::test_support {

std::string CannedResponse(int status, const std::string& extra_headers, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Gunzip(const std::string& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  std::string out;
  char chunk[16384];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(chunk, sizeof chunk - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("not a complete gzip member");
  return out;
}

namespace {

// A socket listening on an ephemeral loopback port; sets `port`.
int Listen(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 16) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw std::system_error(error, std::generic_category(), "listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

// port_ is set in the body: a member initializer would reset it after Listen().
SilentListener::SilentListener() { fd_ = Listen(port_); }

SilentListener::~SilentListener() { ::close(fd_); }

CannedServer::CannedServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
  listen_fd_ = Listen(port_);
  thread_ = std::thread([this] { Serve(); });
}

CannedServer::~CannedServer() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (int c = conn_fd_.load(); c >= 0) {
    ::shutdown(c, SHUT_RDWR);
  }
  thread_.join();
  ::close(listen_fd_);
}

std::string CannedServer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

std::vector<std::string> CannedServer::heads() {
  std::lock_guard lock(mu_);
  return heads_;
}

std::vector<std::string> CannedServer::bodies() {
  std::lock_guard lock(mu_);
  return bodies_;
}

std::size_t CannedServer::requests() {
  std::lock_guard lock(mu_);
  return bodies_.size();
}

void CannedServer::Serve() {
  std::size_t next = 0;
  while (!stop_) {
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      return;
    }
    ++connections_;
    conn_fd_ = c;
    std::string buffer;
    while (!stop_) {
      std::string head, body;
      if (!ReadRequest(c, buffer, head, body)) {
        break;
      }
      const std::string& response = responses_[std::min(next++, responses_.size() - 1)];
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
        bodies_.push_back(body);
      }
      if (::send(c, response.data(), response.size(), MSG_NOSIGNAL) < 0) {
        break;
      }
    }
    conn_fd_ = -1;
    ::close(c);
  }
}

bool CannedServer::ReadRequest(int c, std::string& buffer, std::string& head, std::string& body) {
  auto fill = [&] {
    char chunk[4096];
    const ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
    if (n <= 0) {
      return false;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) {
      return false;
    }
  }
  head = buffer.substr(0, end);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  std::size_t length = 0;
  if (auto at = lower.find("content-length:"); at != std::string::npos) {
    length = std::stoul(lower.substr(at + 15));
  }
  while (buffer.size() < end + 4 + length) {
    if (!fill()) {
      return false;
    }
  }
  body = buffer.substr(end + 4, length);
  buffer.erase(0, end + 4 + length);
  return true;
}

}  // namespace vigil::test_support

#include "vigil/testing/redis.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "vigil/testing/eventually.hpp"
#include "vigil/testing/ports.hpp"

extern char** environ;

namespace vigil::test_support {

namespace {

constexpr std::chrono::seconds kReadyWithin{10};

// A blocking loopback connection that reads RESP replies.
class Connection {
 public:
  explicit Connection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    timeval timeout{};
    timeout.tv_sec = 10;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int error = errno;
      ::close(fd_);
      throw std::runtime_error("cannot connect to redis-server on port " + std::to_string(port) +
                               ": " + std::strerror(error));
    }
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Send(const std::vector<std::string_view>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (std::string_view arg : args) {
      out.append("$").append(std::to_string(arg.size())).append("\r\n").append(arg).append("\r\n");
    }
    for (std::size_t sent = 0; sent < out.size();) {
      const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("redis-server: cannot send a command");
      sent += static_cast<std::size_t>(n);
    }
  }

  RedisReply Receive() {
    const std::string line = Line();
    if (line.empty()) throw std::runtime_error("redis-server: an empty reply line");
    const std::string rest = line.substr(1);
    RedisReply reply;
    switch (line[0]) {
      case '+':
        reply.type = RedisReply::Type::kStatus;
        reply.text = rest;
        return reply;
      case '-':
        reply.type = RedisReply::Type::kError;
        reply.text = rest;
        return reply;
      case ':':
        reply.type = RedisReply::Type::kInteger;
        reply.integer = std::stoll(rest);
        return reply;
      case '$': {
        const long long size = std::stoll(rest);
        if (size < 0) return reply;  // nil
        reply.type = RedisReply::Type::kString;
        reply.text = Take(static_cast<std::size_t>(size) + 2);
        reply.text.resize(static_cast<std::size_t>(size));  // without its \r\n
        return reply;
      }
      case '*': {
        const long long count = std::stoll(rest);
        if (count < 0) return reply;  // nil
        reply.type = RedisReply::Type::kArray;
        for (long long i = 0; i < count; ++i) reply.elements.push_back(Receive());
        return reply;
      }
      default:
        throw std::runtime_error("redis-server: not a RESP reply: " + line);
    }
  }

 private:
  // Reads until `buffer_` holds `size` bytes, or throws.
  void Fill(std::size_t size) {
    while (buffer_.size() < size) {
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) throw std::runtime_error("redis-server: no reply (connection closed or 10 s)");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  std::string Take(std::size_t size) {
    Fill(size);
    std::string out = buffer_.substr(0, size);
    buffer_.erase(0, size);
    return out;
  }
  // One line without its \r\n.
  std::string Line() {
    std::size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) Fill(buffer_.size() + 1);
    std::string line = Take(end + 2);
    line.resize(end);
    return line;
  }

  int fd_;
  std::string buffer_;
};

}  // namespace

RedisServer::RedisServer(std::string requirepass)
    : dir_("redis"), password_(std::move(requirepass)) {
  // Another program may take the free port before redis-server binds it: try another.
  for (int attempt = 0;; ++attempt) {
    port_ = UnusedPort();
    try {
      Launch();
      return;
    } catch (const std::runtime_error& e) {
      if (attempt == 2 || std::string_view(e.what()).find("in use") == std::string_view::npos) {
        throw;
      }
    }
  }
}

RedisServer::~RedisServer() { Kill(); }

std::string RedisServer::url() const {
  std::string url = "redis://";
  if (!password_.empty()) url.append(":").append(password_).append("@");
  return url.append("127.0.0.1:").append(std::to_string(port_));
}

RedisReply RedisServer::Command(std::initializer_list<std::string_view> args) const {
  return Call(std::vector<std::string_view>(args));
}

RedisReply RedisServer::Command(const std::vector<std::string>& args) const {
  return Call(std::vector<std::string_view>(args.begin(), args.end()));
}

RedisReply RedisServer::Call(const std::vector<std::string_view>& args) const {
  Connection connection(port_);
  if (!password_.empty()) {
    connection.Send({"AUTH", password_});
    if (RedisReply auth = connection.Receive(); auth.type == RedisReply::Type::kError) return auth;
  }
  connection.Send(args);
  return connection.Receive();
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::Restart() {
  Kill();
  Launch();
}

void RedisServer::Launch() {
  const std::string log = dir_.File("redis.log");
  std::vector<std::string> args = {"redis-server",
                                   "--bind",
                                   "127.0.0.1",
                                   "--port",
                                   std::to_string(port_),
                                   "--dir",
                                   dir_.path().string(),
                                   "--daemonize",
                                   "no",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no"};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // Not the test's sockets: a client connection kept open by the server would outlive it.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  const int rc = ::posix_spawnp(&pid_, "redis-server", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error(
        rc == ENOENT ? "redis-server is not installed: install the Debian package redis-server "
                       "(./vigil test does)"
                     : std::string("cannot start redis-server: ") + std::strerror(rc));
  }
  // Ready when it answers PING (polled); given up on early if it exited.
  bool exited = false;
  const bool ready = Eventually(
      [&] {
        int status = 0;
        exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
        if (exited) return true;
        try {
          const RedisReply pong = Command({"PING"});
          return pong.type == RedisReply::Type::kStatus && pong.text == "PONG";
        } catch (const std::runtime_error&) {
          return false;
        }
      },
      kReadyWithin);
  if (exited) {
    pid_ = -1;
    throw std::runtime_error("redis-server exited:\n" + ReadFile(log));
  }
  if (!ready) {
    Kill();
    throw std::runtime_error("redis-server not ready in 10 s:\n" + ReadFile(log));
  }
}

}  // namespace vigil::test_support

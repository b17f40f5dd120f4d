// Descriptor handling and batched writes.
#include "log/sink.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <vigil/telemetry/log.hpp>

namespace vigil::telemetry::internal {
namespace {

constexpr int kFileFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
constexpr mode_t kFileMode = 0644;

int OpenFile(const std::string& path) noexcept {
  int fd;
  do {
    fd = open(path.c_str(), kFileFlags, kFileMode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

std::int64_t MonotonicMillis() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Loggers that share a descriptor (several loggers on stdout, tests sharing a file) take
// turns per batch: a write(2) larger than PIPE_BUF to a pipe may otherwise interleave
// with another writer's once the pipe is full, and concurrent writes through one file
// description can race on its offset. Striped by descriptor number; a spin lock rather
// than a mutex because a fatal-signal handler takes it too. Waiting is bounded: past
// kWaitLimit the batch is written anyway (a holder may be the thread that crashed).
class FdWriteLock {
 public:
  explicit FdWriteLock(int fd) noexcept : flag_(Stripe(fd)) {
    constexpr std::int64_t kWaitLimit = Sink::kWriteStallBudget.count() + 1000;
    std::int64_t deadline = -1;
    for (unsigned spins = 0; flag_.exchange(true, std::memory_order_acquire); ++spins) {
      if (spins < 64) {
        continue;
      }
      const std::int64_t now = MonotonicMillis();
      if (deadline < 0) {
        deadline = now + kWaitLimit;
      }
      if (now >= deadline) {
        return;  // not held: the destructor leaves the flag alone
      }
      const timespec pause{0, 50'000};
      nanosleep(&pause, nullptr);
    }
    held_ = true;
  }
  ~FdWriteLock() {
    if (held_) {
      flag_.store(false, std::memory_order_release);
    }
  }
  FdWriteLock(const FdWriteLock&) = delete;
  FdWriteLock& operator=(const FdWriteLock&) = delete;

 private:
  static std::atomic<bool>& Stripe(int fd) noexcept {
    static std::atomic<bool> stripes[64];
    return stripes[static_cast<unsigned>(fd) % 64];
  }
  std::atomic<bool>& flag_;
  bool held_ = false;
};

}  // namespace

Sink::Sink(const LoggerOptions& options) {
  if (options.fd >= 0) {
    fd_ = options.fd;
  } else if (!options.file_path.empty()) {
    path_ = options.file_path;
    fd_ = OpenFile(path_);
    owned_ = fd_ >= 0;
    if (fd_ < 0) {
      fd_ = 2;  // better on stderr than nowhere; Reopen() retries the file
    }
  } else {
    fd_ = 1;
  }
}

Sink::~Sink() {
  if (owned_) {
    close(fd_);
  }
}

bool Sink::WriteAll(const char* data, std::size_t size) noexcept {
  const FdWriteLock lock(fd_);
  std::int64_t stall_deadline = -1;
  while (size != 0) {
    const ssize_t n = write(fd_, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      stall_deadline = -1;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const std::int64_t now = MonotonicMillis();
      if (stall_deadline < 0) {
        stall_deadline = now + kWriteStallBudget.count();
      }
      if (now >= stall_deadline) {
        return false;
      }
      pollfd pfd{fd_, POLLOUT, 0};
      poll(&pfd, 1, static_cast<int>(stall_deadline - now));
      continue;
    }
    return false;  // a real error, or write() returning 0
  }
  return true;
}

void Sink::Reopen() noexcept {
  if (path_.empty()) {
    return;
  }
  const int fd = OpenFile(path_);
  if (fd < 0) {
    return;
  }
  if (owned_) {
    close(fd_);
  }
  fd_ = fd;
  owned_ = true;
}

OutBuffer::OutBuffer(Sink* sink, std::size_t capacity)
    : sink_(sink), data_(new char[capacity]), capacity_(capacity) {}

void OutBuffer::AppendSlow(const char* s, std::size_t n) noexcept {
  while (n != 0) {
    std::size_t room = capacity_ - size_;
    if (room == 0) {
      WriteOut();
      room = capacity_;
    }
    const std::size_t chunk = n < room ? n : room;
    std::memcpy(data_.get() + size_, s, chunk);
    size_ += chunk;
    s += chunk;
    n -= chunk;
  }
}

void OutBuffer::WriteOut() noexcept {
  if (size_ == 0) {
    return;
  }
  const bool ok = sink_->WriteAll(data_.get(), size_);
  std::atomic<std::uint64_t>& counter = ok ? written_ : lost_;
  counter.store(counter.load(std::memory_order_relaxed) + lines_, std::memory_order_relaxed);
  size_ = 0;
  lines_ = 0;
}

}  // namespace vigil::telemetry::internal

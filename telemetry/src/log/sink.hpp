// Where formatted lines go: a descriptor written with write(2), and the batch buffer in
// front of it.
//
//   Sink sink(options);                       // fd, file (O_APPEND) or stdout
//   OutBuffer out(&sink, 256 * 1024);
//   out.Append("{...}\n", n); out.EndLine(); out.WriteOut();
//
// Write errors never block forever or abort: EINTR is retried, EAGAIN (a full
// non-blocking pipe) waits in poll() for at most kWriteStallBudget per batch, and any
// other error (EPIPE, ENOSPC, EBADF, ...) drops the batch; lost lines are counted.
// (A blocking descriptor that nobody reads blocks the backend, as it would any writer;
// callers with OverflowPolicy::kDrop still never wait.) Loggers sharing a descriptor
// write their batches one at a time, so their lines never interleave mid-line.
//
// Thread-safety: none; a Sink and its OutBuffer belong to the holder of the logger's
// drain lock. WriteAll and OutBuffer never allocate (fatal-signal handlers use them).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "log/record.hpp"

namespace vigil::telemetry {
struct LoggerOptions;
}

namespace vigil::telemetry::internal {

class Sink {
 public:
  static constexpr std::chrono::milliseconds kWriteStallBudget{2000};

  explicit Sink(const LoggerOptions& options);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // True when every byte was written.
  bool WriteAll(const char* data, std::size_t size) noexcept;
  // File sinks: opens file_path again and switches to it; on failure keeps the current
  // descriptor (the renamed file still receives lines, nothing is lost).
  void Reopen() noexcept;
  bool is_file() const noexcept { return !path_.empty(); }

 private:
  int fd_ = 1;
  bool owned_ = false;
  std::string path_;
};

class OutBuffer {
 public:
  // The largest Reserve() request.
  static constexpr std::size_t kMaxReserve = 128;

  OutBuffer(Sink* sink, std::size_t capacity);

  // At least `n` (<= kMaxReserve) writable bytes; commit them with Advance().
  char* Reserve(std::size_t n) noexcept {
    if (capacity_ - size_ < n) WriteOut();
    return data_.get() + size_;
  }
  void Advance(std::size_t n) noexcept { size_ += n; }

  void Append(const char* s, std::size_t n) noexcept {
    if (n <= capacity_ - size_) {
      CopyBytes(data_.get() + size_, s, n);
      size_ += n;
    } else {
      AppendSlow(s, n);
    }
  }
  void Append(std::string_view s) noexcept { Append(s.data(), s.size()); }

  // Marks the end of a line; lines are counted as written or lost when their last byte
  // reaches the sink.
  void EndLine() noexcept { ++lines_; }

  // Hands the buffered bytes to the sink and updates the counters.
  void WriteOut() noexcept;
  bool empty() const noexcept { return size_ == 0; }

  std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }
  std::uint64_t lost() const noexcept { return lost_.load(std::memory_order_relaxed); }

 private:
  void AppendSlow(const char* s, std::size_t n) noexcept;

  Sink* sink_;
  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  std::uint64_t lines_ = 0;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> lost_{0};
};

}  // namespace vigil::telemetry::internal

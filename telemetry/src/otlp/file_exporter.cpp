// OTLP/JSON lines to a file: one ExportTraceServiceRequest per line, rotated by size.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vigil/telemetry/otlp.hpp>

#include "otlp/report.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::string_view kExportFailed = "export_failed";
constexpr std::string_view kShutdown = "shutdown";

// strerror() may share one buffer between threads; the GNU strerror_r returns the text,
// in `buf` or in static storage.
std::string ErrorText(int error) {
  char buf[256];
  return ::strerror_r(error, buf, sizeof buf);
}

int OpenForAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

// write(2) until everything is written or an error other than EINTR.
bool WriteAll(int fd, std::string_view data, int& error) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = errno;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Holds an flock(2) on a descriptor for the scope.
class FileLock {
 public:
  explicit FileLock(int fd) noexcept : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() { ::flock(fd_, LOCK_UN); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string Numbered(const std::string& path, unsigned n) { return path + "." + std::to_string(n); }

}  // namespace

struct OtlpFileExporter::State {
  OtlpFileExporterOptions options;
  Resource resource;
  InstrumentationScope scope;
  std::mutex mu;
  int fd = -1;            // guarded by mu
  bool shutdown = false;  // guarded by mu
  std::string line;       // reused between batches

  void Report(const std::string& message) noexcept { otlp::Report(options.on_error, message); }

  // Replaces fd with a fresh descriptor of the path (called with mu held). Keeps the old
  // one when the path cannot be opened: writing on to a rotated file beats losing lines.
  bool ReopenLocked() {
    const int next = OpenForAppend(options.path);
    if (next < 0) {
      return false;
    }
    ::close(fd);
    fd = next;
    return true;
  }

  // Shifts path.(k-1) to path.k down to path to path.1; the oldest is overwritten (or
  // path itself removed when only one file is kept).
  void ShiftFiles() {
    const std::string& path = options.path;
    if (options.keep <= 1) {
      ::unlink(path.c_str());
      return;
    }
    for (unsigned k = options.keep - 1; k > 1; --k) {
      ::rename(Numbered(path, k - 1).c_str(), Numbered(path, k).c_str());  // ENOENT is fine
    }
    if (::rename(path.c_str(), Numbered(path, 1).c_str()) != 0) {
      Report("cannot rotate traces file \"" + path + "\": " + ErrorText(errno));
    }
  }

  // Before writing `incoming` bytes (called with mu held): follows another process's
  // rotation, and rotates when the line would take the file past max_bytes. Costs two
  // stat calls per batch; nothing when rotation is off.
  void RotateIfNeeded(std::size_t incoming) {
    if (options.max_bytes == 0) {
      return;
    }
    struct stat open_file {};
    struct stat at_path {};
    if (::fstat(fd, &open_file) != 0) {
      return;
    }
    if (::stat(options.path.c_str(), &at_path) != 0 || !SameFile(open_file, at_path)) {
      // Another writer rotated (or the file was moved away): write to the path again.
      if (ReopenLocked() && ::fstat(fd, &open_file) != 0) {
        return;
      }
    }
    const auto size = static_cast<std::uint64_t>(open_file.st_size);
    if (size == 0 || size + incoming <= options.max_bytes) {
      return;
    }
    {
      // Writers sharing the path may decide this at once; under the lock only the first
      // finds the path still naming the file they all checked, and only it rotates.
      FileLock lock(fd);
      if (::stat(options.path.c_str(), &at_path) == 0 && SameFile(open_file, at_path)) {
        ShiftFiles();
      }
    }
    ReopenLocked();
  }
};

OtlpFileExporter::OtlpFileExporter(OtlpFileExporterOptions options, Resource resource,
                                   InstrumentationScope scope)
    : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  state_->resource = std::move(resource);
  state_->scope = std::move(scope);
  state_->fd = OpenForAppend(state_->options.path);
  if (state_->fd < 0) {
    throw std::runtime_error("cannot open traces file \"" + state_->options.path +
                             "\": " + ErrorText(errno));
  }
}

OtlpFileExporter::~OtlpFileExporter() {
  if (state_->fd >= 0) {
    ::close(state_->fd);
  }
}

ExportOutcome OtlpFileExporter::Export(std::span<const SpanData* const> batch) noexcept {
  State& s = *state_;
  const std::size_t n = batch.size();
  std::lock_guard lock(s.mu);
  if (s.shutdown) {
    return ExportOutcome{0, n, kShutdown};
  }
  if (n == 0) {
    return ExportOutcome{};
  }
  try {
    s.line.clear();
    EncodeTracesJson(s.resource, s.scope, batch, s.line);
    s.line += '\n';
  } catch (const std::exception& e) {
    s.Report("OTLP file export to " + s.options.path + " failed: " + e.what() + "; dropped " +
             std::to_string(n) + " spans");
    return ExportOutcome{0, n, kExportFailed};
  }
  try {
    s.RotateIfNeeded(s.line.size());
  } catch (...) {
    // A file name could not be built (out of memory): write on to the current file.
  }
  // One write per line: with O_APPEND, writers sharing the file cannot interleave lines.
  int error = 0;
  if (!WriteAll(s.fd, s.line, error)) {
    s.Report("OTLP file export to " + s.options.path + " failed: " + ErrorText(error) +
             "; dropped " + std::to_string(n) + " spans");
    return ExportOutcome{0, n, kExportFailed};
  }
  return ExportOutcome{n, 0, {}};
}

void OtlpFileExporter::Shutdown(std::chrono::steady_clock::time_point /*deadline*/) noexcept {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  if (s.shutdown) {
    return;
  }
  s.shutdown = true;
  ::fsync(s.fd);
  ::close(s.fd);
  s.fd = -1;
}

bool OtlpFileExporter::Reopen() noexcept {
  State& s = *state_;
  const int fd = OpenForAppend(s.options.path);
  if (fd < 0) {
    return false;
  }
  std::lock_guard lock(s.mu);
  if (s.shutdown) {
    ::close(fd);
    return false;
  }
  ::close(s.fd);
  s.fd = fd;
  return true;
}

}  // namespace vigil::telemetry

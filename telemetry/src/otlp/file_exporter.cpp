// OTLP/JSON lines to a file: one ExportTraceServiceRequest per line.

#include <fcntl.h>
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

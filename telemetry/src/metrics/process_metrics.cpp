// Process metrics in the Prometheus client convention, read from /proc at scrape time,
// and the build info gauge.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>

#include "vigil/telemetry/metrics.hpp"
#include "vigil_build_info.hpp"

namespace vigil::telemetry {
namespace {

// Reads a whole (small, virtual) /proc file; empty on any error.
std::string ReadProcFile(const char* path) {
  std::string text;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return text;
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

bool ParseU64(std::string_view text, std::uint64_t& out) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

// Field `n` (1-based, as in proc(5)) of /proc/self/stat. The command name (field 2) may
// hold spaces and parentheses, so counting starts after its last ')'.
std::string_view StatField(std::string_view stat, int n) {
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos || n < 3) {
    return {};
  }
  std::string_view rest = stat.substr(close + 1);
  for (int field = 3;; ++field) {
    while (!rest.empty() && rest.front() == ' ') {
      rest.remove_prefix(1);
    }
    if (rest.empty()) {
      return {};
    }
    const std::size_t end = std::min(rest.find_first_of(" \n"), rest.size());
    if (field == n) {
      return rest.substr(0, end);
    }
    rest.remove_prefix(end);
  }
}

std::optional<std::uint64_t> StatU64(std::string_view stat, int n) {
  std::uint64_t v;
  if (ParseU64(StatField(stat, n), v)) {
    return v;
  }
  return std::nullopt;
}

std::optional<double> BootTimeSeconds() {
  const std::string stat = ReadProcFile("/proc/stat");
  std::size_t pos = stat.find("\nbtime ");
  if (pos == std::string::npos) {
    return std::nullopt;
  }
  pos += 7;
  const std::size_t end = stat.find('\n', pos);
  std::uint64_t btime;
  if (!ParseU64(std::string_view(stat).substr(pos, end - pos), btime)) {
    return std::nullopt;
  }
  return static_cast<double>(btime);
}

std::optional<double> StartTimeSeconds(std::string_view self_stat, long ticks_per_second) {
  const auto start_ticks = StatU64(self_stat, 22);
  const auto boot = BootTimeSeconds();
  if (!start_ticks || !boot || ticks_per_second <= 0) {
    return std::nullopt;
  }
  return *boot + static_cast<double>(*start_ticks) / static_cast<double>(ticks_per_second);
}

std::optional<double> OpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return std::nullopt;
  }
  const int own_fd = ::dirfd(dir);
  double count = 0;
  // readdir() is safe here: each scrape reads its own DIR stream.
  while (const dirent* entry = ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe)
    if (entry->d_name[0] == '.') {
      continue;
    }
    std::uint64_t fd;
    // The descriptor opendir() itself holds is not the process's.
    if (ParseU64(entry->d_name, fd) && fd == static_cast<std::uint64_t>(own_fd)) {
      continue;
    }
    count += 1;
  }
  ::closedir(dir);
  return count;
}

void CollectProcess(MetricWriter& w, double cached_start_time) {
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::string stat = ReadProcFile("/proc/self/stat");

  const auto utime = StatU64(stat, 14);
  const auto stime = StatU64(stat, 15);
  if (utime && stime && ticks > 0) {
    w.Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", {},
              static_cast<double>(*utime + *stime) / static_cast<double>(ticks));
  }

  const std::string statm = ReadProcFile("/proc/self/statm");
  const std::size_t space = statm.find(' ');
  if (space != std::string::npos && page > 0) {
    const std::size_t end = statm.find(' ', space + 1);
    std::uint64_t resident;
    if (ParseU64(std::string_view(statm).substr(space + 1, end - space - 1), resident)) {
      w.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
              static_cast<double>(resident) * static_cast<double>(page));
    }
  }

  if (const auto vsize = StatU64(stat, 23)) {
    w.Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
            static_cast<double>(*vsize));
  }
  if (const auto fds = OpenFds()) {
    w.Gauge("process_open_fds", "Number of open file descriptors.", {}, *fds);
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    const double max =
        limit.rlim_cur == RLIM_INFINITY ? HUGE_VAL : static_cast<double>(limit.rlim_cur);
    w.Gauge("process_max_fds", "Maximum number of open file descriptors.", {}, max);
  }
  const std::optional<double> start =
      std::isnan(cached_start_time) ? StartTimeSeconds(stat, ticks) : cached_start_time;
  if (start) {
    w.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            {}, *start);
  }
}

}  // namespace

void RegisterProcessMetrics(Registry& registry) {
  // The start time never changes: read it once (and again at scrapes only if this fails).
  const double start = StartTimeSeconds(ReadProcFile("/proc/self/stat"), ::sysconf(_SC_CLK_TCK))
                           .value_or(std::nan(""));
  registry.AddCollector("vigil.process", [start](MetricWriter& w) { CollectProcess(w, start); });
}

void RegisterBuildInfo(Registry& registry, std::string_view version, std::string_view revision) {
  registry
      .GaugeFamily("vigil_build_info",
                   "Build information about this binary; the value is always 1.",
                   {"version", "revision"})
      .WithLabels({version, revision})
      .Set(1);
}

void RegisterBuildInfo(Registry& registry) {
  RegisterBuildInfo(registry, build::kVersion, build::kRevision);
}

}  // namespace vigil::telemetry

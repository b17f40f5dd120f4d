// Process metrics from /proc, and a promtool lint of a registry holding every kind.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {
namespace {

// name -> value for unlabelled samples of a text exposition.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  for (std::size_t pos = 0, end; pos < text.size(); pos = end + 1) {
    end = text.find('\n', pos);
    if (end == std::string::npos) {
      end = text.size();
    }
    const std::string line = text.substr(pos, end - pos);
    if (line.empty() || line[0] == '#' || line.find('{') != std::string::npos) {
      continue;
    }
    const auto space = line.find(' ');
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

TEST(ProcessMetrics, PresentAndPlausible) {
  Registry r;
  RegisterProcessMetrics(r);
  RegisterProcessMetrics(r);  // idempotent

  // Burn 50 ms of CPU time (not wall time: the machine may be busy) so that cpu seconds
  // is visibly positive at the kernel's 10 ms tick resolution.
  const std::clock_t until = std::clock() + CLOCKS_PER_SEC / 20;
  volatile double sink = 0;
  while (std::clock() < until) {
    sink = sink + 1;
  }

  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string text = r.Expose(ExpositionFormat::kPrometheusText);
  const auto s = Samples(text);
  const double now = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());

  ASSERT_TRUE(s.count("process_cpu_seconds_total")) << text;
  EXPECT_GT(s.at("process_cpu_seconds_total"), 0);
  EXPECT_LT(s.at("process_cpu_seconds_total"), 3600);
  ASSERT_TRUE(s.count("process_resident_memory_bytes"));
  EXPECT_GT(s.at("process_resident_memory_bytes"), 100'000);
  ASSERT_TRUE(s.count("process_virtual_memory_bytes"));
  EXPECT_GE(s.at("process_virtual_memory_bytes"), s.at("process_resident_memory_bytes"));
  ASSERT_TRUE(s.count("process_open_fds"));
  EXPECT_GE(s.at("process_open_fds"), 4);  // stdin, stdout, stderr and our /dev/null
  ASSERT_TRUE(s.count("process_max_fds"));
  EXPECT_GE(s.at("process_max_fds"), s.at("process_open_fds"));
  ASSERT_TRUE(s.count("process_start_time_seconds"));
  EXPECT_LE(s.at("process_start_time_seconds"), now + 1);
  EXPECT_GT(s.at("process_start_time_seconds"), now - 3600);

  // Registered once: one TYPE line per family.
  std::size_t types = 0;
  for (std::size_t p = 0; (p = text.find("# TYPE process_", p)) != std::string::npos; ++p) {
    ++types;
  }
  EXPECT_EQ(types, 6u);

  const double open_before = s.at("process_open_fds");
  ::close(fd);
  EXPECT_EQ(Samples(r.Expose(ExpositionFormat::kPrometheusText)).at("process_open_fds"),
            open_before - 1);
}

bool OnPath(const std::string& tool) {
  const char* env = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): single-threaded
  const std::string path = env != nullptr ? env : "";
  for (std::size_t pos = 0, end; pos <= path.size(); pos = end + 1) {
    end = path.find(':', pos);
    if (end == std::string::npos) {
      end = path.size();
    }
    std::string candidate = path.substr(pos, end - pos);
    if (candidate.empty()) {
      continue;
    }
    candidate += '/';
    candidate += tool;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

TEST(ProcessMetrics, PromtoolAcceptsEveryKind) {
  if (!OnPath("promtool")) {
    GTEST_SKIP() << "promtool is not on PATH";
  }

  Registry r;
  r.AddCounter("app_jobs_total", "Jobs run.").Inc(3);
  r.AddGauge("app_queue_items", "Items queued.").Set(4);
  r.AddHistogram("app_job_duration_seconds", "Job duration.").Observe(0.3);
  auto& requests =
      r.HistogramFamily("http_server_request_duration_seconds", "Duration of HTTP server requests.",
                        {"http_request_method", "http_route", "http_response_status_code"});
  requests.WithLabels({"GET", "/items/{id}", "200"}).Observe(0.02);
  requests.WithLabels({"POST", "/orders", "201"}).Observe(0.2);
  r.GaugeFamily("http_server_active_requests", "Active requests.", {"http_request_method"})
      .WithLabels({"GET"})
      .Inc();
  auto& decisions =
      r.CounterFamily("vigil_ratelimit_decisions_total", "Rate limit decisions.",
                      {"policy", "decision", "store"}, FamilyOptions{.max_series = 1});
  decisions.WithLabels({"login", "allowed", "memory"}).Inc();
  decisions.WithLabels({"login", "limited", "memory"}).Inc();  // overflows
  RegisterProcessMetrics(r);
  RegisterBuildInfo(r);
  r.AddCollector([](MetricWriter& w) {
    w.Counter("vigil_telemetry_dropped_total", "Items dropped.",
              {{"signal", "logs"}, {"reason", "queue_full"}}, 12);
    w.Counter("vigil_telemetry_dropped_total", "Items dropped.",
              {{"signal", "spans"}, {"reason", "queue_full"}}, 1);
  });
  const std::string text = r.Expose(ExpositionFormat::kPrometheusText);
  ASSERT_NE(text.find("vigil_metrics_overflow_total"), std::string::npos);

  char path[] = "/tmp/vigil_metrics_promtool_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  const std::string command =
      std::string("promtool check metrics < ") + path + " > " + path + ".out 2>&1";
  const int status = std::system(command.c_str());  // NOLINT(concurrency-mt-unsafe)
  std::string findings;
  if (std::FILE* report = std::fopen((std::string(path) + ".out").c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, report)) > 0) {
      findings.append(buf, n);
    }
    std::fclose(report);
  }
  ::unlink(path);
  ::unlink((std::string(path) + ".out").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << findings << "\n--- exposition ---\n" << text;
}

}  // namespace
}  // namespace vigil::telemetry

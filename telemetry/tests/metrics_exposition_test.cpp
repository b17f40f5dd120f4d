// Golden checks of both text formats.
#include <array>
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "metrics/text_format.hpp"
#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {
namespace {

void Populate(Registry& r) {
  auto& requests =
      r.CounterFamily("app_requests_total", "Requests served.\nSecond line: \\ and \"quotes\".",
                      {"method", "path"});
  requests.WithLabels({"GET", "/a\"b\\c\nd"}).Inc(3);
  requests.WithLabels({"POST", "/x"}).Inc(0.5);
  r.AddGauge("app_temperature_celsius", "Temperature.").Set(-1.5);
  const std::array<double, 3> bounds = {0.5, 1, 2.5};
  Histogram& h = r.AddHistogram("app_latency_seconds", "Latency.", bounds);
  h.Observe(0.25);
  h.Observe(1);
  h.Observe(3);
}

TEST(Exposition, PrometheusTextGolden) {
  Registry r;
  Populate(r);
  EXPECT_EQ(r.Expose(ExpositionFormat::kPrometheusText),
            "# HELP app_requests_total Requests served.\\nSecond line: \\\\ and \"quotes\".\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{method=\"GET\",path=\"/a\\\"b\\\\c\\nd\"} 3\n"
            "app_requests_total{method=\"POST\",path=\"/x\"} 0.5\n"
            "# HELP app_temperature_celsius Temperature.\n"
            "# TYPE app_temperature_celsius gauge\n"
            "app_temperature_celsius -1.5\n"
            "# HELP app_latency_seconds Latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{le=\"0.5\"} 1\n"
            "app_latency_seconds_bucket{le=\"1\"} 2\n"
            "app_latency_seconds_bucket{le=\"2.5\"} 2\n"
            "app_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum 4.25\n"
            "app_latency_seconds_count 3\n");
}

TEST(Exposition, OpenMetricsGolden) {
  Registry r;
  Populate(r);
  EXPECT_EQ(r.Expose(ExpositionFormat::kOpenMetrics),
            "# TYPE app_requests counter\n"
            "# HELP app_requests Requests served.\\nSecond line: \\\\ and \\\"quotes\\\".\n"
            "app_requests_total{method=\"GET\",path=\"/a\\\"b\\\\c\\nd\"} 3\n"
            "app_requests_total{method=\"POST\",path=\"/x\"} 0.5\n"
            "# TYPE app_temperature_celsius gauge\n"
            "# HELP app_temperature_celsius Temperature.\n"
            "app_temperature_celsius -1.5\n"
            "# TYPE app_latency_seconds histogram\n"
            "# HELP app_latency_seconds Latency.\n"
            "app_latency_seconds_bucket{le=\"0.5\"} 1\n"
            "app_latency_seconds_bucket{le=\"1.0\"} 2\n"
            "app_latency_seconds_bucket{le=\"2.5\"} 2\n"
            "app_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum 4.25\n"
            "app_latency_seconds_count 3\n"
            "# EOF\n");
}

TEST(Exposition, EmptyRegistry) {
  Registry r;
  EXPECT_EQ(r.Expose(ExpositionFormat::kPrometheusText), "");
  EXPECT_EQ(r.Expose(ExpositionFormat::kOpenMetrics), "# EOF\n");
}

TEST(Exposition, ExposeAppends) {
  Registry r;
  r.AddGauge("app_up", "Up.").Set(1);
  std::string out = "prefix\n";
  r.Expose(ExpositionFormat::kPrometheusText, out);
  EXPECT_EQ(out, "prefix\n# HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n");
}

TEST(Exposition, LabelledHistogramPutsLeLast) {
  Registry r;
  const std::array<double, 1> bounds = {1};
  auto& f = r.HistogramFamily("db_client_operation_duration_seconds", "DB.",
                              {"db_system", "db_operation_name"}, bounds);
  f.WithLabels({"postgresql", "SELECT"}).Observe(0.5);
  const std::string text = r.Expose(ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find("db_client_operation_duration_seconds_bucket{db_system=\"postgresql\","
                      "db_operation_name=\"SELECT\",le=\"1\"} 1\n"
                      "db_client_operation_duration_seconds_bucket{db_system=\"postgresql\","
                      "db_operation_name=\"SELECT\",le=\"+Inf\"} 1\n"
                      "db_client_operation_duration_seconds_sum{db_system=\"postgresql\","
                      "db_operation_name=\"SELECT\"} 0.5\n"
                      "db_client_operation_duration_seconds_count{db_system=\"postgresql\","
                      "db_operation_name=\"SELECT\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(Exposition, DurationBucketsCanonicalLeInOpenMetrics) {
  Registry r;
  r.AddHistogram("app_latency_seconds", "Latency.").Observe(0.3);
  const std::string om = r.Expose(ExpositionFormat::kOpenMetrics);
  std::string les;
  for (std::size_t p = 0; (p = om.find("le=\"", p)) != std::string::npos;) {
    p += 4;
    les += om.substr(p, om.find('"', p) - p) + " ";
  }
  EXPECT_EQ(les, "0.005 0.01 0.025 0.05 0.075 0.1 0.25 0.5 0.75 1.0 2.5 5.0 7.5 10.0 +Inf ");

  const std::string text = r.Expose(ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find("le=\"1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("le=\"10\"} 1\n"), std::string::npos);
}

TEST(Exposition, SpecialValues) {
  Registry r;
  auto& g = r.GaugeFamily("app_value", "Values.", {"case"});
  g.WithLabels({"nan"}).Set(std::nan(""));
  g.WithLabels({"pinf"}).Set(HUGE_VAL);
  g.WithLabels({"ninf"}).Set(-HUGE_VAL);
  g.WithLabels({"big"}).Set(1e300);
  g.WithLabels({"tiny"}).Set(1.5e-9);
  g.WithLabels({"int"}).Set(123456789012);
  const std::string text = r.Expose(ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find("app_value{case=\"nan\"} NaN\n"), std::string::npos);
  EXPECT_NE(text.find("app_value{case=\"pinf\"} +Inf\n"), std::string::npos);
  EXPECT_NE(text.find("app_value{case=\"ninf\"} -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("app_value{case=\"big\"} 1e+300\n"), std::string::npos);
  EXPECT_NE(text.find("app_value{case=\"tiny\"} 1.5e-09\n"), std::string::npos);
  EXPECT_NE(text.find("app_value{case=\"int\"} 123456789012\n"), std::string::npos);
}

TEST(Exposition, EmptyHelpHasNoHelpLine) {
  Registry r;
  r.AddGauge("app_up", "").Set(1);
  EXPECT_EQ(r.Expose(ExpositionFormat::kPrometheusText), "# TYPE app_up gauge\napp_up 1\n");
}

TEST(Exposition, FamilyWithoutChildrenStillHasHeader) {
  Registry r;
  r.CounterFamily("app_hits_total", "Hits.", {"route"});
  EXPECT_EQ(r.Expose(ExpositionFormat::kOpenMetrics),
            "# TYPE app_hits counter\n# HELP app_hits Hits.\n# EOF\n");
}

SpanContext Context() {
  SpanContext ctx;
  ctx.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  ctx.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  ctx.flags.bits = TraceFlags::kSampled;
  return ctx;
}

// At `pos`: "<10 digits>.<6 digits>\n", the exemplar timestamp of a current wall clock.
bool IsTimestampLine(const std::string& s, std::size_t pos) {
  if (pos + 18 > s.size() || s[pos + 10] != '.' || s[pos + 17] != '\n') {
    return false;
  }
  for (std::size_t i = 0; i < 17; ++i) {
    if (i != 10 && (s[pos + i] < '0' || s[pos + i] > '9')) {
      return false;
    }
  }
  return true;
}

TEST(Exposition, ExemplarsOnlyInOpenMetrics) {
  Registry r;
  const std::array<double, 2> bounds = {0.1, 1};
  Histogram& h = r.AddHistogram("app_latency_seconds", "Latency.", bounds);
  Counter& c = r.AddCounter("app_jobs_total", "Jobs.");
  h.Observe(0.05);
  h.Observe(0.7, Context());
  c.Inc(2, Context());

  const std::string om = r.Expose(ExpositionFormat::kOpenMetrics);
  const std::string ids =
      "{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"}";
  const std::string bucket =
      "\napp_latency_seconds_bucket{le=\"0.1\"} 1\n"
      "app_latency_seconds_bucket{le=\"1.0\"} 2 # " +
      ids + " 0.7 ";
  const std::size_t at = om.find(bucket);
  ASSERT_NE(at, std::string::npos) << om;
  EXPECT_TRUE(IsTimestampLine(om, at + bucket.size())) << om;
  EXPECT_NE(om.find("\napp_latency_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos) << om;
  const std::string counter = "\napp_jobs_total 2 # " + ids + " 2 ";
  const std::size_t at_counter = om.find(counter);
  ASSERT_NE(at_counter, std::string::npos) << om;
  EXPECT_TRUE(IsTimestampLine(om, at_counter + counter.size())) << om;
  EXPECT_TRUE(om.ends_with("# EOF\n"));

  const std::string text = r.Expose(ExpositionFormat::kPrometheusText);
  EXPECT_EQ(text.find('{' + std::string("trace_id")), std::string::npos);
  EXPECT_EQ(text.find(" # "), std::string::npos);
}

TEST(Exposition, NegativeBoundsDropSumInOpenMetrics) {
  Registry r;
  const std::array<double, 2> bounds = {-1, 1};
  r.AddHistogram("app_offset_seconds", "Offsets.", bounds).Observe(-2);
  const std::string om = r.Expose(ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(om.find("_sum"), std::string::npos) << om;
  EXPECT_EQ(om.find("_count"), std::string::npos) << om;
  EXPECT_NE(om.find("app_offset_seconds_bucket{le=\"-1.0\"} 1\n"), std::string::npos) << om;
  EXPECT_NE(r.Expose(ExpositionFormat::kPrometheusText).find("app_offset_seconds_sum -2\n"),
            std::string::npos);
}

TEST(Exposition, CollectorFamiliesShareOneHeader) {
  Registry r;
  r.AddGauge("app_up", "Up.").Set(1);
  r.AddCollector([](MetricWriter& w) {
    w.Counter("vigil_telemetry_dropped_total", "Dropped items.",
              {{"signal", "logs"}, {"reason", "queue_full"}}, 12);
    w.Counter("vigil_telemetry_dropped_total", "Dropped items.",
              {{"signal", "spans"}, {"reason", "queue\"full"}}, 3);
    w.Gauge("vigil_telemetry_queue_items", "Queued.", {}, 7);
    w.Counter("not_a_counter_name", "Skipped.", {}, 1);
    w.Gauge("bad-name", "Skipped.", {}, 1);
    w.Gauge("app_ok", "Skipped: bad label.", {{"__x", "y"}}, 1);
  });
  EXPECT_EQ(r.Expose(ExpositionFormat::kPrometheusText),
            "# HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n"
            "# HELP vigil_telemetry_dropped_total Dropped items.\n"
            "# TYPE vigil_telemetry_dropped_total counter\n"
            "vigil_telemetry_dropped_total{signal=\"logs\",reason=\"queue_full\"} 12\n"
            "vigil_telemetry_dropped_total{signal=\"spans\",reason=\"queue\\\"full\"} 3\n"
            "# HELP vigil_telemetry_queue_items Queued.\n"
            "# TYPE vigil_telemetry_queue_items gauge\n"
            "vigil_telemetry_queue_items 7\n");
  EXPECT_EQ(r.Expose(ExpositionFormat::kOpenMetrics),
            "# TYPE app_up gauge\n# HELP app_up Up.\napp_up 1\n"
            "# TYPE vigil_telemetry_dropped counter\n"
            "# HELP vigil_telemetry_dropped Dropped items.\n"
            "vigil_telemetry_dropped_total{signal=\"logs\",reason=\"queue_full\"} 12\n"
            "vigil_telemetry_dropped_total{signal=\"spans\",reason=\"queue\\\"full\"} 3\n"
            "# TYPE vigil_telemetry_queue_items gauge\n"
            "# HELP vigil_telemetry_queue_items Queued.\n"
            "vigil_telemetry_queue_items 7\n"
            "# EOF\n");
}

TEST(Exposition, KeyedCollectorAddedOnce) {
  Registry r;
  int calls = 0;
  EXPECT_TRUE(r.AddCollector("k", [&](MetricWriter&) { ++calls; }));
  EXPECT_FALSE(r.AddCollector("k", [&](MetricWriter&) { calls += 100; }));
  r.Expose(ExpositionFormat::kPrometheusText);
  EXPECT_EQ(calls, 1);
}

TEST(Exposition, BuildInfo) {
  Registry r;
  RegisterBuildInfo(r, "1.2.3", "abc123");
  RegisterBuildInfo(r, "1.2.3", "abc123");
  EXPECT_EQ(r.Expose(ExpositionFormat::kPrometheusText),
            "# HELP vigil_build_info Build information about this binary; the value is always "
            "1.\n# TYPE vigil_build_info gauge\n"
            "vigil_build_info{version=\"1.2.3\",revision=\"abc123\"} 1\n");
}

std::string Go(double v) {
  std::string s;
  internal::AppendGoFloat(s, v);
  return s;
}
std::string Canonical(double v) {
  std::string s;
  internal::AppendCanonicalFloat(s, v);
  return s;
}

TEST(NumberFormat, GoShortestG) {
  EXPECT_EQ(Go(0), "0");
  EXPECT_EQ(Go(0.005), "0.005");
  EXPECT_EQ(Go(1), "1");
  EXPECT_EQ(Go(2.5), "2.5");
  EXPECT_EQ(Go(100000), "100000");
  EXPECT_EQ(Go(1e6), "1e+06");
  EXPECT_EQ(Go(1234567), "1.234567e+06");
  EXPECT_EQ(Go(0.0001), "0.0001");
  EXPECT_EQ(Go(1e-5), "1e-05");
  EXPECT_EQ(Go(1.5e-7), "1.5e-07");
  EXPECT_EQ(Go(-3), "-3");
  EXPECT_EQ(Go(1e100), "1e+100");
}

TEST(NumberFormat, OpenMetricsCanonicalExamples) {
  // The spec's examples (OpenMetrics 1.0, "Considerations: Canonical Numbers").
  EXPECT_EQ(Canonical(0), "0.0");
  EXPECT_EQ(Canonical(0.001), "0.001");
  EXPECT_EQ(Canonical(0.95), "0.95");
  EXPECT_EQ(Canonical(0.999), "0.999");
  EXPECT_EQ(Canonical(1), "1.0");
  EXPECT_EQ(Canonical(1.7), "1.7");
  EXPECT_EQ(Canonical(10), "10.0");
  EXPECT_EQ(Canonical(1e-10), "1e-10");
  EXPECT_EQ(Canonical(1e-9), "1e-09");
  EXPECT_EQ(Canonical(1e-5), "1e-05");
  EXPECT_EQ(Canonical(0.0001), "0.0001");
  EXPECT_EQ(Canonical(100000), "100000.0");
  EXPECT_EQ(Canonical(1e6), "1e+06");
  EXPECT_EQ(Canonical(1e10), "1e+10");
  EXPECT_EQ(Canonical(1.1e23), "1.1e+23");
  EXPECT_EQ(Canonical(HUGE_VAL), "+Inf");
}

TEST(NumberFormat, UnixSeconds) {
  std::string s;
  internal::AppendUnixSeconds(s, 1'520'879'607'789'000'123);
  EXPECT_EQ(s, "1520879607.789000");
}

}  // namespace
}  // namespace vigil::telemetry

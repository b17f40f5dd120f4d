// Counters, gauges, histograms, families and registration rules.
#include <array>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {
namespace {

constexpr int kPerThread = 1'000'000;

SpanContext SampledContext(std::uint8_t seed) {
  std::array<std::uint8_t, TraceId::kSize> trace{};
  std::array<std::uint8_t, SpanId::kSize> span{};
  trace.fill(seed);
  span.fill(seed);
  SpanContext ctx;
  ctx.trace_id = TraceId(trace);
  ctx.span_id = SpanId(span);
  ctx.flags.bits = TraceFlags::kSampled;
  return ctx;
}

TEST(Counter, TwoThreadsMillionIncrementsEachGiveExactTotal) {
  Registry registry;
  Counter& c = registry.AddCounter("test_events_total", "Events.");
  std::vector<std::thread> threads;
  threads.reserve(2);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < kPerThread; ++i) {
        c.Inc();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(c.Value(), 2.0 * kPerThread);
}

TEST(Counter, IgnoresNegativeAndNaNIncrements) {
  Registry registry;
  Counter& c = registry.AddCounter("test_events_total", "Events.");
  c.Inc(2.5);
  c.Inc(-1);
  c.Inc(std::nan(""));
  EXPECT_EQ(c.Value(), 2.5);
}

TEST(Histogram, TwoThreadsMillionObservationsEachAgreeExactly) {
  Registry registry;
  const std::array<double, 3> bounds = {1, 2, 4};
  Histogram& h = registry.AddHistogram("test_size_bytes", "Sizes.", bounds);
  // Values cycle through 0.5 (le 1), 2 (le 2, on the bound), 3 (le 4) and 8 (+Inf).
  const std::array<double, 4> values = {0.5, 2, 3, 8};
  std::vector<std::thread> threads;
  threads.reserve(2);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        h.Observe(values[static_cast<std::size_t>(i) % 4]);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }

  const HistogramSnapshot s = h.Snapshot();
  const std::uint64_t quarter = 2 * kPerThread / 4;
  EXPECT_EQ(s.count, 2u * kPerThread);
  EXPECT_EQ(s.sum, static_cast<double>(quarter) * (0.5 + 2 + 3 + 8));
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], quarter);
  EXPECT_EQ(s.cumulative[1], 2 * quarter);
  EXPECT_EQ(s.cumulative[2], 3 * quarter);
  EXPECT_EQ(s.cumulative[3], 4 * quarter);
  EXPECT_EQ(s.upper_bounds, std::vector<double>(bounds.begin(), bounds.end()));
}

TEST(Histogram, BucketEdgesNaNAndInfinity) {
  Registry registry;
  Histogram& h = registry.AddHistogram("test_latency_seconds", "Latency.");
  h.Observe(0.005);  // exactly on the first bound: le is inclusive
  h.Observe(0.0050001);
  h.Observe(-3);
  h.Observe(10);
  h.Observe(10.5);
  h.Observe(HUGE_VAL);
  h.Observe(std::nan(""));
  const HistogramSnapshot s = h.Snapshot();
  ASSERT_EQ(s.cumulative.size(), kDurationBuckets.size() + 1);
  EXPECT_EQ(s.cumulative[0], 2u);                            // -3 and 0.005
  EXPECT_EQ(s.cumulative[1], 3u);                            // 0.0050001 <= 0.01
  EXPECT_EQ(s.cumulative[kDurationBuckets.size() - 1], 4u);  // 10 <= 10
  EXPECT_EQ(s.cumulative.back(), 7u);
  EXPECT_EQ(s.count, 7u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(Histogram, OddAndEmptyBucketLists) {
  Registry registry;
  const std::array<double, 1> one = {1};
  Histogram& h1 = registry.AddHistogram("test_one_seconds", "One bound.", one);
  h1.Observe(0.5);
  h1.Observe(2);
  EXPECT_EQ(h1.Snapshot().cumulative, (std::vector<std::uint64_t>{1, 2}));

  Histogram& h0 = registry.AddHistogram("test_none_seconds", "Only +Inf.", {});
  h0.Observe(42);
  EXPECT_EQ(h0.Snapshot().cumulative, (std::vector<std::uint64_t>{1}));

  const std::array<double, 3> with_inf = {1, 2, HUGE_VAL};
  Histogram& h2 = registry.AddHistogram("test_inf_seconds", "Trailing +Inf dropped.", with_inf);
  EXPECT_EQ(h2.Snapshot().upper_bounds, (std::vector<double>{1, 2}));
}

TEST(Gauge, SetIncDecAndConcurrentIncrements) {
  Registry registry;
  Gauge& g = registry.AddGauge("test_queue_depth", "Depth.");
  g.Set(10);
  g.Inc();
  g.Dec(3);
  EXPECT_EQ(g.Value(), 8);
  std::thread a([&] {
    for (int i = 0; i < 100000; ++i) {
      g.Inc();
    }
  });
  std::thread b([&] {
    for (int i = 0; i < 100000; ++i) {
      g.Dec(2);
    }
  });
  a.join();
  b.join();
  EXPECT_EQ(g.Value(), 8 - 100000);
}

TEST(Arena, ValuesSurviveThreadExit) {
  Registry registry;
  Counter& c = registry.AddCounter("test_exits_total", "Events.");
  Histogram& h = registry.AddHistogram("test_exit_seconds", "Latency.");
  for (int round = 0; round < 20; ++round) {
    std::thread([&] {
      for (int i = 0; i < 1000; ++i) {
        c.Inc();
      }
      h.Observe(0.2);
    }).join();
  }
  EXPECT_EQ(c.Value(), 20000);
  EXPECT_EQ(h.Snapshot().count, 20u);
  EXPECT_DOUBLE_EQ(h.Snapshot().sum, 20 * 0.2);

  // Arenas of exited threads are reused; updates from the new owner add to what is there.
  std::vector<std::thread> live;
  live.reserve(4);
  for (int t = 0; t < 4; ++t) {
    live.emplace_back([&] { c.Inc(5); });
  }
  for (auto& t : live) {
    t.join();
  }
  EXPECT_EQ(c.Value(), 20020);
}

TEST(Arena, ReleasedSlotsStartAtZeroInTheNextRegistry) {
  for (int round = 0; round < 3; ++round) {
    Registry registry;
    Counter& c = registry.AddCounter("test_reuse_total", "Events.");
    Histogram& h = registry.AddHistogram("test_reuse_seconds", "Latency.");
    EXPECT_EQ(c.Value(), 0);
    EXPECT_EQ(h.Snapshot().count, 0u);
    c.Inc(7);
    h.Observe(1);
    std::thread([&] { c.Inc(1); }).join();
    EXPECT_EQ(c.Value(), 8);
  }
}

TEST(Family, SameLabelsGiveSameChild) {
  Registry registry;
  auto& family =
      registry.CounterFamily("test_requests_total", "Requests.", {"method", "route", "status"});
  Counter& a = family.WithLabels({"GET", "/items/{id}", "200"});
  Counter& b = family.WithLabels({"GET", "/items/{id}", "200"});
  Counter& c = family.WithLabels({"GET", "/items/{id}", "404"});
  const std::array<std::string_view, 3> values = {"GET", "/items/{id}", "200"};
  Counter& d = family.WithLabels(std::span<const std::string_view>(values));
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a, &d);
  EXPECT_NE(&a, &c);
  // Concatenations that look alike must stay apart.
  EXPECT_NE(&family.WithLabels({"ab", "c", ""}), &family.WithLabels({"a", "bc", ""}));
}

TEST(Family, ManyLabelSetsSurviveTableGrowthAndConcurrentLookups) {
  Registry registry;
  auto& family = registry.GaugeFamily("test_shards", "Shards.", {"shard"});
  std::vector<Gauge*> first(500);
  for (int i = 0; i < 500; ++i) {
    first[static_cast<std::size_t>(i)] = &family.WithLabels({std::to_string(i)});
  }

  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  threads.reserve(2);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1500; ++i) {
        Gauge& g = family.WithLabels({std::to_string(i)});
        if (i < 500 && &g != first[static_cast<std::size_t>(i)]) {
          ok = false;
        }
        g.Inc(t + 1);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_TRUE(ok);
  for (int i = 0; i < 1500; ++i) {
    EXPECT_EQ(family.WithLabels({std::to_string(i)}).Value(), 3);
  }
}

TEST(Family, WrongNumberOfValuesThrows) {
  Registry registry;
  auto& family = registry.CounterFamily("test_requests_total", "Requests.", {"a", "b"});
  EXPECT_THROW(family.WithLabels({"x"}), std::invalid_argument);
  EXPECT_THROW(family.WithLabels({"x", "y", "z"}), std::invalid_argument);
}

TEST(Family, CardinalityCapRedirectsToOneOverflowChild) {
  Registry registry;
  auto& family = registry.CounterFamily("test_users_total", "Per user.", {"user", "kind"},
                                        FamilyOptions{.max_series = 3});
  for (int i = 0; i < 3; ++i) {
    family.WithLabels({std::to_string(i), "a"}).Inc();
  }
  EXPECT_EQ(family.overflowed(), 0u);

  Counter& x = family.WithLabels({"x", "a"});
  Counter& y = family.WithLabels({"y", "b"});
  EXPECT_EQ(&x, &y);
  EXPECT_EQ(&x, &family.WithLabels({"_overflow", "_overflow"}));
  x.Inc(2);
  y.Inc(3);
  EXPECT_EQ(x.Value(), 5);
  EXPECT_EQ(family.overflowed(), 2u);
  // Existing sets keep working.
  family.WithLabels({"1", "a"}).Inc();
  EXPECT_EQ(family.WithLabels({"1", "a"}).Value(), 2);
  EXPECT_EQ(family.overflowed(), 2u);

  const std::string text = registry.Expose(ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find("test_users_total{user=\"_overflow\",kind=\"_overflow\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE vigil_metrics_overflow_total counter\n"
                      "vigil_metrics_overflow_total{metric=\"test_users_total\"} 2\n"),
            std::string::npos)
      << text;
}

TEST(Family, OverflowMetricAbsentWhileNothingOverflows) {
  Registry registry;
  registry.CounterFamily("test_users_total", "Per user.", {"user"}).WithLabels({"a"}).Inc();
  EXPECT_EQ(registry.Expose(ExpositionFormat::kPrometheusText).find("vigil_metrics_overflow"),
            std::string::npos);
}

TEST(Exemplar, CounterKeepsLatestSampledExemplar) {
  Registry registry;
  Counter& c = registry.AddCounter("test_events_total", "Events.");
  EXPECT_FALSE(c.LatestExemplar().has_value());

  SpanContext unsampled = SampledContext(1);
  unsampled.flags.bits = 0;
  c.Inc(1, unsampled);
  c.Inc(1, SpanContext{});
  EXPECT_FALSE(c.LatestExemplar().has_value());

  c.Inc(2, SampledContext(7));
  c.Inc(3, SampledContext(9));
  const auto e = c.LatestExemplar();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->value, 3);
  EXPECT_EQ(e->trace_id, SampledContext(9).trace_id);
  EXPECT_EQ(e->span_id, SampledContext(9).span_id);
  EXPECT_GT(e->unix_nanos, 1'600'000'000'000'000'000);
  EXPECT_EQ(c.Value(), 7);
}

TEST(Exemplar, HistogramKeepsOnePerBucket) {
  Registry registry;
  Histogram& h = registry.AddHistogram("test_latency_seconds", "Latency.");
  h.Observe(0.003, SampledContext(1));  // bucket 0
  h.Observe(0.7, SampledContext(2));    // le 0.75: bucket 8
  h.Observe(0.6, SampledContext(3));    // same bucket, newer
  h.Observe(99, SampledContext(4));     // +Inf
  EXPECT_EQ(h.LatestExemplar(0)->trace_id, SampledContext(1).trace_id);
  EXPECT_EQ(h.LatestExemplar(8)->value, 0.6);
  EXPECT_EQ(h.LatestExemplar(kDurationBuckets.size())->value, 99);
  EXPECT_FALSE(h.LatestExemplar(1).has_value());
  EXPECT_FALSE(h.LatestExemplar(kDurationBuckets.size() + 1).has_value());
  EXPECT_EQ(h.Snapshot().count, 4u);
}

TEST(Exemplar, ConcurrentWritersNeverProduceATornExemplar) {
  Registry registry;
  Counter& c = registry.AddCounter("test_events_total", "Events.");
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  writers.reserve(2);
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const auto seed = static_cast<std::uint8_t>(1 + (i * 2 + t) % 250);
        c.Inc(seed, SampledContext(seed));
      }
    });
  }
  // Read until 100000 complete exemplars were seen (the writers may start late).
  int seen = 0;
  int torn = 0;
  while (seen < 100000) {
    const auto e = c.LatestExemplar();
    if (!e) {
      continue;
    }
    ++seen;
    const auto seed = static_cast<std::uint8_t>(e->value);
    if (e->value != static_cast<double>(seed) || e->trace_id != SampledContext(seed).trace_id ||
        e->span_id != SampledContext(seed).span_id) {
      ++torn;
    }
  }
  stop = true;
  for (auto& w : writers) {
    w.join();
  }
  EXPECT_EQ(torn, 0);
  EXPECT_GT(c.Value(), 0);
}

TEST(Registration, RejectsInvalidNames) {
  Registry r;
  EXPECT_THROW(r.AddGauge("", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("1abc", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("a-b", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("a b", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("__reserved", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("requests", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("_total", "h"), std::invalid_argument);
  EXPECT_THROW(r.GaugeFamily("ok_gauge", "h", {"1x"}), std::invalid_argument);
  EXPECT_THROW(r.GaugeFamily("ok_gauge", "h", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(r.GaugeFamily("ok_gauge", "h", {"__name"}), std::invalid_argument);
  EXPECT_THROW(r.GaugeFamily("ok_gauge", "h", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(r.HistogramFamily("ok_seconds", "h", {"le"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("vigil_metrics_overflow_total", "h"), std::invalid_argument);

  const std::array<double, 2> unsorted = {2, 1};
  const std::array<double, 2> duplicate = {1, 1};
  const std::array<double, 2> nan = {1, std::nan("")};
  EXPECT_THROW(r.AddHistogram("ok_seconds", "h", unsorted), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("ok_seconds", "h", duplicate), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("ok_seconds", "h", nan), std::invalid_argument);
  EXPECT_THROW(r.CounterFamily("ok_total", "h", {"a"}, FamilyOptions{.max_series = 0}),
               std::invalid_argument);

  // Colons are valid in metric names; "le" is fine outside histograms.
  EXPECT_NO_THROW(r.AddGauge("job:ratio:rate5m", "h"));
  EXPECT_NO_THROW(r.GaugeFamily("ok_gauge", "h", {"le", "_private"}));
  // A failed registration leaves nothing behind.
  EXPECT_NO_THROW(r.AddHistogram("ok_seconds", "h"));
}

TEST(Registration, SameShapeReturnsExistingFamily) {
  Registry r;
  auto& a = r.CounterFamily("app_hits_total", "Hits.", {"route"});
  auto& b = r.CounterFamily("app_hits_total", "Other help is fine.", {"route"});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&r.AddGauge("app_up", "Up."), &r.AddGauge("app_up", "Up."));
  const std::array<double, 2> bounds = {1, 2};
  EXPECT_EQ(&r.AddHistogram("app_size_bytes", "Size.", bounds),
            &r.AddHistogram("app_size_bytes", "Size.", bounds));
}

TEST(Registration, ConflictsThrow) {
  Registry r;
  r.CounterFamily("app_hits_total", "Hits.", {"route"});
  r.HistogramFamily("app_latency_seconds", "Latency.", {"route"});
  r.AddGauge("app_up", "Up.");

  EXPECT_THROW(r.CounterFamily("app_hits_total", "Hits.", {"path"}), std::invalid_argument);
  EXPECT_THROW(r.CounterFamily("app_hits_total", "Hits.", {}), std::invalid_argument);
  EXPECT_THROW(r.GaugeFamily("app_hits_total", "Hits.", {"route"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("app_up_total", "Up."), std::invalid_argument);  // OM family app_up
  EXPECT_THROW(r.AddGauge("app_hits", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("app_hits_created", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("app_latency_seconds_count", "h"), std::invalid_argument);
  EXPECT_THROW(r.AddGauge("app_latency_seconds_bucket", "h"), std::invalid_argument);
  EXPECT_THROW(r.HistogramFamily("app_latency_seconds", "h", {"route"}, std::array<double, 1>{1}),
               std::invalid_argument);
  // The other direction: a histogram whose sample names are taken.
  r.AddGauge("app_queue_sum", "h");
  EXPECT_THROW(r.AddHistogram("app_queue", "h"), std::invalid_argument);
}

}  // namespace
}  // namespace vigil::telemetry

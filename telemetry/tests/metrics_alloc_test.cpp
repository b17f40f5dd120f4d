// The hot paths never allocate: counted with a replaced global operator new.
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <vigil/testing/count_allocations.hpp>

#include "vigil/telemetry/metrics.hpp"

using vigil::test_support::AllocationsDuring;

namespace vigil::telemetry {
namespace {

TEST(NoAllocation, CounterIsCountedSoTheHookWorks) {
  EXPECT_GT(AllocationsDuring([] {
              std::string s(100, 'x');
              (void)s;
            }),
            0);
}

TEST(NoAllocation, ExistingThreeLabelLookup) {
  Registry registry;
  auto& family =
      registry.HistogramFamily("http_server_request_duration_seconds", "Duration.",
                               {"http_request_method", "http_route", "http_response_status_code"});
  for (int i = 0; i < 50; ++i) {
    family.WithLabels({"GET", "/items/" + std::to_string(i), "200"});
  }
  Histogram& expected = family.WithLabels({"POST", "/api/orders/{id}/lines", "201"});

  Histogram* found = nullptr;
  const long n = AllocationsDuring([&] {
    for (int i = 0; i < 1000; ++i) {
      found = &family.WithLabels({"POST", "/api/orders/{id}/lines", "201"});
    }
  });
  EXPECT_EQ(n, 0);
  EXPECT_EQ(found, &expected);
}

TEST(NoAllocation, UpdatesAfterFirstUse) {
  Registry registry;
  Counter& c = registry.AddCounter("app_events_total", "Events.");
  Gauge& g = registry.AddGauge("app_depth", "Depth.");
  Histogram& h = registry.AddHistogram("app_latency_seconds", "Latency.");
  c.Inc();  // attaches this thread's arena chunk
  h.Observe(0.1);
  const long n = AllocationsDuring([&] {
    for (int i = 0; i < 1000; ++i) {
      c.Inc();
      g.Set(i);
      g.Inc();
      h.Observe(i * 0.01);
    }
  });
  EXPECT_EQ(n, 0);
}

TEST(NoAllocation, ExemplarsAfterTheFirst) {
  Registry registry;
  Histogram& h = registry.AddHistogram("app_latency_seconds", "Latency.");
  const RequestContext ctx = RequestContext::NewRoot(true);
  h.Observe(0.1, ctx.span);  // allocates the exemplar cells once
  const long n = AllocationsDuring([&] {
    for (int i = 0; i < 1000; ++i) {
      h.Observe(i * 0.01, ctx.span);
    }
  });
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace vigil::telemetry

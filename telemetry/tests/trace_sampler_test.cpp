// Samplers: the OpenTelemetry TraceIdRatioBased algorithm (thresholds, randomness,
// tracestate), ParentBased routing, and OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vigil/telemetry/trace.hpp>
#include <vigil/testing/scoped_env.hpp>

#include "trace/probability.hpp"

namespace vigil::telemetry {
namespace {

using internal::ExplicitRandomness;
using internal::kMaxThreshold;
using internal::RatioToThreshold;
using internal::SetThreshold;
using internal::ThresholdToTh;
using internal::TraceIdRandomness;
using test_support::ScopedEnv;

TraceId Id(std::string_view hex) { return *TraceId::FromHex(hex); }

SpanContext Parent(bool remote, bool sampled) {
  SpanContext p;
  p.trace_id = Id("4bf92f3577b34da6a3ce929d0e0e4736");
  p.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  p.flags.bits =
      static_cast<std::uint8_t>(TraceFlags::kRandom | (sampled ? TraceFlags::kSampled : 0));
  p.is_remote = remote;
  return p;
}

// The specification's table (tracestate-probability-sampling.md, "Converting
// floating-point probability to threshold value"): th values at precision 3, 4 and 5.
struct ThresholdVector {
  double probability;
  const char* th[3];
};
constexpr ThresholdVector kSpecTable[] = {
    {1.0, {"0", "0", "0"}},
    {0.5, {"8", "8", "8"}},
    {1.0 / 3, {"aab", "aaab", "aaaab"}},
    {0.25, {"c", "c", "c"}},
    {0.2, {"ccd", "cccd", "ccccd"}},
    {0.125, {"e", "e", "e"}},
    {0.1, {"e66", "e666", "e6666"}},
    {0.0625, {"f", "f", "f"}},
    {0.01, {"fd71", "fd70a", "fd70a4"}},
    {0.001, {"ffbe7", "ffbe77", "ffbe76d"}},
    {0.0001, {"fff972", "fff9724", "fff97247"}},
    {0.00001, {"ffff584", "ffff583a", "ffff583a5"}},
    {0.000001, {"ffffef4", "ffffef39", "ffffef391"}},
};

TEST(ThresholdTest, MatchesSpecificationTable) {
  for (const auto& v : kSpecTable) {
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(ThresholdToTh(RatioToThreshold(v.probability, 3 + i)), v.th[i])
          << "probability " << v.probability << " precision " << 3 + i;
    }
  }
}

TEST(ThresholdTest, DefaultPrecisionIsFour) {
  EXPECT_EQ(RatioToThreshold(0.1), RatioToThreshold(0.1, 4));
  EXPECT_EQ(RatioToThreshold(0.1), 0xe6660000000000u);
  EXPECT_EQ(RatioToThreshold(0.01), 0xfd70a000000000u);
}

TEST(ThresholdTest, Boundaries) {
  EXPECT_EQ(RatioToThreshold(1.0), 0u);
  EXPECT_EQ(RatioToThreshold(0.0), kMaxThreshold);
  EXPECT_EQ(RatioToThreshold(0.5), std::uint64_t{1} << 55);
  // The smallest valid ratio still rejects almost everything, but not everything.
  const std::uint64_t smallest = RatioToThreshold(0x1p-56);
  EXPECT_LT(smallest, kMaxThreshold);
  EXPECT_GT(smallest, 0xffffffff000000u);
}

TEST(ThresholdTest, ThEncoding) {
  EXPECT_EQ(ThresholdToTh(0), "0");
  EXPECT_EQ(ThresholdToTh(0xfd70a400000000u), "fd70a4");  // the specification's 1% example
  EXPECT_EQ(ThresholdToTh(0x00000000000001u), "00000000000001");
  EXPECT_EQ(ThresholdToTh(0x80000000000000u), "8");
}

TEST(RandomnessTest, RightmostSevenBytesOfTraceId) {
  EXPECT_EQ(TraceIdRandomness(Id("ffffffffffffffffff00000000000001")), 1u);
  EXPECT_EQ(TraceIdRandomness(Id("000000000000000000ffffffffffffff")), 0xffffffffffffffu);
  EXPECT_EQ(TraceIdRandomness(Id("4bf92f3577b34da6a3ce929d0e0e4736")), 0xce929d0e0e4736u);
}

TEST(RandomnessTest, ExplicitRvSubKey) {
  TraceState ts;
  ASSERT_TRUE(ts.Set("ot", "th:8;rv:0123456789abcd"));
  EXPECT_EQ(ExplicitRandomness(ts), 0x0123456789abcdu);
  ASSERT_TRUE(ts.Set("ot", "rv:0123456789abc"));  // 13 digits: invalid
  EXPECT_EQ(ExplicitRandomness(ts), std::nullopt);
  ASSERT_TRUE(ts.Set("ot", "rv:0123456789ABCD"));  // uppercase: invalid
  EXPECT_EQ(ExplicitRandomness(ts), std::nullopt);
  EXPECT_EQ(ExplicitRandomness(TraceState{}), std::nullopt);
}

TEST(RandomnessTest, SetThresholdKeepsOtherSubKeysAndMembers) {
  TraceState ts;
  ASSERT_TRUE(ts.Set("vendor", "x"));
  ASSERT_TRUE(ts.Set("ot", "th:c;rv:0123456789abcd"));
  SetThreshold(ts, 0x80000000000000u);
  EXPECT_EQ(ts.Get("ot"), "th:8;rv:0123456789abcd");
  EXPECT_EQ(ts.Get("vendor"), "x");
  TraceState empty;
  SetThreshold(empty, 0);
  EXPECT_EQ(empty.ToHeader(), "ot=th:0");
}

TEST(TraceIdRatioTest, DecidesOnThresholdBoundary) {
  const Sampler half = Sampler::TraceIdRatio(0.5);
  // R >= T samples: T = 2^55 exactly.
  EXPECT_TRUE(half.ShouldSample({}, Id("00000000000000000080000000000000")).sampled());
  EXPECT_FALSE(half.ShouldSample({}, Id("ffffffffffffffffff7fffffffffffff")).sampled());
}

TEST(TraceIdRatioTest, ThresholdComparisonExamples) {
  const Sampler tenth = Sampler::TraceIdRatio(0.1);  // T = 0xe6660000000000
  EXPECT_TRUE(tenth.ShouldSample({}, Id("000000000000000000e6660000000000")).sampled());
  EXPECT_FALSE(tenth.ShouldSample({}, Id("000000000000000000e665ffffffffff")).sampled());
  const auto result = tenth.ShouldSample({}, Id("000000000000000000ffffffffffffff"));
  ASSERT_TRUE(result.sampled());
  EXPECT_EQ(result.threshold, 0xe6660000000000u);
}

TEST(TraceIdRatioTest, BoundaryRatios) {
  const Sampler never = Sampler::TraceIdRatio(0.0);
  const Sampler always = Sampler::TraceIdRatio(1.0);
  EXPECT_FALSE(never.ShouldSample({}, Id("000000000000000000ffffffffffffff")).sampled());
  EXPECT_TRUE(always.ShouldSample({}, Id("00000000000000000000000000000001")).sampled());
  EXPECT_EQ(always.ShouldSample({}, Id("00000000000000000000000000000001")).threshold, 0u);
  EXPECT_THROW(Sampler::TraceIdRatio(-0.1), std::invalid_argument);
  EXPECT_THROW(Sampler::TraceIdRatio(1.01), std::invalid_argument);
  EXPECT_THROW(Sampler::TraceIdRatio(std::nan("")), std::invalid_argument);
}

TEST(TraceIdRatioTest, IgnoresParentSampledFlag) {
  const Sampler half = Sampler::TraceIdRatio(0.5);
  SpanContext parent = Parent(false, true);
  parent.trace_id = Id("ffffffffffffffffff00000000000000");  // R = 0
  EXPECT_FALSE(half.ShouldSample(parent, parent.trace_id).sampled());
  parent.flags.bits = 0;
  parent.trace_id = Id("000000000000000000ffffffffffffff");
  EXPECT_TRUE(half.ShouldSample(parent, parent.trace_id).sampled());
}

TEST(TraceIdRatioTest, UsesParentsExplicitRandomness) {
  const Sampler half = Sampler::TraceIdRatio(0.5);
  SpanContext parent = Parent(true, false);
  parent.trace_id = Id("000000000000000000000000000000ff");  // trace id alone: drop
  EXPECT_FALSE(half.ShouldSample(parent, parent.trace_id).sampled());
  ASSERT_TRUE(parent.trace_state.Set("ot", "rv:ffffffffffffff"));
  EXPECT_TRUE(half.ShouldSample(parent, parent.trace_id).sampled());
  ASSERT_TRUE(parent.trace_state.Set("ot", "rv:00000000000000"));
  parent.trace_id = Id("000000000000000000ffffffffffffff");  // trace id alone: sample
  EXPECT_FALSE(half.ShouldSample(parent, parent.trace_id).sampled());
}

TEST(TraceIdRatioTest, HigherRatioSamplesASuperset) {
  const Sampler low = Sampler::TraceIdRatio(0.1);
  const Sampler high = Sampler::TraceIdRatio(0.3);
  int low_count = 0;
  for (int i = 0; i < 20000; ++i) {
    const TraceId id = TraceId::Random();
    const bool l = low.ShouldSample({}, id).sampled();
    low_count += l ? 1 : 0;
    if (l) {
      EXPECT_TRUE(high.ShouldSample({}, id).sampled());
    }
  }
  EXPECT_GT(low_count, 0);
}

TEST(TraceIdRatioTest, SampledFractionMatchesRatio) {
  constexpr int kIds = 200'000;
  for (double ratio : {0.01, 0.25, 0.5, 0.9}) {
    const Sampler s = Sampler::TraceIdRatio(ratio);
    int sampled = 0;
    for (int i = 0; i < kIds; ++i) {
      sampled += s.ShouldSample({}, TraceId::Random()).sampled() ? 1 : 0;
    }
    const double fraction = static_cast<double>(sampled) / kIds;
    // Five standard deviations of a binomial proportion.
    const double tolerance = 5 * std::sqrt(ratio * (1 - ratio) / kIds);
    EXPECT_NEAR(fraction, ratio, tolerance) << "ratio " << ratio;
  }
}

TEST(ParentBasedTest, DefaultDelegatesFollowParent) {
  const Sampler s = Sampler::ParentBased(Sampler::AlwaysOff());
  const TraceId id = Id("4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(s.ShouldSample({}, id).sampled());  // root: AlwaysOff
  EXPECT_TRUE(s.ShouldSample(Parent(true, true), id).sampled());
  EXPECT_FALSE(s.ShouldSample(Parent(true, false), id).sampled());
  EXPECT_TRUE(s.ShouldSample(Parent(false, true), id).sampled());
  EXPECT_FALSE(s.ShouldSample(Parent(false, false), id).sampled());
  EXPECT_TRUE(Sampler::ParentBased(Sampler::AlwaysOn()).ShouldSample({}, id).sampled());
}

TEST(ParentBasedTest, EachCaseUsesItsOwnDelegate) {
  // Every delegate inverted relative to the defaults, so a wrong route shows.
  const Sampler s =
      Sampler::ParentBased(Sampler::AlwaysOn(), Sampler::AlwaysOff(), Sampler::AlwaysOn(),
                           Sampler::AlwaysOff(), Sampler::AlwaysOn());
  const TraceId id = Id("4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_TRUE(s.ShouldSample({}, id).sampled());
  EXPECT_FALSE(s.ShouldSample(Parent(true, true), id).sampled());
  EXPECT_TRUE(s.ShouldSample(Parent(true, false), id).sampled());
  EXPECT_FALSE(s.ShouldSample(Parent(false, true), id).sampled());
  EXPECT_TRUE(s.ShouldSample(Parent(false, false), id).sampled());
}

TEST(ParentBasedTest, RatioRootAppliesOnlyToRoots) {
  const Sampler s = Sampler::ParentBased(Sampler::TraceIdRatio(0.5));
  const TraceId low = Id("ffffffffffffffffff00000000000000");  // R = 0: ratio drops it
  EXPECT_FALSE(s.ShouldSample({}, low).sampled());
  SpanContext parent = Parent(true, true);
  parent.trace_id = low;
  EXPECT_TRUE(s.ShouldSample(parent, low).sampled());  // parent says sampled
  EXPECT_EQ(s.ShouldSample(parent, low).threshold, std::nullopt);
}

TEST(ParentBasedTest, RejectsNestedParentBased) {
  EXPECT_THROW(Sampler::ParentBased(Sampler::ParentBased(Sampler::AlwaysOn())),
               std::invalid_argument);
  EXPECT_THROW(Sampler::ParentBased(Sampler::AlwaysOn(), Sampler()), std::invalid_argument);
}

TEST(SamplerTest, Descriptions) {
  EXPECT_EQ(Sampler::AlwaysOn().Description(), "AlwaysOnSampler");
  EXPECT_EQ(Sampler::AlwaysOff().Description(), "AlwaysOffSampler");
  EXPECT_EQ(Sampler::TraceIdRatio(0.0001).Description(), "TraceIdRatioBased{0.0001}");
  EXPECT_EQ(Sampler().Description(),
            "ParentBased{root=AlwaysOnSampler,remoteParentSampled=AlwaysOnSampler,"
            "remoteParentNotSampled=AlwaysOffSampler,localParentSampled=AlwaysOnSampler,"
            "localParentNotSampled=AlwaysOffSampler}");
}

TEST(SamplerEnvTest, DefaultIsParentBasedAlwaysOn) {
  ScopedEnv a("OTEL_TRACES_SAMPLER", nullptr);
  ScopedEnv b("OTEL_TRACES_SAMPLER_ARG", nullptr);
  EXPECT_EQ(Sampler::FromEnv().Description(), Sampler().Description());
}

TEST(SamplerEnvTest, EveryKnownValue) {
  ScopedEnv arg("OTEL_TRACES_SAMPLER_ARG", "0.25");
  const std::pair<const char*, std::string> cases[] = {
      {"always_on", "AlwaysOnSampler"},
      {"always_off", "AlwaysOffSampler"},
      {"traceidratio", "TraceIdRatioBased{0.25}"},
      {"parentbased_always_on", Sampler::ParentBased(Sampler::AlwaysOn()).Description()},
      {"parentbased_always_off", Sampler::ParentBased(Sampler::AlwaysOff()).Description()},
      {"parentbased_traceidratio", Sampler::ParentBased(Sampler::TraceIdRatio(0.25)).Description()},
      {"  TraceIdRatio ", "TraceIdRatioBased{0.25}"},  // case and whitespace do not matter
  };
  for (const auto& [value, description] : cases) {
    ScopedEnv s("OTEL_TRACES_SAMPLER", value);
    EXPECT_EQ(Sampler::FromEnv().Description(), description) << value;
  }
}

TEST(SamplerEnvTest, RatioDefaultsToOne) {
  ScopedEnv s("OTEL_TRACES_SAMPLER", "traceidratio");
  ScopedEnv a("OTEL_TRACES_SAMPLER_ARG", "");
  EXPECT_EQ(Sampler::FromEnv().Description(), "TraceIdRatioBased{1}");
}

TEST(SamplerEnvTest, InvalidValuesNameTheVariable) {
  {
    ScopedEnv s("OTEL_TRACES_SAMPLER", "sometimes");
    try {
      Sampler::FromEnv();
      FAIL() << "no error";
    } catch (const EnvVarError& e) {
      EXPECT_EQ(e.variable(), "OTEL_TRACES_SAMPLER");
      EXPECT_NE(std::string(e.what()).find("OTEL_TRACES_SAMPLER=\"sometimes\" is not valid"),
                std::string::npos)
          << e.what();
    }
  }
  ScopedEnv s("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
  for (const char* bad : {"1.5", "-0.1", "abc", "0.5x", "nan", "inf"}) {
    ScopedEnv a("OTEL_TRACES_SAMPLER_ARG", bad);
    try {
      Sampler::FromEnv();
      ADD_FAILURE() << "no error for " << bad;
    } catch (const EnvVarError& e) {
      EXPECT_EQ(e.variable(), "OTEL_TRACES_SAMPLER_ARG") << bad;
    }
  }
}

TEST(SamplerEnvTest, ArgumentIgnoredBySamplersWithoutOne) {
  ScopedEnv s("OTEL_TRACES_SAMPLER", "always_on");
  ScopedEnv a("OTEL_TRACES_SAMPLER_ARG", "not-a-number");
  EXPECT_EQ(Sampler::FromEnv().Description(), "AlwaysOnSampler");
}

}  // namespace
}  // namespace vigil::telemetry

// Content negotiation between Prometheus text and OpenMetrics.
#include <string_view>

#include <gtest/gtest.h>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {
namespace {

ExpositionFormat FormatFor(std::string_view accept) { return NegotiateExposition(accept).format; }

constexpr auto kOm = ExpositionFormat::kOpenMetrics;
constexpr auto kText = ExpositionFormat::kPrometheusText;

TEST(Negotiation, Prometheus242Header) {
  const Negotiation n = NegotiateExposition(
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
      "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
  EXPECT_EQ(n.format, kOm);
  EXPECT_EQ(n.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(Negotiation, PrometheusTextOnlyScrape) {
  // What Prometheus sends with OpenMetrics scraping switched off.
  const Negotiation n = NegotiateExposition("text/plain;version=0.0.4;q=1,*/*;q=0.1");
  EXPECT_EQ(n.format, kText);
  EXPECT_EQ(n.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Negotiation, DefaultsToText) {
  EXPECT_EQ(FormatFor(""), kText);
  EXPECT_EQ(FormatFor("*/*"), kText);
  EXPECT_EQ(FormatFor("text/html,application/json"), kText);
  EXPECT_EQ(FormatFor("text/*"), kText);
}

TEST(Negotiation, OpenMetricsPreferences) {
  EXPECT_EQ(FormatFor("application/openmetrics-text"), kOm);
  EXPECT_EQ(FormatFor("Application/OpenMetrics-Text; Version=1.0.0"), kOm);
  EXPECT_EQ(FormatFor("application/openmetrics-text; version=\"1.0.0\""), kOm);
  EXPECT_EQ(FormatFor("application/openmetrics-text;version=0.0.1"), kOm);
  // Ties go to OpenMetrics; a lower q loses.
  EXPECT_EQ(FormatFor("text/plain;q=0.5,application/openmetrics-text;q=0.5"), kOm);
  EXPECT_EQ(FormatFor("text/plain;q=0.6,application/openmetrics-text;q=0.5"), kText);
  EXPECT_EQ(FormatFor("text/plain, application/openmetrics-text;q=0.9"), kText);
  // Wildcards stand in for text/plain only when it is not listed.
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=0.3,*/*;q=0.5"), kText);
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=0.3,text/*;q=0.2,*/*;q=0.9"), kOm);
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=0.3,text/plain;q=0.2,*/*;q=0.9"), kOm);
  // q=0 means "not acceptable".
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=0"), kText);
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=0.000,text/plain;q=0"), kText);
  // A version we do not write.
  EXPECT_EQ(FormatFor("application/openmetrics-text;version=2.0.0"), kText);
}

TEST(Negotiation, MalformedHeadersFallBackToText) {
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=abc"), kText);
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=1.5"), kText);
  EXPECT_EQ(FormatFor("application/openmetrics-text;q=-1"), kText);
  EXPECT_EQ(FormatFor("application/openmetrics-text;q="), kText);
  EXPECT_EQ(FormatFor("application/openmetrics-text;noequals"), kText);
  EXPECT_EQ(FormatFor(";;;,,,"), kText);
  EXPECT_EQ(FormatFor("/"), kText);
  EXPECT_EQ(FormatFor("application/"), kText);
  EXPECT_EQ(FormatFor(std::string_view("\0\xff\xfe", 3)), kText);
  // One bad element does not spoil the others.
  EXPECT_EQ(FormatFor("garbage;;q=x, application/openmetrics-text"), kOm);
  EXPECT_EQ(FormatFor(" , application/openmetrics-text ; q=0.8 , "), kOm);
}

}  // namespace
}  // namespace vigil::telemetry

// Start-up configuration: typed environment reading and OptionsFromEnv. A malformed
// value must stop start-up with an error naming the variable; defaults must work.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/telemetry.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/ports.hpp>
#include <vigil/testing/scoped_env.hpp>

namespace vigil::telemetry {
namespace {

using test_support::ScopedEnv;

std::string ErrorVariable(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(e.variable()), std::string::npos) << e.what();
    return e.variable();
  }
  return "(no error)";
}

TEST(EnvTest, IntegerAcceptsRangeAndNamesTheVariable) {
  ScopedEnv v("VIGIL_TEST_INT", "42");
  EXPECT_EQ(env::Integer("VIGIL_TEST_INT", 1, 0, 100), 42);
  EXPECT_EQ(env::Integer("VIGIL_TEST_UNSET_VARIABLE", 7, 0, 100), 7);
  for (const char* bad : {"101", "-1", "4x", "0x10", "1e3"}) {
    ScopedEnv b("VIGIL_TEST_INT", bad);
    EXPECT_EQ(ErrorVariable([] { env::Integer("VIGIL_TEST_INT", 1, 0, 100); }), "VIGIL_TEST_INT")
        << bad;
  }
}

TEST(EnvTest, EmptyOrBlankMeansUnset) {
  ScopedEnv v("VIGIL_TEST_INT", "   ");
  EXPECT_EQ(env::Integer("VIGIL_TEST_INT", 5, 0, 100), 5);
  EXPECT_EQ(env::String("VIGIL_TEST_INT", "fallback"), "fallback");
}

TEST(EnvTest, SecretsComeFromTheVariableOrFromAFile) {
  test_support::TempDir dir("secret");
  const std::string path = (dir.path() / "secret").string();
  {
    std::ofstream out(path);
    out << "s3cr3t-from-a-file\n";
  }
  EXPECT_EQ(env::Secret("VIGIL_TEST_SECRET"), std::nullopt);
  {
    ScopedEnv v("VIGIL_TEST_SECRET", "s3cr3t-inline");
    EXPECT_EQ(env::Secret("VIGIL_TEST_SECRET"), "s3cr3t-inline");
  }
  {
    ScopedEnv f("VIGIL_TEST_SECRET_FILE", path.c_str());
    EXPECT_EQ(env::Secret("VIGIL_TEST_SECRET"), "s3cr3t-from-a-file");  // line break dropped
    ScopedEnv v("VIGIL_TEST_SECRET", "s3cr3t-inline");
    try {
      env::Secret("VIGIL_TEST_SECRET");
      ADD_FAILURE() << "both accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.variable(), "VIGIL_TEST_SECRET_FILE");
      EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos) << e.what();
    }
  }
  for (const std::string& bad : {(dir.path() / "missing").string(), dir.path().string()}) {
    ScopedEnv f("VIGIL_TEST_SECRET_FILE", bad.c_str());
    EXPECT_THROW(env::Secret("VIGIL_TEST_SECRET"), ConfigError) << bad;
  }
}

TEST(EnvTest, NumberBooleanMillis) {
  ScopedEnv n("VIGIL_TEST_NUM", "0.25");
  EXPECT_DOUBLE_EQ(env::Number("VIGIL_TEST_NUM", 1, 0, 1), 0.25);
  ScopedEnv b("VIGIL_TEST_BOOL", "Yes");
  EXPECT_TRUE(env::Boolean("VIGIL_TEST_BOOL", false));
  ScopedEnv m("VIGIL_TEST_MS", "1500");
  EXPECT_EQ(env::Millis("VIGIL_TEST_MS", std::chrono::milliseconds(1)).count(), 1500);
  {
    ScopedEnv bad("VIGIL_TEST_NUM", "nan");
    EXPECT_EQ(ErrorVariable([] { env::Number("VIGIL_TEST_NUM", 1, 0, 1); }), "VIGIL_TEST_NUM");
  }
  {
    ScopedEnv bad("VIGIL_TEST_BOOL", "maybe");
    EXPECT_EQ(ErrorVariable([] { env::Boolean("VIGIL_TEST_BOOL", false); }), "VIGIL_TEST_BOOL");
  }
}

ServiceInfo Demo() {
  ServiceInfo s;
  s.name = "svc";
  s.version = "1.2.3";
  return s;
}

TEST(OptionsFromEnvTest, DefaultsWork) {
  ScopedEnv a("OTEL_EXPORTER_OTLP_ENDPOINT", nullptr),
      b("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", nullptr), c("VIGIL_TRACES_FILE", nullptr),
      d("OTEL_TRACES_EXPORTER", nullptr), e("VIGIL_LOG_LEVEL", nullptr),
      f("OTEL_SERVICE_NAME", nullptr);
  TelemetryOptions o = OptionsFromEnv(Demo());
  EXPECT_EQ(o.service.name, "svc");
  EXPECT_EQ(o.log.service, "svc");
  EXPECT_EQ(o.log.version, "1.2.3");
  EXPECT_EQ(o.log.level, LogLevel::kInfo);
  EXPECT_EQ(o.service.instance_id.size(), 32u);
  EXPECT_FALSE(o.traces.otlp.has_value()) << "no endpoint: nothing to send to";
  EXPECT_FALSE(o.traces.file.has_value());
}

TEST(OptionsFromEnvTest, EnvironmentOverrides) {
  ScopedEnv a("OTEL_SERVICE_NAME", "renamed"), b("VIGIL_ENV", "prod"), c("VIGIL_LOG_LEVEL", "WARN"),
      d("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), e("VIGIL_LOG_OVERFLOW", "block");
  TelemetryOptions o = OptionsFromEnv(Demo());
  EXPECT_EQ(o.service.name, "renamed");
  EXPECT_EQ(o.log.env, "prod");
  EXPECT_EQ(o.log.level, LogLevel::kWarn);
  EXPECT_EQ(o.log.overflow, OverflowPolicy::kBlock);
  ASSERT_TRUE(o.traces.otlp.has_value());
  EXPECT_EQ(o.traces.otlp->endpoint, "http://127.0.0.1:4318/v1/traces");
  ScopedEnv none("OTEL_TRACES_EXPORTER", "none");
  EXPECT_FALSE(OptionsFromEnv(Demo()).traces.otlp.has_value());
}

TEST(OptionsFromEnvTest, SdkDisabledRecordsNoSpans) {
  ScopedEnv a("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
      b("VIGIL_TRACES_FILE", "/tmp/never-written.jsonl"), c("OTEL_SDK_DISABLED", "true");
  TelemetryOptions o = OptionsFromEnv(Demo());
  EXPECT_FALSE(o.traces.otlp.has_value());
  EXPECT_FALSE(o.traces.file.has_value());
  Telemetry t(std::move(o));
  Span span = t.tracer().StartRootSpan("GET /x", SpanKind::kServer);
  EXPECT_FALSE(span.IsRecording());
  EXPECT_TRUE(span.context().IsValid()) << "context still propagates";
  ScopedEnv bad("OTEL_SDK_DISABLED", "maybe");
  EXPECT_EQ(ErrorVariable([] { OptionsFromEnv(Demo()); }), "OTEL_SDK_DISABLED");
}

TEST(OptionsFromEnvTest, EveryBadValueNamesItsVariable) {
  const std::pair<const char*, const char*> cases[] = {
      {"VIGIL_LOG_LEVEL", "loud"},
      {"VIGIL_LOG_OVERFLOW", "spill"},
      {"VIGIL_LOG_QUEUE_BYTES", "12"},
      {"OTEL_TRACES_EXPORTER", "zipkin"},
      {"OTEL_TRACES_SAMPLER", "sometimes"},
      {"OTEL_BSP_MAX_QUEUE_SIZE", "-5"},
      {"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"},
      {"OTEL_RESOURCE_ATTRIBUTES", "broken%zz=1"},
      {"VIGIL_TRACES_FILE_MAX_BYTES", "64M"},
      {"VIGIL_TRACES_FILE_MAX_BYTES", "-1"},
      {"VIGIL_TRACES_FILE_KEEP", "0"},
      {"VIGIL_TRACES_FILE_KEEP", "101"},
  };
  for (const auto& [name, value] : cases) {
    ScopedEnv v(name, value);
    EXPECT_EQ(ErrorVariable([] {
                TelemetryOptions o = OptionsFromEnv(Demo());
                Telemetry t(std::move(o));
              }),
              name)
        << value;
  }
}

// The value of the one sample of `name` whose labels are exactly `labels`; -1 if absent.
double Sample(const std::string& text, const std::string& name, const std::string& labels) {
  const std::string prefix = name + "{" + labels + "} ";
  const auto at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + prefix.size()));
}

TEST(OptionsFromEnvTest, SentryIsOffWithoutADsnAndTakesItsSettings) {
  ScopedEnv a("SENTRY_DSN", nullptr), b("SENTRY_DSN_FILE", nullptr), c("VIGIL_ENV", "staging");
  TelemetryOptions o = OptionsFromEnv(Demo());
  EXPECT_FALSE(o.errors.dsn.has_value());
  EXPECT_EQ(o.errors.service, "svc");
  EXPECT_EQ(o.errors.version, "1.2.3");
  EXPECT_EQ(o.errors.environment, "staging");
  EXPECT_EQ(o.errors.log_events, LogLevel::kError);
  {
    Telemetry t(std::move(o));
    EXPECT_FALSE(t.errors().enabled());
  }
  ScopedEnv d("SENTRY_DSN", "https://pubkey@sentry.example.com/12"),
      e("SENTRY_ENVIRONMENT", "eu-prod"), f("SENTRY_RELEASE", "shop@2024.1"),
      g("SENTRY_SAMPLE_RATE", "0.25"), h("SENTRY_DEBUG", "true"),
      i("VIGIL_SENTRY_LOG_EVENTS", "off"), j("VIGIL_SENTRY_SESSIONS", "false"),
      k("VIGIL_SENTRY_QUEUE_SIZE", "7"), l("VIGIL_SENTRY_COMPRESSION", "none");
  o = OptionsFromEnv(Demo());
  ASSERT_TRUE(o.errors.dsn.has_value());
  EXPECT_EQ(o.errors.dsn->EnvelopeUrl(), "https://sentry.example.com/api/12/envelope/");
  EXPECT_EQ(o.errors.environment, "eu-prod");
  EXPECT_EQ(o.errors.release, "shop@2024.1");
  EXPECT_DOUBLE_EQ(o.errors.sample_rate, 0.25);
  EXPECT_TRUE(o.errors.debug);
  EXPECT_FALSE(o.errors.log_events.has_value());
  EXPECT_FALSE(o.errors.sessions);
  EXPECT_EQ(o.errors.queue_size, 7u);
  EXPECT_FALSE(o.errors.compress);
}

TEST(OptionsFromEnvTest, AMalformedDsnNamesItsVariableAndNeverItsKey) {
  const std::string key = "d1c2b3a4e5f60718293a4b5c6d7e8f90";
  const std::string bad = "https://" + key + "@sentry.example.com";  // no project id
  {
    ScopedEnv a("SENTRY_DSN", bad.c_str());
    try {
      OptionsFromEnv(Demo());
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.variable(), "SENTRY_DSN");
      EXPECT_EQ(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("project id"), std::string::npos) << e.what();
    }
  }
  test_support::TempDir dir("dsn");
  const std::string path = dir.File("dsn");
  std::ofstream(path) << bad << "\n";
  ScopedEnv a("SENTRY_DSN", nullptr), b("SENTRY_DSN_FILE", path.c_str());
  EXPECT_EQ(ErrorVariable([] { OptionsFromEnv(Demo()); }), "SENTRY_DSN_FILE");
  std::ofstream(path) << "http://k@127.0.0.1:9/1\n";
  EXPECT_EQ(OptionsFromEnv(Demo()).errors.dsn->host, "127.0.0.1:9") << "the file's DSN";
  for (const auto& [name, value] : {std::pair<const char*, const char*>{"SENTRY_SAMPLE_RATE", "2"},
                                    {"SENTRY_DEBUG", "loud"},
                                    {"VIGIL_SENTRY_LOG_EVENTS", "info"},
                                    {"VIGIL_SENTRY_QUEUE_SIZE", "0"},
                                    {"VIGIL_SENTRY_COMPRESSION", "zstd"}}) {
    ScopedEnv v(name, value);
    EXPECT_EQ(ErrorVariable([] { OptionsFromEnv(Demo()); }), name) << value;
  }
}

TEST(TelemetryTest, ErrorReportsAreCountedAndFlushedOnShutdown) {
  ScopedEnv a("OTEL_EXPORTER_OTLP_ENDPOINT", nullptr), b("VIGIL_TRACES_FILE", nullptr);
  const std::string dsn =
      "http://key@127.0.0.1:" + std::to_string(test_support::UnusedPort()) + "/1";
  ScopedEnv c("SENTRY_DSN", dsn.c_str());
  TelemetryOptions o = OptionsFromEnv(Demo());
  o.log.fd = 2;
  o.log.handle_signals = false;
  o.errors.flush_interval = std::chrono::hours(1);
  Telemetry t(std::move(o));
  ASSERT_TRUE(t.errors().enabled());
  // An error line becomes an event; the receiver is down, so the shutdown's attempt fails.
  t.log().Error(RequestContext::NewRoot(), "the database went away");
  t.Shutdown();
  const std::string text = t.metrics().Expose(ExpositionFormat::kPrometheusText);
  EXPECT_EQ(Sample(text, "vigil_telemetry_exported_total", "signal=\"errors\",exporter=\"sentry\""),
            0)
      << text;
  EXPECT_EQ(Sample(text, "vigil_telemetry_dropped_total",
                   "signal=\"errors\",reason=\"network_error\",exporter=\"sentry\""),
            1)
      << text;
  EXPECT_EQ(Sample(text, "vigil_telemetry_dropped_total",
                   "signal=\"errors\",reason=\"queue_overflow\",exporter=\"sentry\""),
            0)
      << text;
}

TEST(TelemetryTest, ExposesItsOwnCountersAndShutsDownTwice) {
  ScopedEnv a("OTEL_EXPORTER_OTLP_ENDPOINT", nullptr), b("VIGIL_TRACES_FILE", nullptr);
  TelemetryOptions o = OptionsFromEnv(Demo());
  o.log.fd = 2;
  o.log.handle_signals = false;
  Telemetry t(std::move(o));
  t.log().Info("hello");
  const std::string text = t.metrics().Expose(ExpositionFormat::kPrometheusText);
  for (const char* want :
       {"vigil_telemetry_exported_total{signal=\"logs\",exporter=\"fd\"}",
        "vigil_telemetry_dropped_total{signal=\"logs\",reason=\"queue_full\",exporter=\"fd\"}",
        "vigil_telemetry_thread_cpu_seconds_total{thread=\"vigil-log\"}", "vigil_build_info{",
        "process_resident_memory_bytes "}) {
    EXPECT_NE(text.find(want), std::string::npos) << want;
  }
  // No exporter configured: no span worker and no span can be exported or dropped, so
  // no series for either.
  EXPECT_EQ(text.find("thread=\"vigil-spans\""), std::string::npos) << text;
  EXPECT_EQ(text.find("signal=\"spans\""), std::string::npos) << text;
  t.Shutdown();
  t.Shutdown();
}

TEST(TelemetryTest, CountsSpansPerExporterWhenTheCollectorIsDown) {
  // What `./vigil up` runs with the collector down: OTLP gives up on every batch while the
  // traces file takes them. Each destination's counts must be its own.
  test_support::TempDir dir("sdk-exporters");
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(test_support::UnusedPort());
  const std::string traces = dir.File("traces.jsonl");
  ScopedEnv a("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.c_str());
  ScopedEnv b("OTEL_EXPORTER_OTLP_TIMEOUT", "300");  // no time for a retry: give up at once
  ScopedEnv c("VIGIL_TRACES_FILE", traces.c_str());
  ScopedEnv d("OTEL_TRACES_EXPORTER", nullptr);
  ScopedEnv e("OTEL_SDK_DISABLED", nullptr);
  TelemetryOptions o = OptionsFromEnv(Demo());
  o.log.fd = 2;
  o.log.handle_signals = false;
  Telemetry t(std::move(o));
  for (int i = 0; i < 30; ++i) t.tracer().StartRootSpan("GET /x", SpanKind::kServer).End();
  t.Shutdown();  // exports the queued spans to both destinations

  const std::string text = t.metrics().Expose(ExpositionFormat::kPrometheusText);
  const std::string exported = "vigil_telemetry_exported_total";
  const std::string dropped = "vigil_telemetry_dropped_total";
  EXPECT_EQ(Sample(text, exported, "signal=\"spans\",exporter=\"file\""), 30) << text;
  EXPECT_EQ(Sample(text, exported, "signal=\"spans\",exporter=\"otlp\""), 0) << text;
  EXPECT_EQ(Sample(text, dropped, "signal=\"spans\",reason=\"export_failed\",exporter=\"otlp\""),
            30)
      << text;
  EXPECT_EQ(Sample(text, dropped, "signal=\"spans\",reason=\"export_failed\",exporter=\"file\""), 0)
      << text;
  // Every sample of the two families has the same label names (what Prometheus expects of
  // a family): signal and exporter, plus reason on drops.
  const std::regex sample("^vigil_telemetry_(exported|dropped)_total\\{([^}]*)\\}",
                          std::regex::multiline);
  int samples = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), sample);
       it != std::sregex_iterator(); ++it, ++samples) {
    const std::string labels = (*it)[2];
    const std::string want = (*it)[1] == "exported"
                                 ? "^signal=\"[a-z]+\",exporter=\"[a-z]+\"$"
                                 : "^signal=\"[a-z]+\",reason=\"[a-z_]+\",exporter=\"[a-z]+\"$";
    EXPECT_TRUE(std::regex_match(labels, std::regex(want))) << labels;
  }
  EXPECT_EQ(samples, 1 + 2 + 2 + 2 * 4) << text;  // logs and two span exporters
}

}  // namespace
}  // namespace vigil::telemetry

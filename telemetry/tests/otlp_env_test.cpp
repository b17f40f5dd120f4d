// OtlpHttpExporterOptionsFromEnv, ParseOtlpHeaders and OtlpFileExporterOptionsFromEnv:
// defaults, the TRACES_ precedence rules, and errors that name the variable.

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vigil/telemetry/otlp.hpp>

#include "otlp/url.hpp"

namespace vigil::telemetry {
namespace {

constexpr const char* kVariables[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "VIGIL_TRACES_FILE",
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class OtlpEnv : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }
  // Tests run on one thread, so changing the environment here races with nothing.
  static void Clear() {
    for (const char* v : kVariables) {
      ::unsetenv(v);  // NOLINT(concurrency-mt-unsafe)
    }
  }
  static void Set(const char* name, const char* value) {
    ::setenv(name, value, 1);  // NOLINT(concurrency-mt-unsafe)
  }

  // The message of the std::invalid_argument thrown while reading the environment.
  static std::string ErrorFor(const char* name, const char* value) {
    Clear();
    Set(name, value);
    try {
      OtlpHttpExporterOptionsFromEnv();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  }
};

TEST_F(OtlpEnv, Defaults) {
  const auto o = OtlpHttpExporterOptionsFromEnv();
  EXPECT_EQ(o.endpoint, "http://localhost:4318/v1/traces");
  EXPECT_EQ(o.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_TRUE(o.headers.empty());
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(o.compression, OtlpCompression::kNone);
}

TEST_F(OtlpEnv, EmptyValuesMeanUnset) {
  Set("OTEL_EXPORTER_OTLP_ENDPOINT", "");
  Set("OTEL_EXPORTER_OTLP_TIMEOUT", "  ");
  const auto o = OtlpHttpExporterOptionsFromEnv();
  EXPECT_EQ(o.endpoint, "http://localhost:4318/v1/traces");
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(10000));
}

TEST_F(OtlpEnv, BaseEndpointGetsSignalPath) {
  Set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().endpoint, "http://collector:4318/v1/traces");
  Set("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector/prefix/");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().endpoint, "https://collector/prefix/v1/traces");
}

TEST_F(OtlpEnv, TracesEndpointIsUsedAsIs) {
  Set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318");
  Set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().endpoint, "http://collector:4318/custom");
}

TEST_F(OtlpEnv, BadEndpointsAreNamed) {
  EXPECT_NE(ErrorFor("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
                .find("OTEL_EXPORTER_OTLP_ENDPOINT="),
            std::string::npos);
  EXPECT_NE(ErrorFor("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://c")
                .find("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="),
            std::string::npos);
  EXPECT_NE(ErrorFor("OTEL_EXPORTER_OTLP_ENDPOINT", "http://").find("not valid"),
            std::string::npos);
  EXPECT_NE(ErrorFor("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a b").find("not valid"),
            std::string::npos);
}

TEST_F(OtlpEnv, Protocol) {
  Set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().protocol, OtlpProtocol::kHttpJson);
  Set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().protocol, OtlpProtocol::kHttpProtobuf)
      << "the TRACES_ variable wins";
  const std::string grpc = ErrorFor("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
  EXPECT_EQ(grpc.rfind("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\"", 0), 0u) << grpc;
  EXPECT_NE(ErrorFor("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON")
                .find("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            std::string::npos);
}

TEST_F(OtlpEnv, Timeout) {
  Set("OTEL_EXPORTER_OTLP_TIMEOUT", "2500");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().timeout, std::chrono::milliseconds(2500));
  Set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().timeout, std::chrono::milliseconds(700));
  for (const char* bad : {"abc", "0", "-1", "1.5", "10s", "99999999999999999999"}) {
    const std::string e = ErrorFor("OTEL_EXPORTER_OTLP_TIMEOUT", bad);
    EXPECT_EQ(e.rfind("OTEL_EXPORTER_OTLP_TIMEOUT=", 0), 0u) << bad << ": " << e;
  }
  EXPECT_EQ(ErrorFor("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "x")
                .rfind("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=", 0),
            0u);
}

TEST_F(OtlpEnv, Compression) {
  Set("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().compression, OtlpCompression::kGzip);
  Set("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().compression, OtlpCompression::kNone);
  Set("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "GZIP");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().compression, OtlpCompression::kGzip);
  EXPECT_EQ(ErrorFor("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")
                .rfind("OTEL_EXPORTER_OTLP_COMPRESSION=", 0),
            0u);
}

TEST_F(OtlpEnv, HeadersFromBothVariablesMerge) {
  Set("OTEL_EXPORTER_OTLP_HEADERS", "api-key=one,X-Tenant=acme");
  Set("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=traces,extra=1");
  EXPECT_EQ(OtlpHttpExporterOptionsFromEnv().headers,
            (Headers{{"api-key", "one"}, {"X-Tenant", "traces"}, {"extra", "1"}}));
}

TEST(OtlpHeaders, ParsesTheBaggageLikeList) {
  EXPECT_EQ(ParseOtlpHeaders("a=1", "V"), (Headers{{"a", "1"}}));
  EXPECT_EQ(ParseOtlpHeaders(" a = 1 ,\tb=two words ", "V"),
            (Headers{{"a", "1"}, {"b", "two words"}}));
  EXPECT_EQ(ParseOtlpHeaders("a=1,,b=2,", "V"), (Headers{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(ParseOtlpHeaders("", "V"), Headers{});
  EXPECT_EQ(ParseOtlpHeaders("k=", "V"), (Headers{{"k", ""}}));
  EXPECT_EQ(ParseOtlpHeaders("a=1,A=2", "V"), (Headers{{"a", "2"}}))
      << "names are case-insensitive";
}

TEST(OtlpHeaders, ValuesArePercentDecoded) {
  EXPECT_EQ(ParseOtlpHeaders("Authorization=Basic%20dXNlcjpwYXNz", "V"),
            (Headers{{"Authorization", "Basic dXNlcjpwYXNz"}}));
  EXPECT_EQ(ParseOtlpHeaders("k=%2c%3D%25", "V"), (Headers{{"k", ",=%"}}));
  EXPECT_EQ(ParseOtlpHeaders("k=a=b", "V"), (Headers{{"k", "a=b"}})) << "only the first '=' splits";
  EXPECT_EQ(ParseOtlpHeaders("k=%C3%A9", "V"), (Headers{{"k", "\xC3\xA9"}}));
}

TEST(OtlpHeaders, MalformedMembersThrowNamingTheVariable) {
  for (const char* bad : {"novalue", "=v", "bad key=v", "k(=v", "k=%", "k=%2", "k=%zz", "k=a%0Ab",
                          "k=%0D", "k=%00"}) {
    try {
      ParseOtlpHeaders(bad, "OTEL_EXPORTER_OTLP_HEADERS");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).rfind("OTEL_EXPORTER_OTLP_HEADERS=", 0), 0u) << e.what();
    }
  }
}

TEST(OtlpUrl, HttpUrls) {
  EXPECT_TRUE(otlp::IsHttpUrl("http://collector:4318/v1/traces"));
  EXPECT_TRUE(otlp::IsHttpUrl("HTTPS://collector"));
  EXPECT_TRUE(otlp::IsHttpUrl("http://[::1]:4318"));
  for (const char* bad : {"", "http://", "https:///path", "collector:4318", "ftp://c", "http:/c",
                          "http://c /x", "http://c\t", "unix:///tmp/s"}) {
    EXPECT_FALSE(otlp::IsHttpUrl(bad)) << bad;
  }
}

TEST(OtlpUrl, LogsNeverShowCredentialsOrQueries) {
  EXPECT_EQ(otlp::RedactedUrl("https://user:pw@collector:4318/v1/traces?token=abc#x"),
            "https://collector:4318/v1/traces");
  EXPECT_EQ(otlp::RedactedUrl("http://collector/v1/traces"), "http://collector/v1/traces");
  EXPECT_EQ(otlp::RedactedUrl("http://collector/a@b"), "http://collector/a@b")
      << "an '@' in the path is not userinfo";
}

TEST_F(OtlpEnv, TracesFile) {
  EXPECT_FALSE(OtlpFileExporterOptionsFromEnv().has_value());
  Set("VIGIL_TRACES_FILE", "/var/log/vigil/traces.jsonl");
  auto o = OtlpFileExporterOptionsFromEnv();
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->path, "/var/log/vigil/traces.jsonl");
}

}  // namespace
}  // namespace vigil::telemetry

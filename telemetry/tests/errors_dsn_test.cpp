// Sentry DSNs: the forms Sentry, self-hosted Sentry, GlitchTip and Spotlight hand out, and
// every way one can be wrong, with reasons that never quote a key.
#include <gtest/gtest.h>

#include <string>
#include <vigil/telemetry/errors.hpp>

namespace vigil::telemetry {
namespace {

TEST(SentryDsnTest, ParsesTheHostedForm) {
  std::string why;
  const auto dsn =
      ParseSentryDsn("https://0123456789abcdef0123456789abcdef@o123.ingest.sentry.io/4505", &why);
  ASSERT_TRUE(dsn) << why;
  EXPECT_EQ(dsn->scheme, "https");
  EXPECT_EQ(dsn->public_key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(dsn->secret_key, "");
  EXPECT_EQ(dsn->host, "o123.ingest.sentry.io");
  EXPECT_EQ(dsn->path, "");
  EXPECT_EQ(dsn->project_id, "4505");
  EXPECT_EQ(dsn->EnvelopeUrl(), "https://o123.ingest.sentry.io/api/4505/envelope/");
}

TEST(SentryDsnTest, ParsesAPortAPathPrefixAndALegacySecret) {
  const auto dsn = ParseSentryDsn("http://pub:sec@localhost:8969/sentry/prefix/7");
  ASSERT_TRUE(dsn);
  EXPECT_EQ(dsn->host, "localhost:8969");
  EXPECT_EQ(dsn->path, "/sentry/prefix");
  EXPECT_EQ(dsn->project_id, "7");
  EXPECT_EQ(dsn->secret_key, "sec");
  EXPECT_EQ(dsn->EnvelopeUrl(), "http://localhost:8969/sentry/prefix/api/7/envelope/");
  EXPECT_EQ(dsn->ToPublicString(), "http://pub@localhost:8969/sentry/prefix/7")
      << "the secret key never leaves";
}

TEST(SentryDsnTest, TheSchemeIsCaseInsensitive) {
  const auto dsn = ParseSentryDsn("HTTPS://key@example.com/1");
  ASSERT_TRUE(dsn);
  EXPECT_EQ(dsn->scheme, "https");
}

TEST(SentryDsnTest, RefusesMalformedDsnsWithoutQuotingTheKey) {
  const std::string key = "supersecretkey0123456789";
  const struct {
    std::string dsn;
    std::string reason_part;
  } cases[] = {
      {key + "@example.com/1", "scheme"},
      {"ftp://" + key + "@example.com/1", "scheme"},
      {"https://example.com/1", "public key"},
      {"https://@example.com/1", "public key is empty"},
      {"https://" + key + "@/1", "host"},
      {"https://" + key + "@example.com", "project id"},
      {"https://" + key + "@example.com/", "project id"},
      {"https://" + key + "@example.com:port/1", "port"},
      {"https://" + key + "@example.com/1?timeout=2", "query"},
      {"https://" + key + " x@example.com/1", "spaces"},
      {"https://ke/y@example.com/1", "public key"},
      {"https://" + key + "@example.com/1/", "project id"},
  };
  for (const auto& c : cases) {
    std::string why;
    EXPECT_FALSE(ParseSentryDsn(c.dsn, &why)) << c.dsn;
    EXPECT_NE(why.find(c.reason_part), std::string::npos) << c.dsn << ": " << why;
    EXPECT_EQ(why.find(key), std::string::npos) << why;
  }
}

}  // namespace
}  // namespace vigil::telemetry

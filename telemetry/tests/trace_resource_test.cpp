// BuildResource: the service's identity, OTEL_RESOURCE_ATTRIBUTES (percent-decoded) and
// OTEL_SERVICE_NAME, with the specification's precedence.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vigil/telemetry/trace_resource.hpp>
#include <vigil/testing/scoped_env.hpp>

namespace vigil::telemetry {
namespace {

using test_support::ScopedEnv;

// Both variables set for the scope of one test (nullptr: unset).
struct ResourceEnv {
  ResourceEnv(const char* attributes, const char* service_name)
      : a("OTEL_RESOURCE_ATTRIBUTES", attributes), b("OTEL_SERVICE_NAME", service_name) {}
  ScopedEnv a;
  ScopedEnv b;
};

std::optional<std::string> Get(const Resource& r, std::string_view key) {
  std::optional<std::string> found;
  for (const auto& a : r.attributes) {
    if (a.key != key) {
      continue;
    }
    EXPECT_FALSE(found.has_value()) << "duplicate key " << key;
    found = std::get<std::string>(a.value.v);
  }
  return found;
}

TEST(ResourceTest, ServiceIdentityAndSdkAttributes) {
  ResourceEnv env(nullptr, nullptr);
  const Resource r = BuildResource("auth", "0.3.0", "prod", "7c1f6a1e-instance");
  EXPECT_EQ(r.attributes.front().key, "service.name");
  EXPECT_EQ(Get(r, "service.name"), "auth");
  EXPECT_EQ(Get(r, "service.version"), "0.3.0");
  EXPECT_EQ(Get(r, "deployment.environment.name"), "prod");
  EXPECT_EQ(Get(r, "service.instance.id"), "7c1f6a1e-instance");
  EXPECT_EQ(Get(r, "telemetry.sdk.name"), "vigil");
  EXPECT_EQ(Get(r, "telemetry.sdk.language"), "cpp");
  ASSERT_TRUE(Get(r, "telemetry.sdk.version").has_value());
  EXPECT_FALSE(Get(r, "telemetry.sdk.version")->empty());
  EXPECT_EQ(r.attributes.size(), 7u);
}

TEST(ResourceTest, EmptyArgumentsSetNothingAndTheNameDefaults) {
  ResourceEnv env(nullptr, nullptr);
  const Resource r = BuildResource("", "", "", "");
  EXPECT_EQ(Get(r, "service.name"), "unknown_service");
  EXPECT_FALSE(Get(r, "service.version").has_value());
  EXPECT_FALSE(Get(r, "deployment.environment.name").has_value());
  EXPECT_FALSE(Get(r, "service.instance.id").has_value());
}

TEST(ResourceTest, ResourceAttributesArePercentDecoded) {
  ResourceEnv env(" team = payments%2Ceu , note=a%3Db%20c ,k8s.pod.name=pod%2d1, empty= ", nullptr);
  const Resource r = BuildResource("auth", "", "", "");
  EXPECT_EQ(Get(r, "team"), "payments,eu");
  EXPECT_EQ(Get(r, "note"), "a=b c");
  EXPECT_EQ(Get(r, "k8s.pod.name"), "pod-1");
  EXPECT_EQ(Get(r, "empty"), "");
}

TEST(ResourceTest, KeysArePercentDecodedToo) {
  ResourceEnv env("a%3Db=1", nullptr);
  EXPECT_EQ(Get(BuildResource("auth", "", "", ""), "a=b"), "1");
}

TEST(ResourceTest, ArgumentsWinOverResourceAttributes) {
  ResourceEnv env("service.name=from-env,service.version=9.9.9,deployment.environment.name=staging",
                  nullptr);
  const Resource r = BuildResource("auth", "0.3.0", "", "");
  EXPECT_EQ(Get(r, "service.name"), "auth");
  EXPECT_EQ(Get(r, "service.version"), "0.3.0");
  // No argument for it: the variable's value stays.
  EXPECT_EQ(Get(r, "deployment.environment.name"), "staging");
}

TEST(ResourceTest, ResourceAttributesFillAMissingServiceName) {
  ResourceEnv env("service.name=from-env", nullptr);
  EXPECT_EQ(Get(BuildResource("", "", "", ""), "service.name"), "from-env");
}

TEST(ResourceTest, OtelServiceNameWinsOverEverything) {
  ResourceEnv env("service.name=from-attributes", "from-variable");
  EXPECT_EQ(Get(BuildResource("auth", "", "", ""), "service.name"), "from-variable");
}

TEST(ResourceTest, SdkAttributesCannotBeOverridden) {
  ResourceEnv env("telemetry.sdk.name=other", nullptr);
  EXPECT_EQ(Get(BuildResource("auth", "", "", ""), "telemetry.sdk.name"), "vigil");
}

TEST(ResourceTest, LaterDuplicateInTheVariableWins) {
  ResourceEnv env("k=1,k=2", nullptr);
  EXPECT_EQ(Get(BuildResource("auth", "", "", ""), "k"), "2");
}

TEST(ResourceTest, MalformedResourceAttributesNameTheVariable) {
  for (const char* bad : {"novalue", "k=1,,k2=2", "k=1,", "=value", "k=%zz", "k=%4", "%g1=v"}) {
    ResourceEnv env(bad, nullptr);
    try {
      BuildResource("auth", "", "", "");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const EnvVarError& e) {
      EXPECT_EQ(e.variable(), "OTEL_RESOURCE_ATTRIBUTES") << bad;
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace vigil::telemetry

// Policies from configuration, where they apply, and whose address is the client's.
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <string>
#include <vigil/ratelimit/gcra.hpp>
#include <vigil/ratelimit/limiter.hpp>
#include <vigil/ratelimit/limits.hpp>

namespace rl = vigil::ratelimit;
namespace ip = boost::asio::ip;

namespace {

constexpr std::string_view kLimits = R"({
  "policies": [
    {"name": "login", "key": ["client_address"], "quota": 10, "window_s": 60, "burst": 5,
     "match": [{"prefix": "/api/auth/login/", "methods": ["post"]}]},
    {"name": "api", "key": ["client_address", "header:X-Api-Key"], "quota": 600,
     "window_s": 60, "cost": 2, "match": [{"prefix": "/api"}]},
    {"name": "by-account", "key": ["user"], "quota": 5, "window_s": 300, "replicas_note": 1}
  ]})";

TEST(LimitsTest, PoliciesAreReadWithTheirDefaults) {
  // The unknown key in the third policy is refused: no typo passes silently.
  try {
    rl::ParseLimits(kLimits, "limits.json");
    FAIL() << "an unknown key was accepted";
  } catch (const rl::LimitsError& e) {
    EXPECT_NE(std::string(e.what()).find("limits.json: rate_limits.policies[2]: unknown key "
                                         "\"replicas_note\""),
              std::string::npos)
        << e.what();
  }
  std::string text(kLimits);
  text.replace(text.find(", \"replicas_note\": 1"), 20, "");
  const rl::Limits limits = rl::ParseLimits(text, "limits.json");
  ASSERT_EQ(limits.policies.size(), 3U);
  const rl::Policy& login = limits.policies[0];
  EXPECT_EQ(login.name, "login");
  EXPECT_EQ(login.quota, 10);
  EXPECT_EQ(login.burst, 5);
  EXPECT_EQ(login.cost, 1);
  // The bucket as it is enforced: 5 at once, whole again in 30 s.
  EXPECT_EQ(login.policy_item, "\"login\";q=5;w=30");
  EXPECT_EQ(login.match[0].prefix, "/api/auth/login") << "a trailing slash is dropped";
  EXPECT_EQ(login.match[0].methods, std::vector<std::string>{"POST"});
  const rl::Policy& api = limits.policies[1];
  EXPECT_EQ(api.burst, 600) << "the burst defaults to the quota";
  EXPECT_EQ(api.cost, 2);
  ASSERT_EQ(api.key.size(), 2U);
  EXPECT_EQ(api.key[1].part, rl::KeyPart::kHeader);
  EXPECT_EQ(api.key[1].header, "X-Api-Key");
  EXPECT_TRUE(limits.policies[2].match.empty());
  EXPECT_EQ(limits.Find("by-account"), &limits.policies[2]);
  EXPECT_EQ(limits.Find("nope"), nullptr);
  EXPECT_EQ(limits.on_store_failure, rl::OnStoreFailure::kOpen);
}

TEST(LimitsTest, PoliciesApplyByPrefixOnWholeSegmentsAndByMethod) {
  const rl::Limits limits = rl::ParseLimits(
      R"({"policies": [{"name": "login", "key": ["client_address"], "quota": 1, "window_s": 1,
          "match": [{"prefix": "/api/auth/login", "methods": ["POST"]}, {"prefix": "/x//"}]}]})",
      "t");
  const rl::Policy& p = limits.policies[0];
  EXPECT_EQ(p.match[1].prefix, "/x") << "every trailing slash is dropped";
  EXPECT_TRUE(p.Applies("GET", "/x/y"));
  EXPECT_TRUE(p.Applies("POST", "/api/auth/login"));
  EXPECT_TRUE(p.Applies("POST", "/api/auth/login/again"));
  EXPECT_FALSE(p.Applies("POST", "/api/auth/loginx"));
  EXPECT_FALSE(p.Applies("GET", "/api/auth/login"));
  EXPECT_FALSE(p.Applies("HEAD", "/api/auth/login"));
  EXPECT_TRUE(p.Applies("DELETE", "/x"));
  EXPECT_FALSE(p.Applies("GET", "/"));
}

TEST(LimitsTest, ALimitOnGetHoldsForHead) {
  const rl::Limits limits = rl::ParseLimits(
      R"({"policies": [{"name": "reads", "key": ["route"], "quota": 1, "window_s": 1,
          "match": [{"prefix": "/items", "methods": ["GET"]}]}]})",
      "t");
  EXPECT_TRUE(limits.policies[0].Applies("GET", "/items"));
  EXPECT_TRUE(limits.policies[0].Applies("HEAD", "/items"));
  EXPECT_FALSE(limits.policies[0].Applies("POST", "/items"));
}

TEST(LimitsTest, AReplicaLimitingAloneStillAllowsARequestOfThePolicysCost) {
  // A burst of 2 divided by 3 replicas is below the cost of 2: each replica alone (the
  // store down, failing open) would refuse every request of the policy.
  const rl::Limits limits = rl::ParseLimits(
      R"({"replicas": 3, "policies": [{"name": "export", "key": ["client_address"],
          "quota": 100, "window_s": 3600, "burst": 2, "cost": 2}]})",
      "t");
  const rl::Policy& p = limits.policies[0];
  constexpr std::int64_t kNow = 1'700'000'000'000'000;
  EXPECT_TRUE(rl::Decide(kNow, 0, p.rate, p.cost).allowed);
  const rl::Decision alone = rl::Decide(kNow, 0, p.local_rate, p.cost);
  EXPECT_TRUE(alone.allowed) << "a full bucket refused the policy's own cost";
  EXPECT_FALSE(rl::Decide(kNow, alone.tat_us, p.local_rate, p.cost).allowed)
      << "the local bucket holds one such request, no more";
  // Where the division leaves room, it is what applies: 10 / 2 at a cost of 1.
  const rl::Limits halves = rl::ParseLimits(
      R"({"replicas": 2, "policies": [{"name": "api", "key": ["client_address"],
          "quota": 100, "window_s": 100, "burst": 10}]})",
      "t");
  EXPECT_EQ(halves.policies[0].local_rate.tolerance_us,
            5 * halves.policies[0].local_rate.interval_us);
}

TEST(LimitsTest, BadLimitsAreRefusedNamingTheEntry) {
  const struct {
    const char* json;
    const char* message;
  } cases[] = {
      {R"([])", "rate_limits: expected an object"},
      {R"({"policies": {}})", "\"policies\" must be an array"},
      {R"({"policies": [{"key": ["client_address"], "quota": 1, "window_s": 1}]})",
       "policies[0]: \"name\" is missing"},
      {R"({"policies": [{"name": "a b", "key": ["client_address"], "quota": 1, "window_s": 1}]})",
       "\"name\" must be"},
      {R"({"policies": [{"name": "a", "key": [], "quota": 1, "window_s": 1}]})",
       "\"key\" must name 1 to 4 parts"},
      {R"({"policies": [{"name": "a", "key": ["cookie"], "quota": 1, "window_s": 1}]})",
       "key part \"cookie\" is not one of"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 0, "window_s": 1}]})",
       "\"quota\" must be a whole number from 1"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 1.5, "window_s": 1}]})",
       "\"quota\" must be a whole number"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 5}]})",
       "\"quota\" and \"window_s\" are required"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 2000000, "window_s": 1}]})",
       "may not exceed one request per microsecond"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 1, "window_s": 2592000,
          "burst": 1000000000}]})",
       "must stay under ten years"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 5, "window_s": 1, "cost": 6}]})",
       "\"cost\" must be a whole number from 0 to 5"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 5, "window_s": 1,
          "match": [{"prefix": "api"}]}]})",
       "policies[0].match: \"prefix\" must start with '/'"},
      {R"({"policies": [{"name": "a", "key": ["user"], "quota": 1, "window_s": 1},
                        {"name": "a", "key": ["user"], "quota": 1, "window_s": 1}]})",
       "policies[1]: policy \"a\" is defined twice"},
      {R"({"trusted_proxies": ["10.0.0.0/33"]})",
       "trusted_proxies[0]: \"10.0.0.0/33\" has a bad prefix"},
      {R"({"trusted_proxies": ["gateway"]})", "\"gateway\" is not an address or network"},
      {R"({"on_store_failure": "maybe"})", "\"on_store_failure\" must be \"open\" or \"closed\""},
      {R"({"policies": [)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    try {
      rl::ParseLimits(c.json, "f.json");
      ADD_FAILURE() << "accepted: " << c.json;
    } catch (const rl::LimitsError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos)
          << c.json << "\n  -> " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("f.json: ", 0), 0U) << e.what();
    }
  }
}

TEST(LimitsTest, ForwardedForIsBelievedOnlyFromTrustedProxies) {
  const rl::Limits limits =
      rl::ParseLimits(R"({"trusted_proxies": ["10.0.0.0/8", "::1", "192.168.1.7"]})", "t");
  const auto client = [&](const char* peer, std::string_view xff) {
    return std::string(rl::ClientAddress(limits, ip::make_address(peer), peer, xff));
  };
  // An untrusted peer is the client, whatever it forwards.
  EXPECT_EQ(client("203.0.113.9", "1.2.3.4"), "203.0.113.9");
  EXPECT_EQ(client("192.168.1.8", "1.2.3.4"), "192.168.1.8");
  // A trusted proxy: the right-most address that is not a trusted proxy.
  EXPECT_EQ(client("10.1.2.3", "1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(client("10.1.2.3", "6.6.6.6, 1.2.3.4, 10.9.9.9"), "1.2.3.4")
      << "what the client itself wrote, left of its real address, is not believed";
  EXPECT_EQ(client("::1", " 2001:db8::1 "), "2001:db8::1");
  EXPECT_EQ(client("192.168.1.7", "1.2.3.4"), "1.2.3.4");
  // IPv4 peers seen as v4-mapped IPv6 are the same network.
  EXPECT_EQ(client("::ffff:10.0.0.1", "1.2.3.4"), "1.2.3.4");
  // Garbage stops the search at the last address believed.
  EXPECT_EQ(client("10.1.2.3", "1.2.3.4, junk"), "10.1.2.3");
  EXPECT_EQ(client("10.1.2.3", "junk, 10.2.2.2"), "10.2.2.2");
  EXPECT_EQ(client("10.1.2.3", ""), "10.1.2.3");
}

TEST(LimitsTest, KeysAreThePolicyAndItsPartsWithLongPartsDigested) {
  const rl::Limits limits = rl::ParseLimits(
      R"({"policies": [{"name": "p", "key": ["client_address", "header:K"], "quota": 1,
          "window_s": 1}]})",
      "t");
  std::string key;
  const std::string_view parts[] = {"1.2.3.4", "abc"};
  rl::AppendKey(limits.policies[0], parts, key);
  EXPECT_EQ(key,
            "p\x1f"
            "1.2.3.4\x1f"
            "abc");
  const std::string long_a(5000, 'a');
  std::string long_b = long_a;
  long_b.back() = 'b';
  std::string key_a;
  std::string key_b;
  const std::string_view parts_a[] = {"1.2.3.4", long_a};
  const std::string_view parts_b[] = {"1.2.3.4", long_b};
  rl::AppendKey(limits.policies[0], parts_a, key_a);
  rl::AppendKey(limits.policies[0], parts_b, key_b);
  EXPECT_LT(key_a.size(), 64U);
  EXPECT_NE(key_a, key_b);
}

}  // namespace

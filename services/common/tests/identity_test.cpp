#include <gtest/gtest.h>

#include <vigil/service/identity.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/testing/scoped_env.hpp>

namespace vigil::service {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

TEST(IdentityTest, ASignedSubjectVerifiesUntilItExpires) {
  IdentitySigner signer(kSecret, std::chrono::seconds(60));
  const std::string header = signer.Sign("user:0193a1c2", 1000);
  EXPECT_EQ(signer.Verify(header, 1000), "user:0193a1c2");
  EXPECT_EQ(signer.Verify(header, 1060), "user:0193a1c2");
  EXPECT_EQ(signer.Verify(header, 1061), std::nullopt);
}

TEST(IdentityTest, DerivedKeysDependOnTheSecretAndThePurpose) {
  const IdentitySigner a(std::string(40, 'a'));
  const IdentitySigner a_again(std::string(40, 'a'));
  const IdentitySigner b(std::string(40, 'b'));
  EXPECT_EQ(a.DeriveKey("signing keys"), a_again.DeriveKey("signing keys"));
  EXPECT_NE(a.DeriveKey("signing keys"), b.DeriveKey("signing keys"));
  EXPECT_NE(a.DeriveKey("signing keys"), a.DeriveKey("signing keys "));
  EXPECT_NE(a.DeriveKey("signing keys"), (std::array<unsigned char, 32>{}));
}

TEST(IdentityTest, SubjectsWithDotsRoundTrip) {
  IdentitySigner signer(kSecret);
  EXPECT_EQ(signer.Verify(signer.Sign("user:a.b.c", 5), 5), "user:a.b.c");
}

TEST(IdentityTest, AnyChangeOrAnotherSecretIsRefused) {
  IdentitySigner signer(kSecret);
  IdentitySigner other(std::string(kSecret.rbegin(), kSecret.rend()));
  const std::string header = signer.Sign("user:alice", 100);
  EXPECT_EQ(other.Verify(header, 100), std::nullopt);
  std::string changed_subject = header;
  changed_subject.replace(header.find("alice"), 5, "mally");
  EXPECT_EQ(signer.Verify(changed_subject, 100), std::nullopt);
  // A later expiry with the old MAC.
  std::string later = header;
  later.replace(header.find(".160."), 5, ".999.");
  EXPECT_EQ(signer.Verify(later, 100), std::nullopt);
  std::string flipped = header;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_EQ(signer.Verify(flipped, 100), std::nullopt);
}

TEST(IdentityTest, MalformedHeadersAreRefusedWithoutThrowing) {
  IdentitySigner signer(kSecret);
  for (std::string_view bad :
       {"", "v1", "v1.", "v1..", "v1...", "v2.user:a.100.00", "v1.user:a.notanumber.00",
        "v1.user:a.100", "v1..100.abcd", "user:a.100.abcd", "v1.user:a.-5.abcd"}) {
    EXPECT_EQ(signer.Verify(bad, 0), std::nullopt) << bad;
  }
  EXPECT_EQ(signer.Verify(std::string(10000, 'v'), 0), std::nullopt);
}

TEST(IdentityTest, ShortSecretsAreRejected) {
  EXPECT_THROW(IdentitySigner("short"), std::invalid_argument);
  EXPECT_THROW(IdentitySigner(kSecret, std::chrono::seconds(60), "short"), std::invalid_argument);
}

// While a deployment changes secrets, headers signed with the previous one still verify;
// new headers are signed with the current one only.
TEST(IdentityTest, ThePreviousSecretStillVerifiesButNeverSigns) {
  const std::string old_secret(40, 'o');
  const std::string new_secret(40, 'n');
  const IdentitySigner before(old_secret);
  const IdentitySigner during(new_secret, std::chrono::seconds(60), old_secret);
  const IdentitySigner after(new_secret);
  EXPECT_TRUE(during.has_previous_secret());
  EXPECT_FALSE(after.has_previous_secret());

  const std::string old_header = before.Sign("service:orders", 100);
  EXPECT_EQ(during.Verify(old_header, 100), "service:orders");
  EXPECT_EQ(after.Verify(old_header, 100), std::nullopt);

  const std::string new_header = during.Sign("service:orders", 100);
  EXPECT_EQ(after.Verify(new_header, 100), "service:orders");
  EXPECT_EQ(before.Verify(new_header, 100), std::nullopt);

  EXPECT_EQ(during.DeriveKey("k"), after.DeriveKey("k"));
  EXPECT_EQ(during.DerivePreviousKey("k"), before.DeriveKey("k"));
  EXPECT_EQ(after.DerivePreviousKey("k"), std::nullopt);
  // A previous secret equal to the current one is no previous secret.
  EXPECT_FALSE(
      IdentitySigner(new_secret, std::chrono::seconds(60), new_secret).has_previous_secret());
}

TEST(IdentityTest, SecretsFromTheEnvironment) {
  {
    test_support::ScopedEnv secret("VIGIL_INTERNAL_SECRET", std::string(40, 'n').c_str());
    test_support::ScopedEnv previous("VIGIL_INTERNAL_SECRET_PREVIOUS",
                                     std::string(40, 'o').c_str());
    const IdentitySigner signer = IdentitySigner::FromEnv();
    EXPECT_FALSE(signer.uses_development_secret());
    EXPECT_EQ(signer.DeriveKey("k"), IdentitySigner(std::string(40, 'n')).DeriveKey("k"));
    EXPECT_EQ(signer.DerivePreviousKey("k"), IdentitySigner(std::string(40, 'o')).DeriveKey("k"));
  }
  {
    test_support::ScopedEnv secret("VIGIL_INTERNAL_SECRET", std::string(40, 'n').c_str());
    test_support::ScopedEnv previous("VIGIL_INTERNAL_SECRET_PREVIOUS", "too-short");
    try {
      IdentitySigner::FromEnv();
      ADD_FAILURE() << "a short previous secret was accepted";
    } catch (const telemetry::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("VIGIL_INTERNAL_SECRET_PREVIOUS"), std::string::npos)
          << e.what();
    }
  }
  {
    test_support::ScopedEnv secret("VIGIL_INTERNAL_SECRET", nullptr);
    test_support::ScopedEnv previous("VIGIL_INTERNAL_SECRET_PREVIOUS", nullptr);
    const IdentitySigner signer = IdentitySigner::FromEnv();
    EXPECT_TRUE(signer.uses_development_secret());
    EXPECT_FALSE(signer.has_previous_secret());
  }
}

TEST(IdsTest, IdsAreValidDistinctAndOrderedByTime) {
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewId();
    EXPECT_TRUE(IsValidId(id)) << id;
    EXPECT_NE(id, previous);
    // The first 12 digits are the creation time: never decreasing.
    if (!previous.empty()) {
      EXPECT_GE(id.substr(0, 12), previous.substr(0, 12));
    }
    previous = id;
  }
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId(std::string(kIdLength, 'A')));
  EXPECT_FALSE(IsValidId(std::string(kIdLength + 1, '0')));
  EXPECT_FALSE(IsValidId("../" + std::string(kIdLength - 3, '0')));
}

}  // namespace
}  // namespace vigil::service

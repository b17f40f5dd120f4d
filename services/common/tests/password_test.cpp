#include "vigil/service/password.hpp"

#include <gtest/gtest.h>

namespace vigil::service {
namespace {

TEST(PasswordTest, HashUsesOwaspArgon2idParameters) {
  const std::string hash = HashPassword("correct horse battery staple");
  EXPECT_TRUE(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << hash;
  EXPECT_TRUE(VerifyPassword(hash, "correct horse battery staple"));
  EXPECT_FALSE(VerifyPassword(hash, "correct horse battery stapl"));
  EXPECT_FALSE(VerifyPassword(hash, ""));
  EXPECT_EQ(kPasswordParams.opslimit, 2u);
  EXPECT_EQ(kPasswordParams.memlimit_bytes, 19u * 1024 * 1024);
}

TEST(PasswordTest, SaltMakesEveryHashDifferent) {
  const PasswordParams cheap{1, 8 * 1024};
  const std::string a = HashPassword("same", cheap);
  const std::string b = HashPassword("same", cheap);
  EXPECT_NE(a, b);
  EXPECT_TRUE(a.starts_with("$argon2id$v=19$m=8,t=1,p=1$")) << a;
  EXPECT_TRUE(VerifyPassword(a, "same"));
  EXPECT_TRUE(VerifyPassword(b, "same"));
}

TEST(PasswordTest, PasswordsWithNulBytesAreHashedWhole) {
  const PasswordParams cheap{1, 8 * 1024};
  const std::string with_nul("ab\0cd", 5);
  const std::string hash = HashPassword(with_nul, cheap);
  EXPECT_TRUE(VerifyPassword(hash, with_nul));
  EXPECT_FALSE(VerifyPassword(hash, "ab"));
}

TEST(PasswordTest, MalformedHashesAreFalse) {
  const PasswordParams cheap{1, 8 * 1024};
  const std::string good = HashPassword("pw", cheap);
  for (const std::string& bad :
       {std::string(), std::string("pw"), std::string("$argon2id$"),
        std::string("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"),
        std::string("$2b$10$abcdefghijklmnopqrstuv"), good.substr(0, good.size() - 5),
        good + std::string(200, 'A'), std::string(good).insert(3, 1, '\0')}) {
    EXPECT_FALSE(VerifyPassword(bad, "pw")) << bad;
  }
}

TEST(PasswordTest, AHashAtOtherParametersNeedsARehash) {
  const PasswordParams cheap{1, 8 * 1024};
  const PasswordParams dearer{2, 16 * 1024};
  const std::string hash = HashPassword("pw", cheap);
  EXPECT_FALSE(PasswordNeedsRehash(hash, cheap));
  EXPECT_TRUE(PasswordNeedsRehash(hash, dearer));
  EXPECT_TRUE(PasswordNeedsRehash(hash, PasswordParams{1, 16 * 1024}));  // memory only
  EXPECT_TRUE(PasswordNeedsRehash(hash, PasswordParams{2, 8 * 1024}));   // iterations only
  // Unreadable hashes cannot be kept either (VerifyPassword refuses them anyway).
  EXPECT_TRUE(PasswordNeedsRehash("", cheap));
  EXPECT_TRUE(PasswordNeedsRehash("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", cheap));
  EXPECT_TRUE(PasswordNeedsRehash(std::string(hash).insert(3, 1, '\0'), cheap));
}

TEST(PasswordTest, DummyHashIsStableAndMatchesNothingGuessable) {
  const std::string& dummy = DummyPasswordHash();
  EXPECT_EQ(&dummy, &DummyPasswordHash());
  EXPECT_TRUE(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << dummy;
  EXPECT_FALSE(VerifyPassword(dummy, ""));
  EXPECT_FALSE(VerifyPassword(dummy, "password"));
}

}  // namespace
}  // namespace vigil::service

// Signing keys at rest: encrypted with a key derived from VIGIL_INTERNAL_SECRET and bound to
// their kid; rows from before encryption still read (and then sealed); a replica with
// another secret skips what it cannot decrypt and signs with a key of its own, unless it
// is given the old secret as VIGIL_INTERNAL_SECRET_PREVIOUS.
#include <vigil/service/base64url.hpp>
#include <vigil/testing/text.hpp>

#include "auth_fixture.hpp"

namespace vigil::auth {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the fixture's helpers

const storage::Statement kKeyRows{
    "SELECT kid, public_key, secret_key, created_at FROM signing_keys ORDER BY created_at, kid"};
const storage::Statement kInsertRow{
    "INSERT INTO signing_keys (kid, public_key, secret_key, created_at) VALUES ($1, $2, $3, $4)"};

struct KeyRow {
  std::string kid;
  std::string public_key;
  std::string secret_key;
  std::int64_t created_at;
};

std::vector<KeyRow> KeyRows(AuthServer& server) {
  return server.db().TransactBlocking({}, [](storage::Session& s) {
    std::vector<KeyRow> rows;
    for (const storage::Row& row : s.Query(kKeyRows).rows) {
      rows.push_back({std::string(row.Text(0)), std::string(row.Text(1)), std::string(row.Text(2)),
                      row.Int(3)});
    }
    return rows;
  });
}

void InsertRow(AuthServer& server, const KeyRow& row) {
  server.db().TransactBlocking({}, [&](storage::Session& s) {
    s.Query(kInsertRow, {row.kid, row.public_key, row.secret_key, row.created_at});
  });
}

std::string LoginKid(AuthServer& server) {
  const Response r = server.Post("/login", Credentials("judy@example.com", "correct horse"));
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  return KidOf(Field(JsonOf(r), "access_token"));
}

class SigningKeysAtRestTest : public ::testing::Test {
 protected:
  TestDatabase database_;
  std::atomic<std::int64_t> now_{kStart};
};

TEST_F(SigningKeysAtRestTest, ThePrivateKeyIsStoredEncrypted) {
  AuthServer server(database_, CheapOptions(now_));
  const auto rows = KeyRows(server);
  ASSERT_EQ(rows.size(), 1u);
  // "v1." + base64url of a 24-byte nonce, the 64-byte key and a 16-byte tag.
  EXPECT_TRUE(rows[0].secret_key.starts_with("v1.")) << rows[0].secret_key;
  EXPECT_EQ(rows[0].secret_key.size(), 3 + (24 + 64 + 16) * 4 / 3 + 1);
  // libsodium's secret key ends with the public key: a plain copy would show it.
  const auto stored = service::Base64UrlDecode(rows[0].secret_key.substr(3));
  const auto public_key = service::Base64UrlDecode(rows[0].public_key);
  ASSERT_TRUE(stored && public_key);
  EXPECT_EQ(stored->find(*public_key), std::string::npos);
}

TEST_F(SigningKeysAtRestTest, AReplicaWithAnotherSecretSignsWithItsOwnKey) {
  AuthServer first(database_, CheapOptions(now_));
  ASSERT_EQ(first.Post("/register", Credentials("judy@example.com", "correct horse")).result_int(),
            201u);
  const std::string first_kid = LoginKid(first);

  AuthServer other(database_, CheapOptions(now_), std::nullopt,
                   "another-secret-for-the-auth-tests-0123456789");
  const std::string other_kid = LoginKid(other);
  EXPECT_NE(other_kid, first_kid);
  EXPECT_TRUE(test_support::Has(other.Logs(), "does not decrypt")) << other.Logs();
  EXPECT_TRUE(test_support::Has(other.Logs(), first_kid));
  const Response jwks = other.Get("/.well-known/jwks.json");
  EXPECT_FALSE(test_support::Has(jwks.body(), first_kid)) << jwks.body();
  EXPECT_TRUE(test_support::Has(jwks.body(), other_kid)) << jwks.body();

  // The first replica still reads its own key and skips the one it cannot decrypt.
  EXPECT_EQ(LoginKid(first), first_kid);
}

TEST_F(SigningKeysAtRestTest, AKeyCopiedUnderAnotherKidDoesNotDecrypt) {
  AuthServer first(database_, CheapOptions(now_));
  ASSERT_EQ(first.Post("/register", Credentials("judy@example.com", "correct horse")).result_int(),
            201u);
  const std::string kid = LoginKid(first);
  KeyRow copy = KeyRows(first).front();
  copy.kid = "k-copied";
  copy.created_at += 1;  // newer: it would sign if it decrypted
  InsertRow(first, copy);

  AuthServer second(database_, CheapOptions(now_));
  EXPECT_EQ(LoginKid(second), kid);
  const std::string logs = second.Logs();
  EXPECT_TRUE(test_support::Has(logs, "does not decrypt") && test_support::Has(logs, "k-copied"))
      << logs;
}

TEST_F(SigningKeysAtRestTest, AKeyStoredBeforeEncryptionIsStillUsed) {
  AuthServer first(database_, CheapOptions(now_));
  ASSERT_EQ(first.Post("/register", Credentials("judy@example.com", "correct horse")).result_int(),
            201u);
  const service::SigningKey legacy = service::SigningKey::Generate("k-plain");
  InsertRow(first, {legacy.kid, service::Base64UrlEncode(legacy.public_key),
                    service::Base64UrlEncode(legacy.secret_key), kStart + 1});

  AuthServer second(database_, CheapOptions(now_));
  EXPECT_EQ(LoginKid(second), "k-plain");
  // Now sealed like the others, and still the same key.
  for (const KeyRow& row : KeyRows(second)) {
    EXPECT_TRUE(row.secret_key.starts_with("v1.")) << row.kid;
  }
  EXPECT_TRUE(test_support::Has(second.Logs(), "sealed under the current")) << second.Logs();
  AuthServer third(database_, CheapOptions(now_));
  EXPECT_EQ(LoginKid(third), "k-plain");
}

// Changing VIGIL_INTERNAL_SECRET with the old value as VIGIL_INTERNAL_SECRET_PREVIOUS: the
// key keeps signing (tokens issued before stay valid) and is sealed again under the new
// secret, so that the previous one can then be dropped.
TEST_F(SigningKeysAtRestTest, ThePreviousSecretKeepsTheKeyAndSealsItUnderTheNewOne) {
  const std::string new_secret = "the-new-secret-for-the-auth-tests-0123456789";
  AuthServer before(database_, CheapOptions(now_));
  ASSERT_EQ(before.Post("/register", Credentials("judy@example.com", "correct horse")).result_int(),
            201u);
  const std::string kid = LoginKid(before);
  const std::string sealed_before = KeyRows(before).front().secret_key;

  AuthServer during(database_, CheapOptions(now_), std::nullopt, new_secret, kSecret);
  EXPECT_EQ(LoginKid(during), kid);
  const std::string logs = during.Logs();
  EXPECT_FALSE(test_support::Has(logs, "does not decrypt")) << logs;
  EXPECT_TRUE(test_support::Has(logs, "sealed under the current") && test_support::Has(logs, kid))
      << logs;
  const auto rows = KeyRows(during);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].secret_key.starts_with("v1."));
  EXPECT_NE(rows[0].secret_key, sealed_before);

  AuthServer after(database_, CheapOptions(now_), std::nullopt, new_secret);
  EXPECT_EQ(LoginKid(after), kid);
  EXPECT_FALSE(test_support::Has(after.Logs(), "does not decrypt")) << after.Logs();
}

}  // namespace
}  // namespace vigil::auth

// The auth API end to end, in-process: real routes, real SQLite, a test clock.
#include <thread>
#include <vigil/testing/text.hpp>

#include "auth_fixture.hpp"

namespace vigil::auth::testing {
namespace {

namespace json = boost::json;

class AuthApiTest : public ::testing::Test {
 protected:
  AuthApiTest() : server_(database_, CheapOptions(now_)) {}

  // Registers and returns the new user's id.
  std::string Register(std::string_view email, std::string_view password = "correct horse") {
    const Response r = server_.Post("/register", Credentials(email, password));
    EXPECT_EQ(r.result_int(), 201u) << r.body();
    return Field(JsonOf(r), "id");
  }
  json::object Login(std::string_view email, std::string_view password = "correct horse") {
    const Response r = server_.Post("/login", Credentials(email, password));
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    return JsonOf(r);
  }
  service::KeySet Jwks() {
    const Response r = server_.Get("/.well-known/jwks.json");
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    std::string error;
    auto keys = service::KeySet::FromJwks(r.body(), &error);
    EXPECT_TRUE(keys) << error;
    return keys ? *keys : service::KeySet();
  }
  std::variant<service::Claims, service::JwtError> VerifyAccess(std::string_view token) {
    return service::VerifyJwt(token, Jwks(),
                              {.issuer = "vigil-auth", .audience = "vigil", .now = now_.load()});
  }

  TestDatabase database_;
  std::atomic<std::int64_t> now_{kStart};
  AuthServer server_;
};

TEST_F(AuthApiTest, RegisterLoginAndMe) {
  const Response registered =
      server_.Post("/register", Credentials("  Alice@Example.COM ", "correct horse"));
  ASSERT_EQ(registered.result_int(), 201u) << registered.body();
  const json::object user = JsonOf(registered);
  const std::string id = Field(user, "id");
  EXPECT_TRUE(service::IsValidId(id)) << id;
  EXPECT_EQ(Field(user, "email"), "alice@example.com");
  EXPECT_EQ(user.size(), 2u);

  const Response login = server_.Post("/login", Credentials("ALICE@example.com", "correct horse"));
  ASSERT_EQ(login.result_int(), 200u) << login.body();
  EXPECT_EQ(login[boost::beast::http::field::cache_control], "no-store");
  const json::object tokens = JsonOf(login);
  EXPECT_EQ(Field(tokens, "token_type"), "Bearer");
  EXPECT_EQ(tokens.at("expires_in").as_int64(), 900);
  EXPECT_EQ(Field(tokens, "refresh_token").size(), 43u);
  EXPECT_EQ(tokens.size(), 4u);

  // The access token verifies against the published keys and says who it is for.
  const auto verified = VerifyAccess(Field(tokens, "access_token"));
  ASSERT_TRUE(std::holds_alternative<service::Claims>(verified))
      << service::Describe(std::get<service::JwtError>(verified));
  const auto& claims = std::get<service::Claims>(verified);
  EXPECT_EQ(claims.subject, id);
  EXPECT_EQ(claims.issuer, "vigil-auth");
  EXPECT_EQ(claims.issued_at, kStart);
  EXPECT_EQ(claims.not_before, kStart);
  EXPECT_EQ(claims.expires_at, kStart + 900);
  EXPECT_FALSE(claims.jwt_id.empty());

  const std::string identity =
      "X-Vigil-Identity: " + server_.identity().Sign("user:" + id) + "\r\n";
  const Response me = server_.Get("/me", identity);
  ASSERT_EQ(me.result_int(), 200u) << me.body();
  EXPECT_EQ(JsonOf(me), (json::object{{"id", id}, {"email", "alice@example.com"}}));
}

TEST_F(AuthApiTest, MeNeedsAUserIdentity) {
  EXPECT_EQ(server_.Get("/me").result_int(), 401u);
  EXPECT_EQ(server_.Get("/me", "X-Vigil-Identity: v1.user:x.1.00\r\n").result_int(), 401u);
  const std::string service_identity =
      "X-Vigil-Identity: " + server_.identity().Sign("service:orders") + "\r\n";
  EXPECT_EQ(server_.Get("/me", service_identity).result_int(), 403u);
  // Signed by someone with another secret.
  const service::IdentitySigner stranger("another-secret-of-more-than-thirty-two-bytes");
  const std::string forged =
      "X-Vigil-Identity: " + stranger.Sign("user:" + service::NewId()) + "\r\n";
  EXPECT_EQ(server_.Get("/me", forged).result_int(), 401u);
  // A well-signed identity for a user that does not exist (any more).
  const std::string gone =
      "X-Vigil-Identity: " + server_.identity().Sign("user:" + service::NewId()) + "\r\n";
  const Response r = server_.Get("/me", gone);
  EXPECT_EQ(r.result_int(), 404u) << r.body();
  EXPECT_EQ(r[boost::beast::http::field::content_type], "application/problem+json");
}

TEST_F(AuthApiTest, RefreshRotatesAndReuseRevokesTheWholeFamily) {
  Register("bob@example.com");
  const std::string r1 = Field(Login("bob@example.com"), "refresh_token");
  const std::string other_session = Field(Login("bob@example.com"), "refresh_token");

  now_ += 10;
  const Response second = server_.Post("/refresh", RefreshBody(r1));
  ASSERT_EQ(second.result_int(), 200u) << second.body();
  const json::object tokens2 = JsonOf(second);
  const std::string r2 = Field(tokens2, "refresh_token");
  EXPECT_NE(r2, r1);
  EXPECT_EQ(second[boost::beast::http::field::cache_control], "no-store");
  const auto verified = VerifyAccess(Field(tokens2, "access_token"));
  ASSERT_TRUE(std::holds_alternative<service::Claims>(verified));
  EXPECT_EQ(std::get<service::Claims>(verified).issued_at, kStart + 10);

  const Response third = server_.Post("/refresh", RefreshBody(r2));
  ASSERT_EQ(third.result_int(), 200u) << third.body();
  const std::string r3 = Field(JsonOf(third), "refresh_token");

  // r1 comes back: someone kept a copy. The family dies, r3 included.
  const Response reuse = server_.Post("/refresh", RefreshBody(r1));
  EXPECT_EQ(reuse.result_int(), 401u) << reuse.body();
  EXPECT_EQ(server_.Post("/refresh", RefreshBody(r3)).result_int(), 401u);
  // Another login's family is untouched.
  EXPECT_EQ(server_.Post("/refresh", RefreshBody(other_session)).result_int(), 200u);

  const std::string logs = server_.Logs();
  EXPECT_NE(logs.find("\"msg\":\"refresh token reuse\""), std::string::npos) << logs;
  EXPECT_NE(logs.find("\"auth.family_id\":\""), std::string::npos) << logs;
  for (const std::string& secret : {r1, r2, r3, other_session, std::string("correct horse")}) {
    EXPECT_EQ(logs.find(secret), std::string::npos) << "a secret reached the logs";
  }
}

TEST_F(AuthApiTest, ConcurrentRefreshWithOneTokenLeavesNoWorkingToken) {
  Register("carol@example.com");
  const std::string token = Field(Login("carol@example.com"), "refresh_token");
  Response a;
  Response b;
  std::thread first([&] { a = server_.Post("/refresh", RefreshBody(token)); });
  std::thread second([&] { b = server_.Post("/refresh", RefreshBody(token)); });
  first.join();
  second.join();
  // The database serialises the two: one rotates, the other finds the token spent and
  // revokes the family, which kills the token the winner just received.
  ASSERT_EQ(a.result_int() + b.result_int(), 200u + 401u) << a.body() << b.body();
  const Response& winner = a.result_int() == 200u ? a : b;
  EXPECT_EQ(
      server_.Post("/refresh", RefreshBody(Field(JsonOf(winner), "refresh_token"))).result_int(),
      401u);
}

TEST_F(AuthApiTest, RefreshRejectsUnknownMalformedAndExpiredTokens) {
  Register("dave@example.com");
  const std::string token = Field(Login("dave@example.com"), "refresh_token");
  const Response unknown =
      server_.Post("/refresh", RefreshBody("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  EXPECT_EQ(unknown.result_int(), 401u);
  EXPECT_NE(unknown.body().find("invalid or expired refresh token"), std::string::npos);
  EXPECT_EQ(server_.Post("/refresh", RefreshBody("short")).result_int(), 401u);

  now_ += 2592000;  // the refresh TTL
  EXPECT_EQ(server_.Post("/refresh", RefreshBody(token)).result_int(), 401u);
}

TEST_F(AuthApiTest, LogoutRevokesTheFamily) {
  Register("erin@example.com");
  const std::string r1 = Field(Login("erin@example.com"), "refresh_token");
  const Response rotated = server_.Post("/refresh", RefreshBody(r1));
  ASSERT_EQ(rotated.result_int(), 200u);
  const std::string r2 = Field(JsonOf(rotated), "refresh_token");

  const Response out = server_.Post("/logout", RefreshBody(r1));  // any token of the family
  EXPECT_EQ(out.result_int(), 204u) << out.body();
  EXPECT_TRUE(out.body().empty());
  EXPECT_EQ(server_.Post("/refresh", RefreshBody(r2)).result_int(), 401u);

  // Unknown and malformed tokens log out "successfully" too.
  EXPECT_EQ(server_.Post("/logout", RefreshBody(r2)).result_int(), 204u);
  EXPECT_EQ(server_.Post("/logout", RefreshBody("not-a-token")).result_int(), 204u);
  EXPECT_EQ(server_.Post("/logout", "{}").result_int(), 422u);
}

// Strips what differs between any two responses (the request's ids).
json::object WithoutIds(json::object problem) {
  problem.erase("request_id");
  problem.erase("trace_id");
  return problem;
}

TEST_F(AuthApiTest, UnknownUserAndWrongPasswordLookTheSame) {
  Register("frank@example.com");
  const Response wrong = server_.Post("/login", Credentials("frank@example.com", "wrong password"));
  const Response unknown =
      server_.Post("/login", Credentials("nobody@example.com", "wrong password"));
  EXPECT_EQ(wrong.result_int(), 401u);
  EXPECT_EQ(unknown.result_int(), 401u);
  EXPECT_EQ(WithoutIds(JsonOf(wrong)), WithoutIds(JsonOf(unknown)));
  EXPECT_EQ(Field(JsonOf(wrong), "detail"), "invalid email or password");
  EXPECT_EQ(wrong[boost::beast::http::field::content_type],
            unknown[boost::beast::http::field::content_type]);

  Login("frank@example.com");
  const std::string metrics = server_.Metrics();
  EXPECT_NE(metrics.find("vigil_auth_logins_total{outcome=\"failure\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vigil_auth_logins_total{outcome=\"success\"} 1"), std::string::npos)
      << metrics;
  // One hash at registration, three verifications.
  EXPECT_NE(metrics.find("vigil_auth_password_hash_seconds_count 4"), std::string::npos) << metrics;
}

TEST_F(AuthApiTest, DuplicateEmailIsAConflict) {
  Register("grace@example.com");
  for (const char* email : {"grace@example.com", " GRACE@example.com"}) {
    const Response r = server_.Post("/register", Credentials(email, "another password"));
    EXPECT_EQ(r.result_int(), 409u) << email << " " << r.body();
    EXPECT_EQ(r[boost::beast::http::field::content_type], "application/problem+json");
  }
  // The first password still works: nothing was overwritten.
  Login("grace@example.com");
}

TEST_F(AuthApiTest, ValidationErrorsNameTheField) {
  struct Case {
    std::string body;
    unsigned status;
    std::string field;  // the detail starts with "<field>:"
  };
  const std::string long_password(1025, 'p');
  // 500 two-byte characters: within 1024 characters, beyond 1024 bytes.
  std::string wide_password;
  for (int i = 0; i < 600; ++i) wide_password += "\xC3\xA9";
  const Case cases[] = {
      {"{", 400, ""},
      {"[]", 400, ""},
      {R"({"email":"a@b.c"})", 422, "password"},
      {R"({"password":"long enough"})", 422, "email"},
      {R"({"email":7,"password":"long enough"})", 422, "email"},
      {R"({"email":"a@b.c","password":"short"})", 422, "password"},
      {Credentials("a@b.c", long_password), 422, "password"},
      {Credentials("a@b.c", wide_password), 422, "password"},
      {R"({"email":"a@b.c","password":"long enough","admin":true})", 422, "admin"},
      {Credentials("no-at-sign", "long enough"), 422, "email"},
      {Credentials("two@@example.com", "long enough"), 422, "email"},
      {Credentials("in side@example.com", "long enough"), 422, "email"},
      {Credentials("@example.com", "long enough"), 422, "email"},
      {Credentials(std::string(250, 'a') + "@b.cd", "long enough"), 422, "email"},
  };
  for (const Case& c : cases) {
    const Response r = server_.Post("/register", c.body);
    EXPECT_EQ(r.result_int(), c.status) << c.body << " -> " << r.body();
    EXPECT_EQ(r[boost::beast::http::field::content_type], "application/problem+json");
    if (!c.field.empty()) {
      EXPECT_EQ(Field(JsonOf(r), "detail").rfind(c.field + ":", 0), 0u) << r.body();
    }
  }
  const Response login = server_.Post("/login", R"({"email":"a@b.c","password":""})");
  EXPECT_EQ(login.result_int(), 422u);
  EXPECT_EQ(Field(JsonOf(login), "detail").rfind("password:", 0), 0u) << login.body();
  const Response refresh = server_.Post("/refresh", R"({"refresh_token":5})");
  EXPECT_EQ(refresh.result_int(), 422u);
  EXPECT_EQ(Field(JsonOf(refresh), "detail").rfind("refresh_token:", 0), 0u) << refresh.body();
  EXPECT_EQ(server_.Send("POST", "/login", "email=a", "").result_int(), 400u);
}

TEST(AuthReplicasTest, KeysRotateAndOldTokensStayVerifiable) {
  TestDatabase database;
  std::atomic<std::int64_t> now{kStart};
  AuthOptions options = CheapOptions(now);
  options.key_rotation = 60;
  options.access_ttl = 120;
  // Two replicas on one database, as two processes behind the gateway would be.
  AuthServer a(database, options);
  AuthServer b(database, options);
  auto jwks = [](AuthServer& server) {
    const Response r = server.Get("/.well-known/jwks.json");
    EXPECT_EQ(r.result_int(), 200u);
    EXPECT_EQ(r[boost::beast::http::field::cache_control], "public, max-age=60");
    auto keys = service::KeySet::FromJwks(r.body());
    EXPECT_TRUE(keys) << r.body();
    return keys ? *keys : service::KeySet();
  };
  auto verify = [&](const std::string& token, const service::KeySet& keys) {
    return service::VerifyJwt(token, keys,
                              {.issuer = "vigil-auth", .audience = "vigil", .now = now.load()});
  };
  auto login = [](AuthServer& server) {
    const Response r = server.Post("/login", Credentials("heidi@example.com", "correct horse"));
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    return Field(JsonOf(r), "access_token");
  };
  ASSERT_EQ(a.Post("/register", Credentials("heidi@example.com", "correct horse")).result_int(),
            201u);

  const std::string first = login(a);
  const std::string first_kid = KidOf(first);
  EXPECT_EQ(KidOf(login(b)), first_kid) << "replicas share the signing key";
  EXPECT_EQ(jwks(b).size(), 1u);

  now += 61;  // the first key is due: both replicas rotate to the same new key
  const std::string second = login(b);
  const std::string second_kid = KidOf(second);
  EXPECT_NE(second_kid, first_kid);
  EXPECT_EQ(KidOf(login(a)), second_kid);
  for (AuthServer* server : {&a, &b}) {
    const service::KeySet keys = jwks(*server);
    EXPECT_EQ(keys.size(), 2u);
    EXPECT_TRUE(std::holds_alternative<service::Claims>(verify(first, keys)));
    EXPECT_TRUE(std::holds_alternative<service::Claims>(verify(second, keys)));
  }

  // Past the first key's rotation + access TTL it is no longer published; its tokens
  // have expired by then anyway.
  now += 60;  // kStart + 121: the second key is due too
  EXPECT_NE(KidOf(login(a)), second_kid);
  now = kStart + 60 + 120 + 1;
  const service::KeySet late = jwks(b);
  EXPECT_EQ(late.Find(first_kid), nullptr);
  EXPECT_NE(late.Find(second_kid), nullptr);
  EXPECT_EQ(std::get<service::JwtError>(verify(first, late)), service::JwtError::kUnknownKey);
}

TEST(AuthReplicasTest, ALoginMovesTheHashToTheCurrentCostOnce) {
  TestDatabase database;
  std::atomic<std::int64_t> now{kStart};
  AuthOptions old_cost = CheapOptions(now);  // m=8 KiB, t=1
  AuthOptions new_cost = CheapOptions(now);
  new_cost.password.opslimit = 2;
  static const storage::Statement kHashOf{"SELECT password_hash FROM users WHERE email = $1"};
  auto stored_hash = [](AuthServer& server) {
    return server.db().TransactBlocking({}, [](storage::Session& s) {
      return std::string(s.Query(kHashOf, {std::string("ivan@example.com")}).FirstRow()->Text(0));
    });
  };
  auto rehashed = [](AuthServer& server) {
    return test_support::Has(server.Metrics(), "vigil_auth_password_rehashed_total 1\n");
  };

  AuthServer before(database, old_cost);
  ASSERT_EQ(before.Post("/register", Credentials("ivan@example.com", "correct horse")).result_int(),
            201u);
  const std::string old_hash = stored_hash(before);
  EXPECT_TRUE(old_hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$")) << old_hash;

  // A release with a higher cost: a wrong password changes nothing, the right one logs in
  // and leaves a hash at the new cost that still takes the same password.
  AuthServer after(database, new_cost);
  EXPECT_EQ(after.Post("/login", Credentials("ivan@example.com", "wrong horse")).result_int(),
            401u);
  EXPECT_EQ(stored_hash(after), old_hash);
  EXPECT_EQ(after.Post("/login", Credentials("ivan@example.com", "correct horse")).result_int(),
            200u);
  const std::string new_hash = stored_hash(after);
  EXPECT_TRUE(new_hash.starts_with("$argon2id$v=19$m=8,t=2,p=1$")) << new_hash;
  EXPECT_TRUE(rehashed(after)) << after.Metrics();
  EXPECT_TRUE(service::VerifyPassword(new_hash, "correct horse"));

  // At the current cost already: the next login leaves it alone.
  EXPECT_EQ(after.Post("/login", Credentials("ivan@example.com", "correct horse")).result_int(),
            200u);
  EXPECT_EQ(stored_hash(after), new_hash);
  EXPECT_TRUE(rehashed(after)) << "still one rehash";
}

TEST(AuthHelpersTest, EmailNormalisationAndValidation) {
  EXPECT_EQ(NormalizeEmail("  Alice@Example.COM\t"), "alice@example.com");
  EXPECT_EQ(NormalizeEmail("\xC3\x89lise@example.com"), "\xC3\x89lise@example.com");
  EXPECT_TRUE(IsValidEmail("a@b"));
  EXPECT_TRUE(IsValidEmail("first.last+tag@sub.example.org"));
  EXPECT_FALSE(IsValidEmail(""));
  EXPECT_FALSE(IsValidEmail("a@"));
  EXPECT_FALSE(IsValidEmail("@b"));
  EXPECT_FALSE(IsValidEmail("a@b@c"));
  EXPECT_FALSE(IsValidEmail("a b@c"));
  EXPECT_FALSE(IsValidEmail(std::string("a\0b@c", 5)));
  EXPECT_TRUE(IsValidEmail(std::string(64, 'a') + "@" + std::string(189, 'b')));   // 254
  EXPECT_FALSE(IsValidEmail(std::string(64, 'a') + "@" + std::string(190, 'b')));  // 255
}

TEST(AuthHelpersTest, RefreshTokensAreStoredAsSha256Hex) {
  EXPECT_EQ(RefreshTokenHash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthHelpersTest, OptionsFromEnvironment) {
  const AuthOptions defaults = AuthOptions::FromEnv();
  EXPECT_EQ(defaults.access_ttl, 900);
  EXPECT_EQ(defaults.refresh_ttl, 2592000);
  EXPECT_EQ(defaults.key_rotation, 86400);
  EXPECT_EQ(defaults.password.opslimit, 2u);
  EXPECT_EQ(defaults.password.memlimit_bytes, 19u * 1024 * 1024);
  ::setenv("VIGIL_AUTH_KEY_ROTATION", "10", 1);
  ::setenv("VIGIL_AUTH_ACCESS_TTL", "300", 1);
  const AuthOptions custom = AuthOptions::FromEnv();
  EXPECT_EQ(custom.key_rotation, 10);
  EXPECT_EQ(custom.access_ttl, 300);
  ::setenv("VIGIL_AUTH_REFRESH_TTL", "soon", 1);
  try {
    (void)AuthOptions::FromEnv();
    ADD_FAILURE() << "a bad VIGIL_AUTH_REFRESH_TTL was accepted";
  } catch (const telemetry::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("VIGIL_AUTH_REFRESH_TTL"), std::string::npos) << e.what();
  }
  ::unsetenv("VIGIL_AUTH_KEY_ROTATION");
  ::unsetenv("VIGIL_AUTH_ACCESS_TTL");
  ::unsetenv("VIGIL_AUTH_REFRESH_TTL");
}

}  // namespace
}  // namespace vigil::auth::testing

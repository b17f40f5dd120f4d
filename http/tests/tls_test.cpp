// HTTPS: the TLS options read from the environment, a TLS server end to end against an
// OpenSSL client in the same process (versions, ALPN, the chain, session resumption,
// reloads, what a failed handshake counts), and the plain-HTTP redirect routes.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <fstream>
#include <string>
#include <vector>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/testing/certificates.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/scoped_env.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::http {
namespace {

namespace ssl = asio::ssl;
using asio::ip::tcp;
using test_support::CertificateAuthority;
using test_support::ClientResponse;
using test_support::Eventually;
using test_support::RawClient;
using test_support::RunningServer;
using test_support::ScopedEnv;
using test_support::TempDir;
using test_support::TestTelemetry;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// The variable a ConfigError from ServerOptions::FromEnv names, and its message; fails the
// test when nothing is thrown.
std::pair<std::string, std::string> FromEnvError() {
  try {
    ServerOptions::FromEnv(8443);
  } catch (const telemetry::ConfigError& e) {
    return {e.variable(), e.what()};
  }
  ADD_FAILURE() << "ServerOptions::FromEnv accepted the environment";
  return {};
}

class TlsOptionsTest : public ::testing::Test {
 protected:
  TempDir dir_{"tls-options"};
  CertificateAuthority ca_;
  std::pair<std::string, std::string> a_ = ca_.Issue("server-a", 0xA).Write(dir_, "a");
  std::pair<std::string, std::string> b_ = ca_.Issue("server-b", 0xB).Write(dir_, "b");
  ScopedEnv cert_{"VIGIL_TLS_CERT_FILE", nullptr};
  ScopedEnv key_{"VIGIL_TLS_KEY_FILE", nullptr};
  ScopedEnv redirect_{"VIGIL_TLS_REDIRECT_PORT", nullptr};
  ScopedEnv port_{"VIGIL_PORT", nullptr};
};

TEST_F(TlsOptionsTest, OffWithoutTheVariables) {
  const ServerOptions options = ServerOptions::FromEnv(8443);
  EXPECT_FALSE(options.tls.enabled());
  EXPECT_EQ(options.tls.redirect_port, 0);
}

TEST_F(TlsOptionsTest, ReadsBothFilesAndTheRedirectPort) {
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", a_.second.c_str());
  ScopedEnv redirect("VIGIL_TLS_REDIRECT_PORT", "8080");
  const ServerOptions options = ServerOptions::FromEnv(8443);
  EXPECT_TRUE(options.tls.enabled());
  EXPECT_EQ(options.tls.cert_file, a_.first);
  EXPECT_EQ(options.tls.key_file, a_.second);
  EXPECT_EQ(options.tls.redirect_port, 8080);
}

TEST_F(TlsOptionsTest, OneFileWithoutTheOtherNamesTheMissingVariable) {
  {
    ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
    EXPECT_EQ(FromEnvError().first, "VIGIL_TLS_KEY_FILE");
  }
  ScopedEnv key("VIGIL_TLS_KEY_FILE", a_.second.c_str());
  EXPECT_EQ(FromEnvError().first, "VIGIL_TLS_CERT_FILE");
}

TEST_F(TlsOptionsTest, AMissingFileIsNamedWithItsVariable) {
  const std::string missing = dir_.File("missing.crt");
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", missing.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", a_.second.c_str());
  const auto [variable, message] = FromEnvError();
  EXPECT_EQ(variable, "VIGIL_TLS_CERT_FILE");
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST_F(TlsOptionsTest, ADirectoryIsNotAKeyFile) {
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", dir_.path().c_str());
  const auto [variable, message] = FromEnvError();
  EXPECT_EQ(variable, "VIGIL_TLS_KEY_FILE");
  EXPECT_NE(message.find("cannot be read"), std::string::npos) << message;
}

TEST_F(TlsOptionsTest, AFileWithoutPemIsRefused) {
  const std::string garbage = dir_.File("garbage.crt");
  WriteText(garbage, "not a certificate\n");
  {
    ScopedEnv cert("VIGIL_TLS_CERT_FILE", garbage.c_str());
    ScopedEnv key("VIGIL_TLS_KEY_FILE", a_.second.c_str());
    const auto [variable, message] = FromEnvError();
    EXPECT_EQ(variable, "VIGIL_TLS_CERT_FILE");
    EXPECT_NE(message.find("no PEM certificate"), std::string::npos) << message;
  }
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", garbage.c_str());
  EXPECT_EQ(FromEnvError().first, "VIGIL_TLS_KEY_FILE");
}

TEST_F(TlsOptionsTest, ABrokenIntermediateIsRefused) {
  const std::string broken = dir_.File("broken.crt");
  WriteText(broken, test_support::ReadFile(a_.first) +
                        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", broken.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", a_.second.c_str());
  const auto [variable, message] = FromEnvError();
  EXPECT_EQ(variable, "VIGIL_TLS_CERT_FILE");
  EXPECT_NE(message.find("after the first"), std::string::npos) << message;
}

TEST_F(TlsOptionsTest, TheKeyOfAnotherCertificateIsRefused) {
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", b_.second.c_str());
  const auto [variable, message] = FromEnvError();
  EXPECT_EQ(variable, "VIGIL_TLS_KEY_FILE");
  EXPECT_NE(message.find("does not match the certificate in \"" + a_.first + "\""),
            std::string::npos)
      << message;
}

TEST_F(TlsOptionsTest, AnEncryptedKeyIsRefusedWithoutAPrompt) {
  const std::string encrypted = dir_.File("encrypted.key");
  WriteText(encrypted, test_support::EncryptedKey(test_support::ReadFile(a_.second), "secret"));
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", encrypted.c_str());
  const auto [variable, message] = FromEnvError();
  EXPECT_EQ(variable, "VIGIL_TLS_KEY_FILE");
  EXPECT_NE(message.find("unencrypted"), std::string::npos) << message;
}

TEST_F(TlsOptionsTest, TheRedirectPortNeedsTlsAndItsOwnPort) {
  {
    ScopedEnv redirect("VIGIL_TLS_REDIRECT_PORT", "8080");
    EXPECT_EQ(FromEnvError().first, "VIGIL_TLS_REDIRECT_PORT");
  }
  ScopedEnv cert("VIGIL_TLS_CERT_FILE", a_.first.c_str());
  ScopedEnv key("VIGIL_TLS_KEY_FILE", a_.second.c_str());
  ScopedEnv redirect("VIGIL_TLS_REDIRECT_PORT", "8443");
  EXPECT_EQ(FromEnvError().first, "VIGIL_TLS_REDIRECT_PORT");
}

// ---------------------------------------------------------------------------- the server

struct ClientOptions {
  std::string trusted_pem;  // verify the server against this root (empty: no verification)
  std::vector<std::string> alpn;
  int max_version = 0;  // 0: the highest
  SSL_SESSION* resume = nullptr;
};

// A blocking TLS client on 127.0.0.1, named "localhost" for verification.
class TlsClient {
 public:
  TlsClient(std::uint16_t port, const ClientOptions& options)
      : context_(Context(options)), stream_(io_, context_) {
    if (!options.alpn.empty()) {
      std::string wire;
      for (const auto& protocol : options.alpn) {
        wire.push_back(static_cast<char>(protocol.size()));
        wire += protocol;
      }
      SSL_set_alpn_protos(stream_.native_handle(),
                          reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned>(wire.size()));
    }
    SSL_set1_host(stream_.native_handle(), "localhost");
    if (options.resume != nullptr) SSL_set_session(stream_.native_handle(), options.resume);
    stream_.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  }

  // The SSL object copies the context's settings when it is made: set them first.
  static ssl::context Context(const ClientOptions& options) {
    ssl::context context(ssl::context::tls_client);
    SSL_CTX* ctx = context.native_handle();
    SSL_CTX_set_min_proto_version(ctx, options.max_version != 0 ? TLS1_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, options.max_version);
    // Lets the client offer the old versions the server must refuse.
    if (options.max_version != 0 && options.max_version < TLS1_2_VERSION) {
      SSL_CTX_set_security_level(ctx, 0);
      SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    }
    if (!options.trusted_pem.empty()) {
      context.add_certificate_authority(asio::buffer(options.trusted_pem));
      context.set_verify_mode(ssl::verify_peer);
    }
    return context;
  }

  boost::system::error_code Handshake() {
    boost::system::error_code ec;
    stream_.handshake(ssl::stream_base::client, ec);
    return ec;
  }

  ClientResponse RoundTrip(std::string_view request) {
    asio::write(stream_, asio::buffer(request));
    ClientResponse res;
    beast::http::read(stream_, buffer_, res);
    return res;
  }

  // How the stream ends once the server is done: eof after close_notify,
  // ssl::error::stream_truncated without it.
  boost::system::error_code ReadToEnd() {
    char byte;
    boost::system::error_code ec;
    while (!ec) stream_.read_some(asio::buffer(&byte, 1), ec);
    return ec;
  }

  // Sends close_notify: a client forgets a session whose connection it ends without it.
  void Shutdown() {
    boost::system::error_code ignored;
    stream_.shutdown(ignored);
  }

  std::string PeerSubject() {
    X509* peer = SSL_get0_peer_certificate(stream_.native_handle());
    if (peer == nullptr) return {};
    char text[256] = {};
    X509_NAME_oneline(X509_get_subject_name(peer), text, sizeof text);
    return text;
  }

  std::string Alpn() {
    const unsigned char* data = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(stream_.native_handle(), &data, &size);
    return std::string(reinterpret_cast<const char*>(data), size);
  }

  std::string Version() { return SSL_get_version(stream_.native_handle()); }
  bool Resumed() { return SSL_session_reused(stream_.native_handle()) == 1; }
  // The session to resume later (the caller frees it with SSL_SESSION_free).
  SSL_SESSION* Session() { return SSL_get1_session(stream_.native_handle()); }

 private:
  asio::io_context io_;
  ssl::context context_;
  ssl::stream<tcp::socket> stream_;
  beast::flat_buffer buffer_;
};

constexpr std::string_view kGet = "GET /scheme HTTP/1.1\r\nHost: localhost\r\n\r\n";
constexpr std::string_view kGetAndClose =
    "GET /scheme HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

Routes SchemeRoutes() {
  Routes routes;
  routes.Add("GET", "/scheme", [](Exchange& ex) -> asio::awaitable<void> {
    ex.Respond(200, ex.secure() ? "https" : "http", "text/plain");
    co_return;
  });
  return routes;
}

class TlsServerTest : public ::testing::Test {
 protected:
  ServerOptions Options() {
    ServerOptions options;
    options.tls.cert_file = cert_;
    options.tls.key_file = key_;
    return options;
  }
  ClientOptions Trusting() {
    ClientOptions options;
    options.trusted_pem = ca_.root_pem();
    return options;
  }
  std::string Failures(std::string_view reason) {
    return "vigil_http_tls_handshake_failures_total{reason=\"" + std::string(reason) + "\"} ";
  }
  bool Counted(std::string_view reason, int count) {
    return Eventually([&] {
      return test_support::Has(telemetry_.Metrics(), Failures(reason) + std::to_string(count));
    });
  }

  TempDir dir_{"tls-server"};
  CertificateAuthority ca_;
  TestTelemetry telemetry_;
  std::string cert_ = dir_.File("server.crt");
  std::string key_ = dir_.File("server.key");
  void Install(const test_support::IssuedCertificate& issued) {
    WriteText(cert_, issued.chain_pem);
    WriteText(key_, issued.key_pem);
  }
};

TEST_F(TlsServerTest, ServesHttpsWithItsChainAndAlpn) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options(), 1, &*telemetry_);
  EXPECT_TRUE(server.server().secure());
  ClientOptions options = Trusting();
  options.alpn = {"h2", "http/1.1"};
  TlsClient client(server.port(), options);
  // Verified against the root: the server sent the intermediate after its certificate.
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(client.Alpn(), "http/1.1");
  EXPECT_EQ(client.Version(), "TLSv1.3");
  const ClientResponse res = client.RoundTrip(kGet);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "https");
  // Keep-alive: a second request on the same session.
  EXPECT_EQ(client.RoundTrip(kGet).body(), "https");
  EXPECT_TRUE(test_support::Has(telemetry_.Logs(), "\"msg\":\"TLS certificate loaded\""));
  EXPECT_TRUE(
      test_support::Has(telemetry_.Metrics(), "vigil_http_tls_certificate_expiry_timestamp"));
}

TEST_F(TlsServerTest, ServesTls12AndAClientWithoutAlpn) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options());
  ClientOptions options = Trusting();
  options.max_version = TLS1_2_VERSION;
  TlsClient client(server.port(), options);
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(client.Version(), "TLSv1.2");
  EXPECT_EQ(client.Alpn(), "");
  EXPECT_EQ(client.RoundTrip(kGet).body(), "https");
}

// The reason of the alert that ended a handshake the server refused (SSL_R_TLSV1_ALERT_*),
// as the client saw it: the server's refusal, not a failure of the client's own making.
int RefusalAlert(std::uint16_t port, const ClientOptions& options) {
  TlsClient client(port, options);
  const auto ec = client.Handshake();
  EXPECT_TRUE(ec) << "the handshake succeeded";
  return ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
}

TEST_F(TlsServerTest, RefusesTls11AndTls10) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options(), 1, &*telemetry_);
  for (const int version : {TLS1_1_VERSION, TLS1_VERSION}) {
    ClientOptions options;
    options.max_version = version;
    EXPECT_EQ(RefusalAlert(server.port(), options), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  }
  EXPECT_TRUE(Counted("protocol_version", 2)) << telemetry_.Metrics();
}

TEST_F(TlsServerTest, RefusesAlpnWithoutHttp11) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options(), 1, &*telemetry_);
  ClientOptions options;
  options.alpn = {"h2"};
  EXPECT_EQ(RefusalAlert(server.port(), options), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
  EXPECT_TRUE(Counted("no_alpn_protocol", 1)) << telemetry_.Metrics();
}

TEST_F(TlsServerTest, PlainHttpOnTheTlsPortIsClosedAndCounted) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options(), 1, &*telemetry_);
  RawClient plain(server.port());
  plain.Send(kGet);
  EXPECT_TRUE(plain.ClosedByServerWithin(std::chrono::seconds(5)));
  EXPECT_TRUE(Counted("not_tls", 1)) << telemetry_.Metrics();
  // Others are served meanwhile.
  TlsClient client(server.port(), Trusting());
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(client.RoundTrip(kGet).body(), "https");
}

TEST_F(TlsServerTest, AClientThatNeverHandshakesIsCutAtTheHeaderTimeout) {
  Install(ca_.Issue("server-a", 0xA));
  ServerOptions options = Options();
  options.header_timeout = std::chrono::milliseconds(200);
  RunningServer server(SchemeRoutes(), Pipeline{}, options, 1, &*telemetry_);
  RawClient silent(server.port());
  RawClient partial(server.port());
  partial.Send(std::string_view("\x16\x03\x01\x02\x00", 5));  // a ClientHello's record header
  EXPECT_TRUE(silent.ClosedByServerWithin(std::chrono::seconds(5)));
  EXPECT_TRUE(partial.ClosedByServerWithin(std::chrono::seconds(5)));
  EXPECT_TRUE(Counted("timeout", 2)) << telemetry_.Metrics();
}

TEST_F(TlsServerTest, EndsTheStreamWithCloseNotify) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options());
  TlsClient client(server.port(), Trusting());
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(client.RoundTrip(kGetAndClose).body(), "https");
  EXPECT_EQ(client.ReadToEnd(), asio::error::eof);
}

TEST_F(TlsServerTest, ResumesSessions) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options());
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    ClientOptions options = Trusting();
    options.max_version = version;
    SSL_SESSION* session = nullptr;
    {
      TlsClient first(server.port(), options);
      ASSERT_FALSE(first.Handshake());
      EXPECT_FALSE(first.Resumed());
      // Reading to the end takes in TLS 1.3's tickets, which follow the handshake.
      first.RoundTrip(kGetAndClose);
      first.ReadToEnd();
      first.Shutdown();
      session = first.Session();
    }
    ASSERT_NE(session, nullptr);
    options.resume = session;
    TlsClient second(server.port(), options);
    ASSERT_FALSE(second.Handshake());
    EXPECT_TRUE(second.Resumed()) << "version " << version;
    EXPECT_EQ(second.RoundTrip(kGet).body(), "https");
    SSL_SESSION_free(session);
  }
}

TEST_F(TlsServerTest, AReloadServesNewConnectionsTheNewCertificate) {
  Install(ca_.Issue("server-a", 0xA));
  RunningServer server(SchemeRoutes(), Pipeline{}, Options(), 1, &*telemetry_);
  TlsClient before(server.port(), Trusting());
  ASSERT_FALSE(before.Handshake());
  EXPECT_EQ(before.PeerSubject(), "/CN=server-a");

  Install(ca_.Issue("server-b", 0xB));
  EXPECT_TRUE(server.server().ReloadTls());
  TlsClient after(server.port(), Trusting());
  ASSERT_FALSE(after.Handshake());
  EXPECT_EQ(after.PeerSubject(), "/CN=server-b");
  // The connection made before keeps its session and is still served.
  EXPECT_EQ(before.RoundTrip(kGet).body(), "https");
  EXPECT_EQ(after.RoundTrip(kGet).body(), "https");

  // Files that cannot be used change nothing.
  WriteText(cert_, "garbage\n");
  EXPECT_FALSE(server.server().ReloadTls());
  Install(ca_.Issue("server-c", 0xC));
  WriteText(key_, ca_.Issue("server-d", 0xD).key_pem);
  EXPECT_FALSE(server.server().ReloadTls());
  TlsClient later(server.port(), Trusting());
  ASSERT_FALSE(later.Handshake());
  EXPECT_EQ(later.PeerSubject(), "/CN=server-b");
  const std::string logs = telemetry_.Logs();
  EXPECT_TRUE(test_support::Has(logs, "\"msg\":\"TLS certificate reloaded\""));
  EXPECT_TRUE(test_support::Has(
      logs,
      "\"level\":\"warn\",\"msg\":\"TLS certificate not reloaded: keeping the running one\""));
}

// RFC 6797 section 7.2: the security headers' Strict-Transport-Security over TLS only, even
// where a handler sets it itself.
TEST_F(TlsServerTest, StrictTransportSecurityGoesOverTlsOnly) {
  Install(ca_.Issue("server-a", 0xA));
  const auto routes = [] {
    Routes r = SchemeRoutes();
    r.Add("GET", "/own", [](Exchange& ex) -> asio::awaitable<void> {
      ex.response().set(beast::http::field::strict_transport_security, "max-age=1");
      ex.Respond(200, "own", "text/plain");
      co_return;
    });
    return r;
  };
  const auto pipeline = [] {
    Pipeline p;
    p.Add<SecurityHeadersMiddleware>(SecurityHeadersOptions{.replace = true});
    return p;
  };
  constexpr std::string_view kHsts = "max-age=63072000; includeSubDomains";
  RunningServer https(routes(), pipeline(), Options());
  TlsClient client(https.port(), Trusting());
  ASSERT_FALSE(client.Handshake());
  ClientResponse res = client.RoundTrip(kGet);
  EXPECT_EQ(res.body(), "https");
  EXPECT_EQ(res[beast::http::field::strict_transport_security], kHsts);
  res = client.RoundTrip("GET /own HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(res[beast::http::field::strict_transport_security], kHsts);

  RunningServer plain(routes(), pipeline());
  for (const std::string_view target : {"/scheme", "/own", "/nowhere"}) {
    res = plain.RoundTrip("GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    EXPECT_EQ(res.count(beast::http::field::strict_transport_security), 0u) << target;
    EXPECT_EQ(res["X-Content-Type-Options"], "nosniff") << target;
  }
}

TEST(PlainServer, IsNotSecureAndReloadsNothing) {
  RunningServer server(SchemeRoutes(), Pipeline{});
  EXPECT_FALSE(server.server().secure());
  EXPECT_TRUE(server.server().ReloadTls());
  EXPECT_EQ(server.RoundTrip(kGet).body(), "http");
}

// ---------------------------------------------------------------------------- redirect

class RedirectTest : public ::testing::Test {
 protected:
  RunningServer https_{Routes{}, Pipeline{}};
  RunningServer redirect_{RedirectToHttps(https_.server()), Pipeline{}};
  std::string To(std::string_view rest) {
    return "https://" + std::string(rest) + ":" + std::to_string(https_.port());
  }
};

TEST_F(RedirectTest, SendsEveryRequestToTheSameTargetOnHttps) {
  auto res = redirect_.RoundTrip("GET /a/b?c=1&d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  EXPECT_EQ(res.result_int(), 308u);
  EXPECT_EQ(res[beast::http::field::location], To("example.com") + "/a/b?c=1&d");
  res = redirect_.RoundTrip("DELETE / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
  EXPECT_EQ(res.result_int(), 308u);
  EXPECT_EQ(res[beast::http::field::location], To("[::1]") + "/");
  // The absolute form is redirected by its path.
  res = redirect_.RoundTrip("GET http://shop.example/x HTTP/1.1\r\nHost: shop.example\r\n\r\n");
  EXPECT_EQ(res[beast::http::field::location], To("shop.example") + "/x");
}

TEST_F(RedirectTest, ABodyIsNotReadAndTheConnectionCloses) {
  RawClient client(redirect_.port());
  const ClientResponse res = client.RoundTrip(
      "POST /orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000000\r\n\r\nabc");
  EXPECT_EQ(res.result_int(), 308u);
  EXPECT_EQ(res[beast::http::field::location], To("localhost") + "/orders");
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(RedirectTest, RefusesAHostThatIsNotAPlainName) {
  for (const std::string_view host : {"evil.example/x", "a@b", "[zz]", "[::1]x", ":80"}) {
    const auto res =
        redirect_.RoundTrip("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n");
    EXPECT_EQ(res.result_int(), 400u) << host;
  }
  EXPECT_EQ(redirect_.RoundTrip("GET / HTTP/1.0\r\n\r\n").result_int(), 400u);
}

}  // namespace
}  // namespace vigil::http

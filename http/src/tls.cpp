#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl/error.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#include <vigil/http/openssl.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::http {

namespace ssl = asio::ssl;
using boost::system::error_code;

namespace internal {

namespace {

constexpr const char* kCertVariable = "VIGIL_TLS_CERT_FILE";
constexpr const char* kKeyVariable = "VIGIL_TLS_KEY_FILE";

// Mozilla's "intermediate" TLS 1.2 suites, in its order (TLS 1.3 keeps OpenSSL's own).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:prime256v1:secp384r1";
// Mozilla's intermediate session lifetime.
constexpr long kSessionTimeoutSeconds = 24 * 3600;
// Sessions kept (each TLS 1.3 handshake leaves two, one per ticket); the oldest go first,
// so a client making handshakes in a loop costs others their resumption, not memory.
constexpr long kSessionCacheSize = 20 * 1024;
constexpr unsigned char kSessionIdContext[] = "vigil-http";

using openssl::Bio;
using openssl::Certificate;
using openssl::Key;

std::string Quoted(const std::string& path) { return "\"" + path + "\""; }

// The most recent OpenSSL error of this thread as text, the queue cleared.
std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "unknown error";
}

std::string ReadWhole(const char* variable, const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    throw telemetry::ConfigError(variable, Quoted(path) + " cannot be read: " +
                                               (error != 0 ? std::strerror(error) : "unknown"));
  }
  std::string text;
  try {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception&) {
    in.setstate(std::ios::badbit);
  }
  // A directory opens but cannot be read.
  if (in.bad()) throw telemetry::ConfigError(variable, Quoted(path) + " cannot be read");
  return text;
}

// Never prompts for a passphrase (OpenSSL's default would read the terminal).
int NoPassphrase(char*, int, int, void*) { return 0; }

Bio MemoryBio(const std::string& text) {
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) throw std::bad_alloc();
  return bio;
}

// The certificate and its chain from `options.cert_file`, and the key, into `ctx`.
void UseCertificateAndKey(SSL_CTX* ctx, const TlsOptions& options) {
  const std::string chain_pem = ReadWhole(kCertVariable, options.cert_file);
  const std::string key_pem = ReadWhole(kKeyVariable, options.key_file);
  ERR_clear_error();

  Bio chain_bio = MemoryBio(chain_pem);
  Certificate leaf(PEM_read_bio_X509_AUX(chain_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!leaf) {
    ERR_clear_error();
    throw telemetry::ConfigError(kCertVariable,
                                 Quoted(options.cert_file) + " holds no PEM certificate");
  }
  std::vector<Certificate> intermediates;
  while (X509* next = PEM_read_bio_X509(chain_bio.get(), nullptr, NoPassphrase, nullptr)) {
    intermediates.emplace_back(next);
  }
  // The loop ends at the end of the text (no further PEM block) or at a broken block.
  const unsigned long end = ERR_peek_last_error();
  if (ERR_GET_LIB(end) != ERR_LIB_PEM || ERR_GET_REASON(end) != PEM_R_NO_START_LINE) {
    throw telemetry::ConfigError(kCertVariable, Quoted(options.cert_file) +
                                                    " has a malformed certificate after the "
                                                    "first: " +
                                                    OpenSslReason());
  }
  ERR_clear_error();

  Bio key_bio = MemoryBio(key_pem);
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    ERR_clear_error();
    throw telemetry::ConfigError(
        kKeyVariable, Quoted(options.key_file) + " holds no unencrypted PEM private key");
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    throw telemetry::ConfigError(kKeyVariable, Quoted(options.key_file) +
                                                   " does not match the certificate in " +
                                                   Quoted(options.cert_file));
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    throw telemetry::ConfigError(
        kCertVariable,
        Quoted(options.cert_file) + ": the certificate is refused: " + OpenSslReason());
  }
  for (Certificate& c : intermediates) {
    // add0: the context takes the reference over.
    if (SSL_CTX_add0_chain_cert(ctx, c.get()) != 1) {
      throw telemetry::ConfigError(
          kCertVariable,
          Quoted(options.cert_file) + ": an intermediate is refused: " + OpenSslReason());
    }
    c.release();
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    throw telemetry::ConfigError(
        kKeyVariable, Quoted(options.key_file) + ": the key is refused: " + OpenSslReason());
  }
}

// ALPN: http/1.1 when the client offers it; a fatal no_application_protocol alert when
// it offers only others (RFC 7301 section 3.2).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
               unsigned int in_length, void*) {
  static constexpr std::string_view kHttp11 = "http/1.1";
  for (unsigned int i = 0; i < in_length;) {
    const unsigned int length = in[i];
    if (length == 0 || i + 1 + length > in_length) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), length) == kHttp11) {
      *out = in + i + 1;
      *out_length = static_cast<unsigned char>(length);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + length;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

std::shared_ptr<ssl::context> LoadTlsContext(const TlsOptions& options) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_default_passwd_cb(ctx, NoPassphrase);
  const bool configured =
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
      SSL_CTX_set_max_proto_version(ctx, 0) == 1 &&
      SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) == 1 &&
      SSL_CTX_set1_groups_list(ctx, kGroups) == 1 && SSL_CTX_set_dh_auto(ctx, 1) == 1 &&
      SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1) == 1;
  if (!configured) {
    throw std::runtime_error("this OpenSSL cannot be configured for TLS: " + OpenSslReason());
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_timeout(ctx, kSessionTimeoutSeconds);
  SSL_CTX_sess_set_cache_size(ctx, kSessionCacheSize);
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  UseCertificateAndKey(ctx, options);
  return context;
}

}  // namespace internal

// ---------------------------------------------------------------------------- Server::Tls

namespace {

std::string SubjectOf(X509* certificate) {
  std::string text;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253) >= 0) {
      char* data = nullptr;
      const long size = BIO_get_mem_data(bio, &data);
      if (size > 0) text.assign(data, static_cast<std::size_t>(size));
    }
    BIO_free(bio);
  }
  return text;
}

std::string SerialOf(X509* certificate) {
  std::string text;
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      text = hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  return text;
}

// Seconds since the epoch of the certificate's notAfter; 0 when unreadable.
std::int64_t NotAfterOf(X509* certificate) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string Iso8601(std::int64_t seconds) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  char text[32] = {};
  if (gmtime_r(&t, &tm) == nullptr) return {};
  return std::string(text, std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm));
}

}  // namespace

Server::Tls::Tls(TlsOptions options)
    : options_(std::move(options)), context_(internal::LoadTlsContext(options_)) {}

Server::Tls::~Tls() = default;

void Server::Tls::Instrument(telemetry::Telemetry& telemetry) {
  telemetry::Registry& metrics = telemetry.metrics();
  auto& failures = metrics.CounterFamily(
      "vigil_http_tls_handshake_failures_total",
      "TLS handshakes that did not complete, by reason (timeout, closed, not_tls, "
      "protocol_version, no_shared_cipher, no_alpn_protocol, certificate_rejected, other).",
      {"reason"});
  for (std::size_t i = 0; i < kFailureNames.size(); ++i) {
    failures_[i] = &failures.WithLabels({kFailureNames[i]});
  }
  expiry_ = &metrics.AddGauge("vigil_http_tls_certificate_expiry_timestamp_seconds",
                              "When the certificate the server presents expires (notAfter), "
                              "in seconds since the epoch.");
  log_ = &telemetry.log();
  Report("TLS certificate loaded");
}

void Server::Tls::Report(std::string_view what) {
  const std::shared_ptr<ssl::context> context = current();
  X509* leaf = SSL_CTX_get0_certificate(context->native_handle());
  if (leaf == nullptr) return;
  const std::int64_t not_after = NotAfterOf(leaf);
  if (expiry_ != nullptr) expiry_->Set(static_cast<double>(not_after));
  if (log_ == nullptr) return;
  const std::string subject = SubjectOf(leaf);
  const std::string serial = SerialOf(leaf);
  const std::string expires = Iso8601(not_after);
  log_->Info(what, {{"tls.server.subject", subject},
                    {"tls.server.serial", serial},
                    {"tls.server.not_after", expires},
                    {"file", options_.cert_file}});
  if (not_after < static_cast<std::int64_t>(std::time(nullptr))) {
    log_->Warn("the TLS certificate has expired: clients will refuse it",
               {{"tls.server.subject", subject}, {"tls.server.not_after", expires}});
  }
}

bool Server::Tls::Reload() {
  try {
    context_.store(internal::LoadTlsContext(options_), std::memory_order_release);
  } catch (const std::exception& e) {
    if (log_ != nullptr) {
      log_->Warn("TLS certificate not reloaded: keeping the running one", {{"error", e.what()}});
    }
    return false;
  }
  Report("TLS certificate reloaded");
  return true;
}

Server::Tls::Failure Server::Tls::Classify(const error_code& ec, bool timed_out) noexcept {
  if (timed_out) return Failure::kTimeout;
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::operation_aborted ||
      ec == ssl::error::stream_truncated) {
    return Failure::kClosed;
  }
  if (ec.category() != asio::error::get_ssl_category()) return Failure::kOther;
  const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
  switch (reason) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_LENGTH_TOO_SHORT:
    case SSL_R_BAD_RECORD_TYPE:
      return Failure::kNotTls;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
      return Failure::kProtocolVersion;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
      return Failure::kNoSharedCipher;
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return Failure::kNoAlpnProtocol;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return Failure::kCertificateRejected;
    default:
      return Failure::kOther;
  }
}

void Server::Tls::HandshakeFailed(const error_code& ec, bool timed_out,
                                  std::string_view peer_address) noexcept {
  const Failure failure = Classify(ec, timed_out);
  const auto index = static_cast<std::size_t>(failure);
  if (failures_[index] != nullptr) failures_[index]->Inc();
  if (log_ == nullptr || !log_->Enabled(telemetry::LogLevel::kDebug)) return;
  try {
    const std::string message = ec.message();
    log_->Debug("TLS handshake failed", {{"error.type", kFailureNames[index]},
                                         {"client.address", peer_address},
                                         {"error", message}});
  } catch (...) {
    // A log line is not worth failing the connection's coroutine for.
  }
}

}  // namespace vigil::http

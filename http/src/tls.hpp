// A server's TLS: the OpenSSL context its connections handshake with, reloadable, and
// the report of handshakes that fail.
//
// The context follows Mozilla's "intermediate" configuration: TLS 1.2 and 1.3 only; for
// TLS 1.2 the ECDHE/DHE AEAD suites (ffdhe2048 for DHE with an RSA key), for TLS 1.3
// OpenSSL's default suites; groups X25519, P-256, P-384; the client's cipher preference;
// no compression, no renegotiation. ALPN selects "http/1.1"; a client offering only other
// protocols is refused with no_application_protocol (RFC 7301 section 3.2), one offering
// none gets no ALPN. Sessions resume from a server-side cache (session ids for TLS 1.2,
// stateful tickets for TLS 1.3), so no ticket key lives longer than the context, and a
// reload starts a new cache.
//
// Reload builds a whole new context and swaps it in: connections accepted afterwards use
// it, each open connection keeps the one it started with (it holds a reference).
//
// Thread-safety: current() and Reload() may be called from any thread; Instrument()
// before serving.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <string_view>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/metrics.hpp>

namespace vigil::http {

namespace internal {

// A server connection's TLS stream over the connection's own socket.
using TlsStream = asio::ssl::stream<asio::ip::tcp::socket&>;

// A context configured as the file comment says, presenting `options`' certificate.
// Throws telemetry::ConfigError naming VIGIL_TLS_CERT_FILE or VIGIL_TLS_KEY_FILE and the
// file: unreadable, no PEM certificate or key in it, a certificate OpenSSL refuses (a key
// too small), a key that does not match the certificate. An encrypted key is refused,
// never prompted for.
std::shared_ptr<asio::ssl::context> LoadTlsContext(const TlsOptions& options);

}  // namespace internal

class Server::Tls {
 public:
  // Why a handshake failed: the `reason` label of vigil_http_tls_handshake_failures_total.
  enum class Failure {
    kTimeout,              // no handshake within the header timeout
    kClosed,               // the client closed or reset the connection midway
    kNotTls,               // the bytes are not TLS (plain HTTP to the TLS port, garbage)
    kProtocolVersion,      // the client offers only versions below TLS 1.2
    kNoSharedCipher,       // no cipher suite or group in common
    kNoAlpnProtocol,       // ALPN without http/1.1
    kCertificateRejected,  // the client refused our certificate (an alert: unknown CA...)
    kOther,
  };
  static constexpr std::array<std::string_view, 8> kFailureNames{"timeout",
                                                                 "closed",
                                                                 "not_tls",
                                                                 "protocol_version",
                                                                 "no_shared_cipher",
                                                                 "no_alpn_protocol",
                                                                 "certificate_rejected",
                                                                 "other"};

  // Loads the files: throws as LoadTlsContext.
  explicit Tls(TlsOptions options);
  ~Tls();

  // The context new connections handshake with.
  std::shared_ptr<asio::ssl::context> current() const noexcept {
    return context_.load(std::memory_order_acquire);
  }

  void Instrument(telemetry::Telemetry& telemetry);
  bool Reload();

  // Counts a failed handshake and logs it at debug. `timed_out`: the connection's
  // deadline cut it. Never throws.
  void HandshakeFailed(const boost::system::error_code& ec, bool timed_out,
                       std::string_view peer_address) noexcept;
  static Failure Classify(const boost::system::error_code& ec, bool timed_out) noexcept;

 private:
  // Logs the certificate now in use and sets the expiry gauge.
  void Report(std::string_view what);

  TlsOptions options_;
  std::atomic<std::shared_ptr<asio::ssl::context>> context_;
  telemetry::Logger* log_ = nullptr;
  std::array<telemetry::Counter*, kFailureNames.size()> failures_{};
  telemetry::Gauge* expiry_ = nullptr;
};

}  // namespace vigil::http

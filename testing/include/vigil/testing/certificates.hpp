// Test support: X.509 certificates made on the spot with OpenSSL, written as PEM files, for
// TLS tests: a root authority, an intermediate it signed, and server certificates for
// localhost and 127.0.0.1 that the intermediate signs (or that sign themselves).
//
//   vigil::test_support::TempDir dir("tls");
//   vigil::test_support::CertificateAuthority ca;
//   auto server = ca.Issue("server-a", 1);             // leaf + intermediate, and its key
//   server.Write(dir, "a");                            // dir/a.crt, dir/a.key
//   ca.WriteRoot(dir.File("ca.crt"));                  // what a client trusts
//
// Keys are P-256 (fast to make); certificates are valid from a minute ago for a day.
//
// Thread-safety: none of its own; each object belongs to one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "vigil/testing/files.hpp"

namespace vigil::test_support {

// A certificate chain and its key, as PEM text.
struct IssuedCertificate {
  std::string chain_pem;  // the certificate, then the intermediates up to the root (excluded)
  std::string key_pem;    // the certificate's private key, unencrypted PKCS#8
  // Writes <name>.crt and <name>.key into `dir`; returns the two paths.
  std::pair<std::string, std::string> Write(const TempDir& dir, std::string_view name) const;
};

// A root and an intermediate authority, made when constructed. Throws std::runtime_error
// when OpenSSL fails.
class CertificateAuthority {
 public:
  CertificateAuthority();

  // A server certificate with subject CN=`common_name`, serial `serial` and the names
  // localhost and 127.0.0.1, signed by the intermediate; its chain holds both.
  IssuedCertificate Issue(std::string_view common_name, std::uint64_t serial) const;
  // The root's certificate (PEM), what a client verifying Issue()'s certificates trusts.
  const std::string& root_pem() const noexcept { return root_pem_; }

 private:
  std::string root_pem_;
  std::string intermediate_pem_;
  std::string intermediate_key_pem_;
};

// A certificate that signs itself, with the same names as CertificateAuthority::Issue.
IssuedCertificate SelfSigned(std::string_view common_name, std::uint64_t serial);

// `key_pem` (as IssuedCertificate::key_pem) encrypted with `passphrase` (AES-256-CBC).
std::string EncryptedKey(const std::string& key_pem, std::string_view passphrase);

}  // namespace vigil::test_support

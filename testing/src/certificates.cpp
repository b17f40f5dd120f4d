#include "vigil/testing/certificates.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <vigil/http/openssl.hpp>

namespace vigil::test_support {

namespace {

using http::openssl::Bio;
using http::openssl::Certificate;
using http::openssl::Key;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificates: ") + what + " failed");
}

Key NewKey() {
  Key key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

void AddExtension(X509* certificate, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(extension != nullptr, "X509V3_EXT_conf_nid");
  const int added = X509_add_ext(certificate, extension, -1);
  X509_EXTENSION_free(extension);
  Check(added == 1, "X509_add_ext");
}

// A certificate for `key` named CN=`common_name`, signed by `issuer_key` as `issuer`
// (itself when null).
Certificate Make(std::string_view common_name, std::uint64_t serial, EVP_PKEY* key, X509* issuer,
                 EVP_PKEY* issuer_key, bool authority) {
  Certificate certificate(X509_new());
  Check(certificate != nullptr, "X509_new");
  X509* c = certificate.get();
  Check(X509_set_version(c, X509_VERSION_3) == 1, "X509_set_version");
  Check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(c), serial) == 1, "serial");
  X509_gmtime_adj(X509_getm_notBefore(c), -60);
  X509_gmtime_adj(X509_getm_notAfter(c), 24 * 3600);
  Check(X509_set_pubkey(c, key) == 1, "X509_set_pubkey");
  const std::string cn(common_name);
  X509_NAME* name = X509_get_subject_name(c);
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) == 1,
        "subject");
  X509* signer = issuer != nullptr ? issuer : c;
  Check(X509_set_issuer_name(c, X509_get_subject_name(signer)) == 1, "issuer");
  if (authority) {
    AddExtension(c, signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(c, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(c, signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(c, signer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    AddExtension(c, signer, NID_ext_key_usage, "serverAuth");
  }
  Check(X509_sign(c, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return certificate;
}

std::string Text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string CertificatePem(X509* certificate) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(bio && PEM_write_bio_X509(bio.get(), certificate) == 1, "PEM_write_bio_X509");
  return Text(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return Text(bio.get());
}

Key ReadKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Check(bio != nullptr, "BIO_new_mem_buf");
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  Check(key != nullptr, "PEM_read_bio_PrivateKey");
  return key;
}

Certificate ReadCertificate(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Check(bio != nullptr, "BIO_new_mem_buf");
  Certificate certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  Check(certificate != nullptr, "PEM_read_bio_X509");
  return certificate;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

std::pair<std::string, std::string> IssuedCertificate::Write(const TempDir& dir,
                                                             std::string_view name) const {
  std::pair<std::string, std::string> paths{dir.File(std::string(name) + ".crt"),
                                            dir.File(std::string(name) + ".key")};
  WriteText(paths.first, chain_pem);
  WriteText(paths.second, key_pem);
  return paths;
}

CertificateAuthority::CertificateAuthority() {
  const Key root_key = NewKey();
  const Certificate root = Make("Vigil Test Root", 1, root_key.get(), nullptr, nullptr, true);
  const Key intermediate_key = NewKey();
  const Certificate intermediate =
      Make("Vigil Test Intermediate", 2, intermediate_key.get(), root.get(), root_key.get(), true);
  root_pem_ = CertificatePem(root.get());
  intermediate_pem_ = CertificatePem(intermediate.get());
  intermediate_key_pem_ = KeyPem(intermediate_key.get());
}

IssuedCertificate CertificateAuthority::Issue(std::string_view common_name,
                                              std::uint64_t serial) const {
  const Key issuer_key = ReadKey(intermediate_key_pem_);
  const Certificate issuer = ReadCertificate(intermediate_pem_);
  const Key key = NewKey();
  const Certificate leaf =
      Make(common_name, serial, key.get(), issuer.get(), issuer_key.get(), false);
  return {CertificatePem(leaf.get()) + intermediate_pem_, KeyPem(key.get())};
}

IssuedCertificate SelfSigned(std::string_view common_name, std::uint64_t serial) {
  const Key key = NewKey();
  const Certificate certificate = Make(common_name, serial, key.get(), nullptr, nullptr, false);
  return {CertificatePem(certificate.get()), KeyPem(key.get())};
}

std::string EncryptedKey(const std::string& key_pem, std::string_view passphrase) {
  const Key key = ReadKey(key_pem);
  Bio bio(BIO_new(BIO_s_mem()));
  const std::string secret(passphrase);
  Check(bio && PEM_write_bio_PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(),
                                        reinterpret_cast<const unsigned char*>(secret.data()),
                                        static_cast<int>(secret.size()), nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return Text(bio.get());
}

}  // namespace vigil::test_support

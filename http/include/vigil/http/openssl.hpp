// Owning pointers for the OpenSSL objects that certificates and keys are read into and
// written from: a BIO, an X509 certificate, an EVP_PKEY key, each freed with OpenSSL's own
// function. The TLS code reads the server's files with them; test support makes
// certificates with them. Code that includes this header links OpenSSL::Crypto.
//
//   http::openssl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
//   http::openssl::Certificate cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
//   if (cert == nullptr) { /* not a PEM certificate */ }
//
// Thread-safety: as std::unique_ptr; the objects are OpenSSL's.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

namespace vigil::http::openssl {

// Calls `Free` on the pointer a std::unique_ptr releases (never with null).
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* object) const noexcept {
    Free(object);
  }
};

using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;
using Certificate = std::unique_ptr<X509, Deleter<X509_free>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;

}  // namespace vigil::http::openssl

// The security headers every answer carries (the OWASP Secure Headers Project's set for
// APIs), errors and the runtime's own refusals (400, 404, 408, 413, 414, 431...) included:
//
//   Strict-Transport-Security     max-age=63072000; includeSubDomains (over TLS only)
//   Content-Security-Policy       default-src 'none'; frame-ancestors 'none'
//   X-Content-Type-Options        nosniff
//   X-Frame-Options               DENY
//   Referrer-Policy               no-referrer
//   Permissions-Policy            every powerful feature off
//   Cross-Origin-Opener-Policy    same-origin
//   Cross-Origin-Resource-Policy  same-origin
//   Cache-Control                 no-store, unless the answer has its own (a public
//                                 catalog read revalidated by ETag says no-cache)
//
// and never `Server` or `X-Powered-By`. Strict-Transport-Security goes only on answers
// over TLS (RFC 6797 section 7.2): a plain-HTTP answer has none, not even a handler's or
// an upstream's. Behind a proxy that terminates TLS (an ingress), that proxy sets it.
// A service's handler may set its own value of a field (a page's
// Content-Security-Policy) and it is kept; with `replace` (the gateway) the values
// already on a response, an upstream's, are replaced by these. The fields are laid out
// once, for TLS and for plain answers (field_block.hpp), and written with the head; the
// middleware only points the exchange at one of the two. A handler that needs other
// values for its route (the gateway's routes with their own page policy) points the
// exchange at another pair, a SecurityHeaderFields of its own.
//
//   pipeline.Add<http::SecurityHeadersMiddleware>(http::SecurityHeadersOptions{});
//
// Thread-safety: read-only after construction; safe from every worker.
#pragma once

#include <string>
#include <vigil/http/field_block.hpp>
#include <vigil/http/middleware.hpp>

namespace vigil::http {

// The values; an empty string leaves that field out.
struct SecurityHeadersOptions {
  std::string strict_transport_security = "max-age=63072000; includeSubDomains";
  std::string content_security_policy = "default-src 'none'; frame-ancestors 'none'";
  std::string permissions_policy =
      "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
      "magnetometer=(), microphone=(), midi=(), payment=(), usb=()";
  std::string referrer_policy = "no-referrer";
  std::string cross_origin_opener_policy = "same-origin";
  std::string cross_origin_resource_policy = "same-origin";
  // Only on answers without a Cache-Control of their own.
  std::string cache_control = "no-store";
  // The response's own values of the fields above (but Cache-Control) are replaced, not
  // kept.
  bool replace = false;
};

// The block of fields `options` describes, for an answer over TLS. Throws
// std::invalid_argument naming a field whose value has a control character.
FieldBlock SecurityHeaders(const SecurityHeadersOptions& options);

// The two blocks of `options`: SecurityHeaders(options) for answers over TLS, and for
// plain-HTTP answers the same without Strict-Transport-Security, which also removes a
// response's own (a handler's, an upstream's). Laid out once; choosing one is a branch.
class SecurityHeaderFields {
 public:
  // Throws what SecurityHeaders throws.
  explicit SecurityHeaderFields(const SecurityHeadersOptions& options);

  // The block for an answer over TLS (`secure`) or plain HTTP.
  const FieldBlock& For(bool secure) const noexcept { return secure ? tls_ : plain_; }
  // Points `exchange` at the block for its connection; this object must outlive it.
  void ApplyTo(Exchange& exchange) const noexcept {
    exchange.set_field_block(&For(exchange.secure()));
  }

 private:
  FieldBlock tls_;
  FieldBlock plain_;
};

class SecurityHeadersMiddleware final : public Middleware {
 public:
  // Throws what SecurityHeaders throws.
  explicit SecurityHeadersMiddleware(const SecurityHeadersOptions& options) : fields_(options) {}
  void Before(Exchange& exchange) override { fields_.ApplyTo(exchange); }
  void After(Exchange&) noexcept override {}

 private:
  SecurityHeaderFields fields_;
};

}  // namespace vigil::http

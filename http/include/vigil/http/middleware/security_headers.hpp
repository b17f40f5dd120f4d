// The security headers every answer carries (the OWASP Secure Headers Project's set for
// APIs), errors and the runtime's own refusals (400, 404, 408, 413, 414, 431...) included:
//
//   Strict-Transport-Security     max-age=63072000; includeSubDomains
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
// and never `Server` or `X-Powered-By`. A service's handler may set its own value of a
// field (a page's Content-Security-Policy) and it is kept; with `replace` (the gateway)
// the values already on a response, an upstream's, are replaced by these. The fields
// are laid out once (field_block.hpp) and written with the head; the middleware only
// points the exchange at them. A handler that needs other values for its route (the
// gateway's routes with their own page policy) points the exchange at another block
// built with SecurityHeaders().
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

// The block of fields `options` describes. Throws std::invalid_argument naming a field
// whose value has a control character.
FieldBlock SecurityHeaders(const SecurityHeadersOptions& options);

class SecurityHeadersMiddleware final : public Middleware {
 public:
  explicit SecurityHeadersMiddleware(const SecurityHeadersOptions& options)
      : block_(SecurityHeaders(options)) {}
  void Before(Exchange& exchange) override { exchange.set_field_block(&block_); }
  void After(Exchange&) noexcept override {}

 private:
  FieldBlock block_;
};

}  // namespace vigil::http

// Cross-origin requests from browsers (the Fetch standard's CORS protocol), answered where
// the policy lives: at the edge.
//
// Only origins on the list are allowed, compared exactly (scheme, host and port as the
// browser sends them, "https://shop.example.com"); there is no wildcard, so credentials
// may be allowed safely. For an allowed origin:
//   - a preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here,
//     204 with Access-Control-Allow-Origin, -Allow-Methods, -Allow-Headers, -Max-Age (and
//     -Allow-Credentials when allowed); it reaches no handler and no rate limit;
//   - any other request gets Access-Control-Allow-Origin, -Expose-Headers (the fields a
//     script needs: X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, ETag) and
//     -Allow-Credentials.
// A request from an origin not on the list gets no CORS field (the browser then keeps the
// answer from the script); its preflight, or a preflight asking for a method or header not
// allowed, is 403 problem+json. Every answer to a request carrying Origin says
// `Vary: Origin`, so a cache keeps answers for different origins apart.
//
//   pipeline.Add<http::CorsMiddleware>(options);   // before the rate limits
//
// Thread-safety: the options are read-only after construction; safe from every worker.
#pragma once

#include <chrono>
#include <string>
#include <vector>
#include <vigil/http/middleware.hpp>

namespace vigil::http {

struct CorsOptions {
  // Exact origins ("https://shop.example.com"); empty: no cross-origin request is allowed.
  std::vector<std::string> allowed_origins;
  std::vector<std::string> allowed_methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  // Request headers a script may send (compared case-insensitively).
  std::vector<std::string> allowed_headers = {"Authorization", "Content-Type", "Idempotency-Key",
                                              "X-Request-Id",  "traceparent",  "tracestate",
                                              "baggage"};
  std::vector<std::string> exposed_headers = {"X-Request-Id", "Retry-After", "RateLimit",
                                              "RateLimit-Policy", "ETag"};
  bool allow_credentials = true;
  std::chrono::seconds max_age{600};
};

class CorsMiddleware final : public Middleware {
 public:
  explicit CorsMiddleware(CorsOptions options);
  void Before(Exchange& exchange) override;
  void After(Exchange&) noexcept override {}

  // Whether `origin` is on the list (exact match).
  bool Allowed(std::string_view origin) const noexcept;

 private:
  CorsOptions options_;
  std::string methods_;  // the lists as field values, joined once
  std::string headers_;
  std::string exposed_;
  std::string max_age_;
};

}  // namespace vigil::http

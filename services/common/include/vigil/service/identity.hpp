// Who is calling, as the gateway (or a calling service) vouches for it.
//
// The gateway verifies a client's bearer token once and passes the caller on in the
// X-Vigil-Identity header, signed with a secret the platform's processes share:
//
//   X-Vigil-Identity: v1.<subject>.<expiry>.<hex HMAC-SHA256(secret, "v1.<subject>.<expiry>")>
//
// `subject` is "user:<id>" for an end user and "service:<name>" for a service calling
// another; `expiry` is a Unix time a minute ahead. A client cannot forge it without the
// secret, and the gateway drops whatever a client sent under that name. Services decide
// access from this header alone:
//
//   std::string user = service::RequireUser(ex, identity);          // 401 / 403
//   service::RequireService(ex, identity, "orders");                  // 401 / 403
//   request.set(service::kIdentityHeader, identity.Sign("service:orders"));
//
// Thread-safety: an IdentitySigner is immutable after construction; use it from any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::http {
class Exchange;
}

namespace vigil::service {

inline constexpr std::string_view kIdentityHeader = "X-Vigil-Identity";
// The client's address as the gateway saw it (after its trusted proxies), signed the same
// way with the subject "client:<address>", so that a service limits by an address no
// client can choose. The gateway drops whatever a client sent under this name.
inline constexpr std::string_view kClientHeader = "X-Vigil-Client";

class IdentitySigner {
 public:
  // `secret`: at least 32 bytes. `previous`: empty, or the secret a deployment is moving
  // away from (at least 32 bytes): headers signed with it still verify and keys derived
  // from it are available (DerivePreviousKey), so that processes can change secrets one
  // at a time. Everything new is signed with `secret`.
  explicit IdentitySigner(std::string secret,
                          std::chrono::seconds validity = std::chrono::seconds(60),
                          std::string previous = {});

  // VIGIL_INTERNAL_SECRET (at least 32 bytes) and the optional
  // VIGIL_INTERNAL_SECRET_PREVIOUS, each also from a file (VIGIL_INTERNAL_SECRET_FILE,
  // VIGIL_INTERNAL_SECRET_PREVIOUS_FILE). Unset: a fixed development secret, which
  // uses_development_secret() reports so that the service can warn. Throws
  // telemetry::ConfigError naming the variable when one is too short.
  static IdentitySigner FromEnv();
  bool uses_development_secret() const noexcept { return development_; }
  bool has_previous_secret() const noexcept { return !previous_.empty(); }

  // The header value vouching for `subject` until now + validity.
  std::string Sign(std::string_view subject) const;
  std::string Sign(std::string_view subject, std::int64_t now_unix) const;
  // A 32-byte key for `purpose`, derived from the shared secret (HMAC-SHA256 of a label
  // naming the purpose): for data that only the platform's processes may read, such as
  // auth's signing keys at rest. Different purposes give unrelated keys; a new secret gives
  // new keys.
  std::array<unsigned char, 32> DeriveKey(std::string_view purpose) const;
  // The same key derived from the previous secret, if there is one.
  std::optional<std::array<unsigned char, 32>> DerivePreviousKey(std::string_view purpose) const;

  // The subject, when `header` is well formed, signed with our secret (or the previous
  // one) and not expired.
  std::optional<std::string> Verify(std::string_view header) const;
  std::optional<std::string> Verify(std::string_view header, std::int64_t now_unix) const;

 private:
  std::string secret_;
  std::string previous_;
  std::chrono::seconds validity_;
  bool development_ = false;
};

// The calling user's id. Throws http::HttpError 401 when the request carries no valid
// identity, 403 when the caller is a service rather than a user.
std::string RequireUser(const http::Exchange& exchange, const IdentitySigner& identity);
// Throws http::HttpError 401 without a valid identity, 403 unless the caller is the
// service `name`.
void RequireService(const http::Exchange& exchange, const IdentitySigner& identity,
                    std::string_view name);

// The user an error report names (http::ErrorMiddleware's lookup, run only when a report
// is made): the id of a valid identity's "user:<id>" subject, empty for anything else.
// `identity` must outlive the function.
std::function<std::string(const http::Exchange&)> ErrorUser(const IdentitySigner& identity);

}  // namespace vigil::service

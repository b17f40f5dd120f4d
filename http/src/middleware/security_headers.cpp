#include <vigil/http/middleware/security_headers.hpp>

namespace vigil::http {

namespace {

// The block for answers over TLS (`tls`), or for plain ones: no Strict-Transport-Security
// there, whoever set it (RFC 6797 section 7.2).
FieldBlock Layout(const SecurityHeadersOptions& options, bool tls) {
  const FieldBlock::Existing policy = options.replace ? FieldBlock::kReplace : FieldBlock::kKeep;
  FieldBlock block;
  const auto set = [&block](std::string_view name, const std::string& value,
                            FieldBlock::Existing existing) {
    if (!value.empty()) block.Set(name, value, existing);
  };
  if (tls) set("Strict-Transport-Security", options.strict_transport_security, policy);
  set("Content-Security-Policy", options.content_security_policy, policy);
  block.Set("X-Content-Type-Options", "nosniff", policy);
  block.Set("X-Frame-Options", "DENY", policy);
  set("Referrer-Policy", options.referrer_policy, policy);
  set("Permissions-Policy", options.permissions_policy, policy);
  set("Cross-Origin-Opener-Policy", options.cross_origin_opener_policy, policy);
  set("Cross-Origin-Resource-Policy", options.cross_origin_resource_policy, policy);
  set("Cache-Control", options.cache_control, FieldBlock::kKeep);
  block.Remove("Server").Remove("X-Powered-By");
  if (!tls) block.Remove("Strict-Transport-Security");
  return block;
}

}  // namespace

FieldBlock SecurityHeaders(const SecurityHeadersOptions& options) { return Layout(options, true); }

SecurityHeaderFields::SecurityHeaderFields(const SecurityHeadersOptions& options)
    : tls_(Layout(options, true)), plain_(Layout(options, false)) {}

}  // namespace vigil::http

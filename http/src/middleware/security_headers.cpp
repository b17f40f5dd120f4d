#include <vigil/http/middleware/security_headers.hpp>

namespace vigil::http {

FieldBlock SecurityHeaders(const SecurityHeadersOptions& options) {
  const FieldBlock::Existing policy = options.replace ? FieldBlock::kReplace : FieldBlock::kKeep;
  FieldBlock block;
  const auto set = [&block](std::string_view name, const std::string& value,
                            FieldBlock::Existing existing) {
    if (!value.empty()) block.Set(name, value, existing);
  };
  set("Strict-Transport-Security", options.strict_transport_security, policy);
  set("Content-Security-Policy", options.content_security_policy, policy);
  block.Set("X-Content-Type-Options", "nosniff", policy);
  block.Set("X-Frame-Options", "DENY", policy);
  set("Referrer-Policy", options.referrer_policy, policy);
  set("Permissions-Policy", options.permissions_policy, policy);
  set("Cross-Origin-Opener-Policy", options.cross_origin_opener_policy, policy);
  set("Cross-Origin-Resource-Policy", options.cross_origin_resource_policy, policy);
  set("Cache-Control", options.cache_control, FieldBlock::kKeep);
  block.Remove("Server").Remove("X-Powered-By");
  return block;
}

}  // namespace vigil::http

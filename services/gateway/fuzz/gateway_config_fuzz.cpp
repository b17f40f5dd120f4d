// Fuzzes the gateway's configuration file (config.hpp): any bytes as the file's text for
// ParseGatewayConfig, with its routes, "rate_limits" (ratelimit/limits.hpp), "cors" and
// "security_headers".
//
// The parser either refuses the file with a GatewayConfigError naming it, or returns a
// configuration the gateway can serve: at least one route; prefixes that start with '/',
// end without one (except "/" itself), are unique, and make valid route templates as the
// proxy adds them ("<prefix>/*"); upstream hosts, authorities and paths, which go on the
// wire as Host and request targets, of visible ASCII only; timeouts and body limits in
// range; security headers that lay out as field values (the gateway's and each route's);
// no rate-limit policy keyed on the user; CORS origins of visible ASCII. Written back as
// a file, the routes read the same. Any other exception, crash or undefined
// behaviour is a bug.
#include <cstddef>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vigil/http/middleware/security_headers.hpp>
#include <vigil/http/router.hpp>

#include "config.hpp"

namespace gw = vigil::gateway;

namespace {

constexpr std::string_view kSource = "fuzz.json";

bool Visible(std::string_view s) {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7F) return false;
  }
  return true;
}

// `s` as a JSON string literal.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (b < 0x20) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::string Written(const std::vector<gw::RouteConfig>& routes) {
  std::string file = R"({"routes": [)";
  for (const gw::RouteConfig& r : routes) {
    if (&r != &routes.front()) file += ", ";
    file += "{\"prefix\": " + Quoted(r.prefix) +
            ", \"upstream\": " + Quoted("http://" + r.upstream.authority + r.upstream_path) +
            ", \"strip_prefix\": " + (r.strip_prefix ? "true" : "false") +
            ", \"timeout_ms\": " + std::to_string(r.timeout.count()) +
            ", \"max_body_bytes\": " + std::to_string(r.max_body_bytes) +
            ", \"content_security_policy\": " + Quoted(r.content_security_policy) +
            ", \"upstream_security_headers\": " + (r.upstream_security_headers ? "true" : "false") +
            "}";
  }
  return file + "]}";
}

// The block of security headers the gateway writes with every head: its values were
// checked when the file was read, so laying them out cannot fail.
void Headers(const vigil::http::SecurityHeadersOptions& options) {
  try {
    (void)vigil::http::SecurityHeaders(options);
  } catch (const std::invalid_argument&) {
    __builtin_trap();
  }
}

void Check(const gw::GatewayConfig& config) {
  if (config.routes.empty()) __builtin_trap();
  std::set<std::string> prefixes;
  vigil::http::Router router;
  for (const gw::RouteConfig& r : config.routes) {
    if (r.prefix.empty() || r.prefix.front() != '/' ||
        (r.prefix.size() > 1 && r.prefix.back() == '/') || !prefixes.insert(r.prefix).second) {
      __builtin_trap();
    }
    // What Proxy::AddRoutes makes of it when the gateway starts.
    try {
      router.Add("*", r.prefix == "/" ? "/*" : r.prefix + "/*");
    } catch (const std::invalid_argument&) {
      __builtin_trap();
    }
    if (r.upstream.host.empty() || r.upstream.port == 0 || !Visible(r.upstream.host) ||
        !Visible(r.upstream.authority) || !Visible(r.upstream_path)) {
      __builtin_trap();
    }
    if (!r.upstream_path.empty() &&
        (r.upstream_path.front() != '/' || r.upstream_path.back() == '/')) {
      __builtin_trap();
    }
    if (r.timeout.count() < 1 || r.timeout.count() > 3'600'000 ||
        r.max_body_bytes > (std::uint64_t{1} << 40)) {
      __builtin_trap();
    }
    // The route's own security headers, as the proxy lays them out.
    vigil::http::SecurityHeadersOptions own = config.security_headers;
    if (!r.content_security_policy.empty()) own.content_security_policy = r.content_security_policy;
    Headers(own);
  }
  Headers(config.security_headers);
  for (const vigil::ratelimit::Policy& p : config.limits.policies) {
    for (const vigil::ratelimit::KeyComponent& part : p.key) {
      if (part.part == vigil::ratelimit::KeyPart::kUser) __builtin_trap();
    }
  }
  for (const std::string& origin : config.cors.allowed_origins) {
    if (!Visible(origin)) __builtin_trap();
  }
  if (config.cors.max_age.count() < 0 || config.cors.max_age.count() > 86'400) __builtin_trap();
  gw::GatewayConfig again;
  try {
    again = gw::ParseGatewayConfig(Written(config.routes), kSource);
  } catch (const gw::GatewayConfigError&) {
    __builtin_trap();
  }
  if (again.routes != config.routes) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  gw::GatewayConfig config;
  try {
    config = gw::ParseGatewayConfig(text, kSource);
  } catch (const gw::GatewayConfigError& e) {
    if (!std::string_view(e.what()).starts_with(std::string(kSource) + ": ")) __builtin_trap();
    return 0;
  }
  Check(config);
  return 0;
}

#include "config.hpp"

#include <boost/asio/ip/address_v6.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <vigil/service/topology.hpp>

namespace vigil::gateway {

namespace json = boost::json;

namespace {

[[noreturn]] void Fail(std::string_view source, const std::string& where, const std::string& what) {
  throw GatewayConfigError(std::string(source) + ": " + where + (where.empty() ? "" : ": ") + what);
}

std::int64_t IntegerField(const json::object& o, std::string_view key, std::int64_t fallback,
                          std::int64_t min, std::int64_t max, std::string_view source,
                          const std::string& where) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (!v->is_int64() && !v->is_uint64()) {
    Fail(source, where, "\"" + std::string(key) + "\" must be a whole number");
  }
  const std::int64_t n = v->is_int64() ? v->as_int64() : static_cast<std::int64_t>(v->as_uint64());
  if (n < min || n > max || (v->is_uint64() && v->as_uint64() > static_cast<std::uint64_t>(max))) {
    Fail(source, where,
         "\"" + std::string(key) + "\" must be from " + std::to_string(min) + " to " +
             std::to_string(max));
  }
  return n;
}

// Whether `s` is visible ASCII without any of `refused`: a path that goes on the wire as
// it is (a route template matched against request targets, the start of an upstream's
// request target), where anything else is percent-encoded.
bool Literal(std::string_view s, std::string_view refused) {
  return std::none_of(s.begin(), s.end(), [refused](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b <= 0x20 || b >= 0x7F || refused.find(c) != std::string_view::npos;
  });
}

// An origin as a browser sends it in Origin (the URL standard's serialization): scheme
// "http" or "https"; the host in lower case, a name or IPv4 address, or an IPv6 address in
// brackets in its shortest form; a port only when it is not the scheme's default, without
// leading zeros; nothing else (no path, no trailing slash, no wildcard, no user). Origins
// are compared exactly, so any other spelling would never match a request.
bool IsOrigin(std::string_view origin) {
  std::string_view rest;
  std::string_view default_port;
  if (origin.starts_with("https://")) {
    rest = origin.substr(8);
    default_port = "443";
  } else if (origin.starts_with("http://")) {
    rest = origin.substr(7);
    default_port = "80";
  } else {
    return false;
  }
  std::size_t host_end = 0;
  if (rest.starts_with('[')) {
    host_end = rest.find(']');
    if (host_end == std::string_view::npos) return false;
    const std::string literal(rest.substr(1, host_end - 1));
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address_v6(literal, ec);
    if (ec || address.to_string() != literal) return false;
    ++host_end;
  } else {
    host_end = std::min(rest.find(':'), rest.size());
    if (host_end == 0 || host_end > 253 ||
        rest.substr(0, host_end).find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-._") !=
            std::string_view::npos) {
      return false;
    }
  }
  if (host_end == rest.size()) return true;
  const std::string_view port = rest.substr(host_end);
  return port.size() >= 2 && port.size() <= 6 && port[0] == ':' && port[1] != '0' &&
         port.find_first_not_of("0123456789", 1) == std::string_view::npos &&
         std::stoul(std::string(port.substr(1))) <= 65535 && port.substr(1) != default_port;
}

http::CorsOptions ParseCors(const json::value& value, std::string_view source) {
  const std::string where = "cors";
  if (!value.is_object()) Fail(source, where, "expected an object with \"allowed_origins\"");
  const json::object& o = value.as_object();
  for (const auto& kv : o) {
    if (kv.key() != "allowed_origins" && kv.key() != "allow_credentials" &&
        kv.key() != "max_age_s") {
      Fail(source, where, "unknown key \"" + std::string(kv.key()) + "\"");
    }
  }
  http::CorsOptions cors;
  const json::value* origins = o.if_contains("allowed_origins");
  if (origins == nullptr || !origins->is_array()) {
    Fail(source, where, "\"allowed_origins\" must be an array of origins");
  }
  for (const json::value& origin : origins->as_array()) {
    if (!origin.is_string() || !IsOrigin(origin.as_string())) {
      Fail(source, where,
           "each of \"allowed_origins\" must be an origin as a browser sends it, such as "
           "\"https://shop.example.com\" (http or https, the host in lower case, a port only "
           "when not the scheme's default; no path, no wildcard)");
    }
    cors.allowed_origins.emplace_back(origin.as_string());
  }
  if (const json::value* credentials = o.if_contains("allow_credentials")) {
    if (!credentials->is_bool()) Fail(source, where, "\"allow_credentials\" must be true or false");
    cors.allow_credentials = credentials->as_bool();
  }
  cors.max_age = std::chrono::seconds(IntegerField(o, "max_age_s", 600, 0, 86400, source, where));
  return cors;
}

// A string field of "security_headers" or a route that becomes a header value.
std::string HeaderValue(const json::value& v, std::string_view key, std::string_view source,
                        const std::string& where) {
  if (!v.is_string()) Fail(source, where, "\"" + std::string(key) + "\" must be a string");
  const std::string_view value = v.as_string();
  if (!http::IsFieldValue(value)) {
    Fail(source, where, "\"" + std::string(key) + "\" has a control character");
  }
  return std::string(value);
}

http::SecurityHeadersOptions ParseSecurityHeaders(const json::value& value,
                                                  std::string_view source) {
  const std::string where = "security_headers";
  if (!value.is_object()) Fail(source, where, "expected an object");
  http::SecurityHeadersOptions options{.replace = true};
  const std::pair<std::string_view, std::string*> fields[] = {
      {"strict_transport_security", &options.strict_transport_security},
      {"content_security_policy", &options.content_security_policy},
      {"permissions_policy", &options.permissions_policy},
      {"referrer_policy", &options.referrer_policy},
      {"cross_origin_opener_policy", &options.cross_origin_opener_policy},
      {"cross_origin_resource_policy", &options.cross_origin_resource_policy},
      {"cache_control", &options.cache_control},
  };
  for (const auto& kv : value.as_object()) {
    const auto* field = std::find_if(std::begin(fields), std::end(fields),
                                     [&kv](const auto& f) { return f.first == kv.key(); });
    if (field == std::end(fields)) {
      Fail(source, where, "unknown key \"" + std::string(kv.key()) + "\"");
    }
    *field->second = HeaderValue(kv.value(), field->first, source, where);
  }
  return options;
}

}  // namespace

GatewayConfig ParseGatewayConfig(std::string_view text, std::string_view source) {
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) Fail(source, "", "not valid JSON (" + ec.message() + ")");
  if (!root.is_object()) Fail(source, "", "expected an object with \"routes\"");
  for (const auto& kv : root.as_object()) {
    if (kv.key() != "routes" && kv.key() != "rate_limits" && kv.key() != "cors" &&
        kv.key() != "security_headers") {
      Fail(source, "", "unknown key \"" + std::string(kv.key()) + "\"");
    }
  }
  const json::value* routes = root.as_object().if_contains("routes");
  if (routes == nullptr || !routes->is_array()) Fail(source, "", "\"routes\" must be an array");

  GatewayConfig config;
  std::set<std::string> prefixes;
  std::size_t index = 0;
  for (const json::value& entry : routes->as_array()) {
    const std::string where = "routes[" + std::to_string(index++) + "]";
    if (!entry.is_object()) Fail(source, where, "expected an object");
    const json::object& o = entry.as_object();
    for (const auto& kv : o) {
      static const std::set<std::string, std::less<>> kKnown = {"prefix",
                                                                "upstream",
                                                                "strip_prefix",
                                                                "timeout_ms",
                                                                "max_body_bytes",
                                                                "content_security_policy",
                                                                "upstream_security_headers"};
      if (!kKnown.contains(std::string_view(kv.key()))) {
        Fail(source, where, "unknown key \"" + std::string(kv.key()) + "\"");
      }
    }
    RouteConfig r;
    const json::value* prefix = o.if_contains("prefix");
    if (prefix == nullptr || !prefix->is_string()) Fail(source, where, "\"prefix\" must be a string");
    r.prefix = std::string(prefix->as_string());
    if (r.prefix.empty() || r.prefix.front() != '/') {
      Fail(source, where, "\"prefix\" must start with '/'");
    }
    while (r.prefix.size() > 1 && r.prefix.back() == '/') r.prefix.pop_back();
    if (!Literal(r.prefix, "{}*?#")) {
      Fail(source, where,
           "\"prefix\" must be a literal path of visible ASCII (no {}, *, ?, # or spaces)");
    }
    if (!prefixes.insert(r.prefix).second) {
      Fail(source, where, "prefix \"" + r.prefix + "\" is routed twice");
    }
    const json::value* upstream = o.if_contains("upstream");
    if (upstream == nullptr || !upstream->is_string()) {
      Fail(source, where, "\"upstream\" must be a string such as \"http://127.0.0.1:8081\"");
    }
    // "http://host:port/path": the address, and a path put in front of forwarded paths.
    std::string_view url = upstream->as_string();
    const std::size_t scheme = url.find("://");
    const std::size_t slash = scheme == std::string_view::npos ? url.npos : url.find('/', scheme + 3);
    if (slash != std::string_view::npos) {
      r.upstream_path = std::string(url.substr(slash));
      while (!r.upstream_path.empty() && r.upstream_path.back() == '/') r.upstream_path.pop_back();
      if (!Literal(r.upstream_path, "{}*?#%")) {
        Fail(source, where,
             "the path of \"upstream\" must be literal, of visible ASCII (no {}, *, ?, #, % or "
             "spaces)");
      }
      url = url.substr(0, slash);
    }
    try {
      r.upstream = http::UpstreamAddress::Parse(url);
    } catch (const std::invalid_argument& e) {
      Fail(source, where, e.what());
    }
    if (const json::value* strip = o.if_contains("strip_prefix")) {
      if (!strip->is_bool()) Fail(source, where, "\"strip_prefix\" must be true or false");
      r.strip_prefix = strip->as_bool();
    }
    r.timeout = std::chrono::milliseconds(
        IntegerField(o, "timeout_ms", 5000, 1, 3600 * 1000, source, where));
    r.max_body_bytes = static_cast<std::uint64_t>(
        IntegerField(o, "max_body_bytes", 0, 0, std::int64_t{1} << 40, source, where));
    if (const json::value* csp = o.if_contains("content_security_policy")) {
      r.content_security_policy = HeaderValue(*csp, "content_security_policy", source, where);
    }
    if (const json::value* pass = o.if_contains("upstream_security_headers")) {
      if (!pass->is_bool()) {
        Fail(source, where, "\"upstream_security_headers\" must be true or false");
      }
      r.upstream_security_headers = pass->as_bool();
    }
    config.routes.push_back(std::move(r));
  }
  if (config.routes.empty()) Fail(source, "", "\"routes\" is empty: the gateway would route nothing");
  if (const json::value* cors = root.as_object().if_contains("cors")) {
    config.cors = ParseCors(*cors, source);
  }
  if (const json::value* headers = root.as_object().if_contains("security_headers")) {
    config.security_headers = ParseSecurityHeaders(*headers, source);
  }
  if (const json::value* limits = root.as_object().if_contains("rate_limits")) {
    try {
      config.limits = ratelimit::ParseLimits(*limits, source);
    } catch (const ratelimit::LimitsError& e) {
      throw GatewayConfigError(e.what());
    }
    for (const ratelimit::Policy& policy : config.limits.policies) {
      for (const ratelimit::KeyComponent& part : policy.key) {
        if (part.part == ratelimit::KeyPart::kUser) {
          Fail(source, "rate_limits: policy \"" + policy.name + "\"",
               "the gateway limits before it authenticates: key on \"user\" in a service");
        }
      }
    }
  }
  return config;
}

GatewayConfig LoadGatewayConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw GatewayConfigError(path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return ParseGatewayConfig(text.str(), path);
}

// Generous for one person's traffic (./vigil up --traffic stays far below), strict enough
// that one client cannot take the platform or guess passwords at speed.
const std::string_view kDefaultLimits = R"({"policies": [
  {"name": "login-per-address", "key": ["client_address"], "quota": 1200, "window_s": 60,
   "burst": 200, "match": [{"prefix": "/api/auth/login", "methods": ["POST"]}]},
  {"name": "api-per-address", "key": ["client_address"], "quota": 30000, "window_s": 60,
   "burst": 3000, "match": [{"prefix": "/api"}]}]})";

GatewayConfig DefaultGatewayConfig() {
  GatewayConfig config =
      ParseGatewayConfig(vigil::service::topology::kGatewayRoutes, "embedded defaults");
  config.limits = ratelimit::ParseLimits(kDefaultLimits, "embedded defaults");
  return config;
}

}  // namespace vigil::gateway

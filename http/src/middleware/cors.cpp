#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <vigil/http/middleware/cors.hpp>

namespace vigil::http {

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out.append(", ");
    out.append(item);
  }
  return out;
}

bool ContainsIgnoringCase(const std::vector<std::string>& list, std::string_view item) {
  return std::any_of(list.begin(), list.end(), [item](const std::string& s) {
    return boost::beast::iequals(boost::beast::string_view(s.data(), s.size()),
                                 boost::beast::string_view(item.data(), item.size()));
  });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The first requested header (Access-Control-Request-Headers, a comma-separated list)
// that is not allowed, or empty when all are.
std::string_view FirstRefusedHeader(std::string_view requested, const CorsOptions& options) {
  while (!requested.empty()) {
    const std::size_t comma = requested.find(',');
    const std::string_view name = Trim(requested.substr(0, comma));
    if (!name.empty() && !ContainsIgnoringCase(options.allowed_headers, name)) return name;
    if (comma == std::string_view::npos) break;
    requested.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace

CorsMiddleware::CorsMiddleware(CorsOptions options)
    : options_(std::move(options)),
      methods_(Join(options_.allowed_methods)),
      headers_(Join(options_.allowed_headers)),
      exposed_(Join(options_.exposed_headers)),
      max_age_(std::to_string(options_.max_age.count())) {}

bool CorsMiddleware::Allowed(std::string_view origin) const noexcept {
  return std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), origin) !=
         options_.allowed_origins.end();
}

void CorsMiddleware::Before(Exchange& ex) {
  const std::string_view origin = ex.header("origin");
  if (origin.empty() || ex.responded()) return;
  auto& response = ex.response();
  response.set("Vary", "Origin");
  const std::string_view requested_method = ex.header("access-control-request-method");
  const bool preflight = ex.method() == "OPTIONS" && !requested_method.empty();
  const bool allowed = Allowed(origin) && ex.header_count("origin") == 1;
  if (preflight) {
    if (!allowed) {
      ex.RespondProblem(403, "Cross-origin requests from this origin are not allowed.");
      return;
    }
    if (std::find(options_.allowed_methods.begin(), options_.allowed_methods.end(),
                  requested_method) == options_.allowed_methods.end()) {
      ex.RespondProblem(403, "Cross-origin requests may not use the method " +
                                 std::string(requested_method.substr(0, 32)) + ".");
      return;
    }
    std::string joined;
    const std::string_view refused =
        FirstRefusedHeader(ex.header_list("access-control-request-headers", joined), options_);
    if (!refused.empty()) {
      ex.RespondProblem(403, "Cross-origin requests may not send the header " +
                                 std::string(refused.substr(0, 64)) + ".");
      return;
    }
    response.set("Access-Control-Allow-Origin", origin);
    response.set("Access-Control-Allow-Methods", methods_);
    response.set("Access-Control-Allow-Headers", headers_);
    response.set("Access-Control-Max-Age", max_age_);
    if (options_.allow_credentials) response.set("Access-Control-Allow-Credentials", "true");
    ex.Respond(204, std::string(), "text/plain");
    response.erase(boost::beast::http::field::content_type);
    return;
  }
  if (!allowed) return;
  response.set("Access-Control-Allow-Origin", origin);
  response.set("Access-Control-Expose-Headers", exposed_);
  if (options_.allow_credentials) response.set("Access-Control-Allow-Credentials", "true");
}

}  // namespace vigil::http

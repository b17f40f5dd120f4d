// Sentry DSNs: {scheme}://{public_key}[:{secret_key}]@{host}[:{port}][/{path}]/{project_id}.

#include <algorithm>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry {
namespace {

bool Fail(std::string* error, const char* reason) {
  if (error != nullptr) *error = reason;
  return false;
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

bool AllOf(std::string_view s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }

}  // namespace

std::string SentryDsn::EnvelopeUrl() const {
  return scheme + "://" + host + path + "/api/" + project_id + "/envelope/";
}

std::string SentryDsn::ToPublicString() const {
  return scheme + "://" + public_key + "@" + host + path + "/" + project_id;
}

std::optional<SentryDsn> ParseSentryDsn(std::string_view text, std::string* error) {
  SentryDsn dsn;
  const auto fail = [&](const char* reason) {
    Fail(error, reason);
    return std::nullopt;
  };
  const std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return fail("it has no scheme (http:// or https://)");
  dsn.scheme = text::AsciiLowercase(text.substr(0, scheme_end));
  if (dsn.scheme != "http" && dsn.scheme != "https") {
    return fail("its scheme is neither http nor https");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("it has a query or a fragment");
  }
  if (std::any_of(rest.begin(), rest.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7F; })) {
    return fail("it holds spaces or control characters");
  }
  const std::size_t at = rest.find('@');
  const std::size_t slash = rest.find('/');
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return fail("it has no public key (the part before '@')");
  }
  const std::string_view userinfo = rest.substr(0, at);
  const std::size_t colon = userinfo.find(':');
  const std::string_view public_key = userinfo.substr(0, colon);
  if (public_key.empty()) return fail("its public key is empty");
  if (!AllOf(public_key, IsKeyChar)) return fail("its public key holds characters a key cannot");
  dsn.public_key = std::string(public_key);
  if (colon != std::string_view::npos) {
    const std::string_view secret = userinfo.substr(colon + 1);
    if (!AllOf(secret, IsKeyChar)) return fail("its secret key holds characters a key cannot");
    dsn.secret_key = std::string(secret);
  }
  rest.remove_prefix(at + 1);
  const std::size_t host_end = rest.find('/');
  if (host_end == std::string_view::npos) return fail("it has no project id (the last path part)");
  const std::string_view host = rest.substr(0, host_end);
  if (host.empty()) return fail("its host is empty");
  if (const std::size_t port_at = host.rfind(':');
      port_at != std::string_view::npos && host.back() != ']') {
    const std::string_view port = host.substr(port_at + 1);
    if (port.empty() || port.size() > 5 ||
        !AllOf(port, [](char c) { return c >= '0' && c <= '9'; })) {
      return fail("its port is not a number");
    }
  }
  dsn.host = std::string(host);
  const std::string_view path = rest.substr(host_end);  // "/..." up to the project id
  const std::size_t last = path.rfind('/');
  const std::string_view project = path.substr(last + 1);
  if (project.empty()) return fail("it has no project id (the last path part)");
  if (!AllOf(project, IsKeyChar)) return fail("its project id holds characters an id cannot");
  dsn.project_id = std::string(project);
  dsn.path = std::string(path.substr(0, last));
  return dsn;
}

}  // namespace vigil::telemetry

// Fuzzes cross-origin requests at the gateway: the "cors" object of its configuration as
// ParseGatewayConfig reads it (config.cpp), then requests to a loopback server whose
// pipeline has a CorsMiddleware with those options (http/middleware/cors.hpp), as the
// gateway's main() builds it. Input: the "cors" object on the first line, the request's
// method on the second, its header fields on the lines after (without Host).
//
// Every origin the configuration accepts is one a browser can send and the middleware
// allows: a request carrying it exactly gets Access-Control-Allow-Origin. For the fuzzed
// request, the answer agrees with the CORS protocol as cors.hpp states it, on the fields
// the server parsed: an allowed origin (on the list, sent once) gets its CORS fields, any
// other gets none; a preflight (OPTIONS with Access-Control-Request-Method) never reaches
// the handler and is 204 exactly when the origin, the method and every requested header
// are allowed, else 403; every answer to a request naming an origin says Vary: Origin.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/http/middleware/cors.hpp>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/middleware/request_id.hpp>

#include "config.hpp"
#include "loopback.hpp"

namespace {

namespace http = vigil::http;
namespace gw = vigil::gateway;
namespace bhttp = boost::beast::http;
using http::fuzz::FuzzFailure;

// The pipeline's CORS step: the middleware of the input being run.
std::atomic<http::CorsMiddleware*> current_cors{nullptr};

class CurrentCors final : public http::Middleware {
 public:
  void Before(http::Exchange& ex) override {
    current_cors.load(std::memory_order_acquire)->Before(ex);
  }
  void After(http::Exchange&) noexcept override {}
};

http::fuzz::LoopbackServer& Server() {
  static http::fuzz::LoopbackServer server(
      [] {
        http::Routes routes;
        routes.Add("*", "/*", [](http::Exchange& ex) -> http::asio::awaitable<void> {
          ex.response().set("X-Handled", "1");
          ex.Respond(200, "ok", "text/plain");
          co_return;
        });
        return routes;
      }(),
      [] {
        http::Pipeline p;
        p.Add<http::RequestIdMiddleware>();
        p.Add<http::ErrorMiddleware>(http::fuzz::QuietLog());
        p.Add<CurrentCors>();
        return p;
      }(),
      http::ServerOptions{});
  return server;
}

bool InIgnoringCase(const std::vector<std::string>& list, std::string_view item) {
  return std::any_of(list.begin(), list.end(),
                     [item](const std::string& s) { return boost::beast::iequals(s, item); });
}

std::string_view Trim(std::string_view s) {
  const std::size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// Whether every name of an Access-Control-Request-Headers list is allowed.
bool HeadersAllowed(std::string_view requested, const http::CorsOptions& options) {
  while (true) {
    const std::size_t comma = requested.find(',');
    const std::string_view name = Trim(requested.substr(0, comma));
    if (!name.empty() && !InIgnoringCase(options.allowed_headers, name)) return false;
    if (comma == std::string_view::npos) return true;
    requested.remove_prefix(comma + 1);
  }
}

// What the server read of the fuzzed request, parsed here the same way; null when it
// is not a valid request head (the server refuses it).
std::unique_ptr<bhttp::request_parser<bhttp::empty_body>> Parse(const std::string& request) {
  auto parser = std::make_unique<bhttp::request_parser<bhttp::empty_body>>();
  parser->eager(false);
  boost::system::error_code ec;
  parser->put(boost::asio::buffer(request), ec);
  if (ec || !parser->is_header_done()) return nullptr;
  return parser;
}

void CheckFuzzed(const http::fuzz::Reply& r, const bhttp::request_header<>& req,
                 const http::CorsOptions& options, std::string_view answer) {
  std::vector<std::string_view> origins;
  std::string requested_headers;
  for (const auto& field : req) {
    const std::string_view value(field.value().data(), field.value().size());
    if (boost::beast::iequals(field.name_string(), "origin")) origins.push_back(value);
    if (boost::beast::iequals(field.name_string(), "access-control-request-headers")) {
      if (!requested_headers.empty()) requested_headers += ", ";
      requested_headers += value;
    }
  }
  const std::string_view origin = origins.empty() ? std::string_view() : origins.front();
  if (origin.empty()) {
    if (r.Count("vary") != 0 || r.Count("access-control-allow-origin") != 0) {
      FuzzFailure("CORS fields for a request without an origin", answer);
    }
    return;
  }
  const auto acrm = req.find("access-control-request-method");
  const std::string_view requested_method =
      acrm == req.end() ? std::string_view()
                        : std::string_view(acrm->value().data(), acrm->value().size());
  const bool preflight = req.method_string() == "OPTIONS" && !requested_method.empty();
  const bool allowed = origins.size() == 1 &&
                       std::find(options.allowed_origins.begin(), options.allowed_origins.end(),
                                 origin) != options.allowed_origins.end();
  const bool granted =
      allowed &&
      (!preflight || (std::find(options.allowed_methods.begin(), options.allowed_methods.end(),
                                requested_method) != options.allowed_methods.end() &&
                      HeadersAllowed(requested_headers, options)));
  if (r.Field("vary") != "Origin") FuzzFailure("no Vary: Origin", answer);
  if ((r.Count("access-control-allow-origin") != 0) != granted ||
      (granted && r.Field("access-control-allow-origin") != origin)) {
    FuzzFailure("Access-Control-Allow-Origin does not follow the list", answer);
  }
  if (granted &&
      (r.Field("access-control-allow-credentials") == "true") != options.allow_credentials) {
    FuzzFailure("Access-Control-Allow-Credentials does not follow the options", answer);
  }
  if (preflight) {
    if (r.Count("x-handled") != 0) FuzzFailure("a preflight reached the handler", answer);
    if (r.status != (granted ? 204U : 403U)) FuzzFailure("a preflight's wrong status", answer);
    if (granted && r.Count("access-control-allow-methods") != 1) {
      FuzzFailure("a granted preflight without Access-Control-Allow-Methods", answer);
    }
  } else if (granted && r.Count("access-control-expose-headers") != 1) {
    FuzzFailure("an allowed origin's answer without Access-Control-Expose-Headers", answer);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto next_line = [&input] {
    const std::size_t eol = input.find('\n');
    const std::string_view line = input.substr(0, eol);
    input = eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
    return line;
  };
  const std::string cors_json(next_line());
  gw::GatewayConfig config;
  try {
    config = gw::ParseGatewayConfig(
        R"({"routes": [{"prefix": "/", "upstream": "http://127.0.0.1:9"}], "cors": )" + cors_json +
            "}",
        "fuzz.json");
  } catch (const gw::GatewayConfigError&) {
    return 0;
  }
  static std::unique_ptr<http::CorsMiddleware> cors;
  cors = std::make_unique<http::CorsMiddleware>(config.cors);
  current_cors.store(cors.get(), std::memory_order_release);

  // The first few configured origins, each sent as a browser would, then the fuzzed
  // request, on one connection.
  std::string requests;
  const std::size_t probes = std::min<std::size_t>(config.cors.allowed_origins.size(), 3);
  for (std::size_t i = 0; i < probes; ++i) {
    requests +=
        "GET /probe HTTP/1.1\r\nHost: t\r\nOrigin: " + config.cors.allowed_origins[i] + "\r\n\r\n";
  }
  std::string fuzzed = std::string(next_line()) + " /api/items HTTP/1.1\r\nHost: t\r\n";
  for (std::string_view line = next_line(); !line.empty() || !input.empty(); line = next_line()) {
    fuzzed += std::string(line) + "\r\n";
  }
  fuzzed += "\r\n";
  requests += fuzzed;

  const http::fuzz::LoopbackServer::Answer answer = Server().Converse(requests);
  const std::vector<http::fuzz::Reply> replies = http::fuzz::SplitReplies(answer);
  for (std::size_t i = 0; i < probes; ++i) {
    const std::string& origin = config.cors.allowed_origins[i];
    if (i >= replies.size() || replies[i].status != 200 ||
        replies[i].Field("access-control-allow-origin") != origin) {
      FuzzFailure(
          "the configuration accepted an origin that a request carrying it is not "
          "allowed with: " +
              origin,
          answer.bytes);
    }
  }
  const auto parsed = Parse(fuzzed);
  if (parsed == nullptr || replies.size() <= probes) return 0;
  CheckFuzzed(replies[probes], parsed->get(), config.cors, answer.bytes);
  return 0;
}

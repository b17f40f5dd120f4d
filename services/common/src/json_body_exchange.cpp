// The part of json_body.hpp that reads an http::Exchange, apart so that the rest (the
// strict readers, query strings, path segments) builds without the HTTP runtime, as the
// fuzz target does.
#include <vigil/http/exchange.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::service {

namespace json = boost::json;

json::object ParseJsonObject(const http::Exchange& exchange) {
  const std::string_view type = exchange.header("Content-Type");
  if (!type.empty()) {
    const std::string lower =
        telemetry::text::AsciiLowercase(telemetry::text::TrimOws(type.substr(0, type.find(';'))));
    if (lower != "application/json" && !lower.ends_with("+json")) {
      throw http::HttpError(415, "Content-Type: must be application/json");
    }
  }
  return ParseJsonObject(exchange.body());
}

}  // namespace vigil::service

#include <optional>
#include <string>
#include <vigil/http/exchange.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/service/query.hpp>

namespace vigil::service {

std::int64_t QueryLimit(std::string_view query, std::int64_t default_limit,
                        std::int64_t max_limit) {
  const std::optional<std::string> text = QueryParam(query, "limit");
  if (!text) return default_limit;
  bool valid = !text->empty();
  std::int64_t value = 0;
  for (const char c : *text) {
    // Stops before a digit would take the value past max_limit, so that no number of
    // digits overflows.
    if (c < '0' || c > '9' || value > (max_limit - (c - '0')) / 10) {
      valid = false;
      break;
    }
    value = value * 10 + (c - '0');
  }
  if (!valid || value < 1 || value > max_limit) {
    throw http::HttpError(422,
                          "limit: must be an integer between 1 and " + std::to_string(max_limit));
  }
  return value;
}

}  // namespace vigil::service

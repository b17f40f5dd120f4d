// Strict reading of JSON request bodies and query strings, with errors a client can act on.
//
// A malformed body is a 400; a well-formed body with a missing field, a wrong type, a
// value out of range or a field the endpoint does not know is a 422 whose detail names
// the field ("lines[1].quantity: must be an integer between 1 and 1000"). Nothing is
// silently ignored or coerced.
//
//   service::JsonReader body(service::ParseJsonObject(ex));
//   std::string name = body.String("name", 1, 200);
//   std::int64_t price = body.Integer("price_cents", 0, 1'000'000'000);
//   body.RejectUnknown();
//
// Thread-safety: a JsonReader is used by the one request that made it.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::http {
class Exchange;
}

namespace vigil::service {

// The request body as a JSON object. Throws http::HttpError 415 when the Content-Type is
// present and not JSON, 400 when the body is not a JSON object (the detail says where
// parsing stopped).
boost::json::object ParseJsonObject(const http::Exchange& exchange);
boost::json::object ParseJsonObject(std::string_view body);

class JsonReader {
 public:
  // `path` prefixes field names in errors ("lines[0]").
  explicit JsonReader(boost::json::object object, std::string path = {});

  // Required fields; each throws http::HttpError 422 naming the field.
  std::string String(std::string_view key, std::size_t min_length, std::size_t max_length);
  std::int64_t Integer(std::string_view key, std::int64_t min, std::int64_t max);
  // An array of objects, each returned as a reader whose errors name "key[i]".
  std::vector<JsonReader> Objects(std::string_view key, std::size_t min_items,
                                  std::size_t max_items);

  // Optional fields: nullopt when absent (an explicit null is a type error).
  std::optional<std::string> OptionalString(std::string_view key, std::size_t min_length,
                                            std::size_t max_length);

  // Throws 422 naming the first field that no call above asked for.
  void RejectUnknown() const;

  const std::string& path() const noexcept { return path_; }

 private:
  const boost::json::value* Find(std::string_view key);
  [[noreturn]] void Fail(std::string_view key, std::string_view message) const;

  boost::json::object object_;
  std::string path_;
  std::vector<std::string> seen_;
};

// The first value of `name` in a query string, percent-decoded ('+' is a space); nullopt
// when absent. Throws http::HttpError 400 for malformed percent-encoding.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

// Percent-decodes a path segment captured by a route. Throws http::HttpError 400 when
// malformed.
std::string DecodePathSegment(std::string_view segment);

}  // namespace vigil::service

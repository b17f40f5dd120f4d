// Strict reading of JSON request bodies and query strings, with errors a client can act on.
//
// A malformed body is a 400 (not JSON, nested deeper than kMaxJsonDepth, a string that is
// not UTF-8: the detail names the field, or says at which byte parsing stopped); a
// well-formed body with a missing field, a wrong type, a value out of range, a string
// holding U+0000 or a field the endpoint does not know is a 422 whose detail names the
// field ("lines[1].quantity: must be an integer between 1 and 1000"). Nothing is
// silently ignored or coerced. docs/conventions.md states these rules for clients.
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

// Arrays and objects nest at most this deep in a body (the body's own object is level 1).
inline constexpr std::size_t kMaxJsonDepth = 16;

// The request body as a JSON object. Throws http::HttpError 415 "Content-Type: …" when the
// Content-Type is present and neither application/json nor a +json type, 400 when the
// body is not a JSON object (the detail says at which byte parsing stopped) or nests
// deeper than kMaxJsonDepth. Invalid UTF-8 in strings is left for JsonReader to name.
boost::json::object ParseJsonObject(const http::Exchange& exchange);
boost::json::object ParseJsonObject(std::string_view body);

class JsonReader {
 public:
  // `path` prefixes field names in errors ("lines[0]"). The keys given to the readers below
  // are the endpoint's own field names (UTF-8), never the client's: errors echo them.
  explicit JsonReader(boost::json::object object, std::string path = {});

  // Required fields; each throws http::HttpError 422 naming the field. A string's length
  // counts characters; a string that is not UTF-8 is a 400, one holding U+0000 a 422.
  std::string String(std::string_view key, std::size_t min_length, std::size_t max_length);
  std::int64_t Integer(std::string_view key, std::int64_t min, std::int64_t max);
  // An array of objects, each returned as a reader whose errors name "key[i]".
  std::vector<JsonReader> Objects(std::string_view key, std::size_t min_items,
                                  std::size_t max_items);

  // Optional fields: nullopt when absent (an explicit null is a type error).
  std::optional<std::string> OptionalString(std::string_view key, std::size_t min_length,
                                            std::size_t max_length);

  // Throws 422 naming the first field that no call above asked for (400 when its name is
  // not UTF-8).
  void RejectUnknown() const;

  const std::string& path() const noexcept { return path_; }

 private:
  const boost::json::value* Find(std::string_view key);
  [[noreturn]] void Fail(std::string_view key, std::string_view message,
                         unsigned status = 422) const;

  boost::json::object object_;
  std::string path_;
  std::vector<std::string> seen_;
};

// The value of `name` in a query string, percent-decoded ('+' is a space); nullopt when
// absent. Throws http::HttpError 400 "<name>: must be given once" when it appears more
// than once, and 400 for malformed percent-encoding (naming `name` when in its value).
// The value may be any bytes: the caller checks it (Utf8Length).
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

// Percent-decodes a path segment captured by a route. Throws http::HttpError 400 when
// malformed.
std::string DecodePathSegment(std::string_view segment);

// The number of characters (code points) of `s` when it is valid UTF-8 (RFC 3629: no
// overlong forms, surrogates or values above U+10FFFF); nullopt otherwise.
std::optional<std::size_t> Utf8Length(std::string_view s) noexcept;

}  // namespace vigil::service

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cmath>
#include <vigil/http/exchange.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::service {

namespace json = boost::json;

namespace {

std::size_t Utf8Length(std::string_view s) {
  // Boost.JSON has validated the UTF-8; count code points, not bytes, as users do.
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int hi = i + 2 < text.size() ? telemetry::text::HexValue(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? telemetry::text::HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        throw http::HttpError(400, "malformed percent-encoding in the request target");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

json::object ParseJsonObject(std::string_view body) {
  if (body.empty()) throw http::HttpError(400, "a JSON object body is required");
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 16;
  json::value value = json::parse(body, ec, {}, options);
  if (ec) throw http::HttpError(400, "the body is not valid JSON: " + ec.message());
  if (!value.is_object()) throw http::HttpError(400, "the body must be a JSON object");
  return std::move(value.as_object());
}

JsonReader::JsonReader(json::object object, std::string path)
    : object_(std::move(object)), path_(std::move(path)) {}

const json::value* JsonReader::Find(std::string_view key) {
  seen_.emplace_back(key);
  return object_.if_contains(key);
}

void JsonReader::Fail(std::string_view key, std::string_view message) const {
  std::string detail = path_;
  if (!detail.empty()) detail.push_back('.');
  detail.append(key).append(": ").append(message);
  throw http::HttpError(422, detail);
}

std::string JsonReader::String(std::string_view key, std::size_t min_length,
                               std::size_t max_length) {
  auto value = OptionalString(key, min_length, max_length);
  if (!value) Fail(key, "is required");
  return std::move(*value);
}

std::optional<std::string> JsonReader::OptionalString(std::string_view key, std::size_t min_length,
                                                      std::size_t max_length) {
  const json::value* v = Find(key);
  if (v == nullptr) return std::nullopt;
  const auto bounds = "must be a string of " + std::to_string(min_length) + " to " +
                      std::to_string(max_length) + " characters";
  if (!v->is_string()) Fail(key, bounds);
  const std::string_view s = v->get_string();
  const std::size_t length = Utf8Length(s);
  if (length < min_length || length > max_length) Fail(key, bounds);
  return std::string(s);
}

std::int64_t JsonReader::Integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const json::value* v = Find(key);
  if (v == nullptr) Fail(key, "is required");
  const auto bounds =
      "must be an integer between " + std::to_string(min) + " and " + std::to_string(max);
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64()) {
    Fail(key, bounds);
  } else if (v->is_double()) {
    // 3.0 is an integer written as a float; 3.5 and 1e300 are not. The range is checked
    // before the conversion, which is undefined for a double outside int64's range.
    const double d = v->get_double();
    if (!(d >= -9.0e18 && d <= 9.0e18) || d != std::trunc(d)) Fail(key, bounds);
    n = static_cast<std::int64_t>(d);
  } else {
    Fail(key, bounds);
  }
  if (n < min || n > max) Fail(key, bounds);
  return n;
}

std::vector<JsonReader> JsonReader::Objects(std::string_view key, std::size_t min_items,
                                            std::size_t max_items) {
  const json::value* v = Find(key);
  if (v == nullptr) Fail(key, "is required");
  const auto bounds = "must be an array of " + std::to_string(min_items) + " to " +
                      std::to_string(max_items) + " objects";
  if (!v->is_array()) Fail(key, bounds);
  const json::array& items = v->get_array();
  if (items.size() < min_items || items.size() > max_items) Fail(key, bounds);
  std::vector<JsonReader> readers;
  readers.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string element = std::string(key) + "[" + std::to_string(i) + "]";
    if (!items[i].is_object()) Fail(element, "must be an object");
    readers.emplace_back(items[i].get_object(),
                         path_.empty() ? element : path_ + "." + element);
  }
  return readers;
}

void JsonReader::RejectUnknown() const {
  for (const auto& entry : object_) {
    const std::string_view key = entry.key();
    if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) {
      // The key is the client's text: bound it so the detail stays short (and valid UTF-8).
      Fail(telemetry::text::Utf8Prefix(key, 64), "is not a known field");
    }
  }
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string DecodePathSegment(std::string_view segment) { return PercentDecode(segment, false); }

}  // namespace vigil::service

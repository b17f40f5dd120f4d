#include <boost/json/error.hpp>
#include <boost/json/parser.hpp>

#include <algorithm>
#include <cmath>
#include <vigil/http/exchange.hpp>
#include <vigil/service/json_body.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::service {

namespace json = boost::json;

namespace {

// `text` decoded; `what` names it in the 400 for malformed percent-encoding.
std::string PercentDecode(std::string_view text, bool plus_is_space, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int hi = i + 2 < text.size() ? telemetry::text::HexValue(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? telemetry::text::HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        throw http::HttpError(400, std::string(what) + ": malformed percent-encoding");
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

std::optional<std::size_t> Utf8Length(std::string_view s) noexcept {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); ++count) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      n = 1;
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07u;
    } else {
      return std::nullopt;
    }
    if (n > s.size() - i) return std::nullopt;
    for (std::size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    i += n;
  }
  return count;
}

json::object ParseJsonObject(std::string_view body) {
  if (body.empty()) throw http::HttpError(400, "a JSON object body is required");
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  // Strings are checked where they are read, so that the error names the field
  // (JsonReader::String); field names by RejectUnknown.
  options.allow_invalid_utf8 = true;
  json::parser parser({}, options);
  boost::system::error_code ec;
  const std::size_t consumed = parser.write(body.data(), body.size(), ec);
  if (ec == json::error::too_deep) {
    throw http::HttpError(400, "the body nests arrays and objects deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels");
  }
  if (ec) {
    throw http::HttpError(400, "the body is not valid JSON: " + ec.message() + " at byte " +
                                   std::to_string(consumed));
  }
  json::value value = parser.release();
  if (!value.is_object()) throw http::HttpError(400, "the body must be a JSON object");
  return std::move(value.as_object());
}

JsonReader::JsonReader(json::object object, std::string path)
    : object_(std::move(object)), path_(std::move(path)) {}

const json::value* JsonReader::Find(std::string_view key) {
  seen_.emplace_back(key);
  return object_.if_contains(key);
}

void JsonReader::Fail(std::string_view key, std::string_view message, unsigned status) const {
  std::string detail = path_;
  if (!detail.empty()) detail.push_back('.');
  detail.append(key).append(": ").append(message);
  throw http::HttpError(status, detail);
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
  const std::optional<std::size_t> length = Utf8Length(s);
  // Not UTF-8 is a malformed body (RFC 8259), found here so that the detail names the field.
  if (!length) Fail(key, "must be valid UTF-8", 400);
  if (*length < min_length || *length > max_length) Fail(key, bounds);
  // Neither database keeps U+0000 in text (PostgreSQL's text cannot hold it, SQLite's
  // string functions stop at it).
  if (s.find('\0') != std::string_view::npos) Fail(key, "must not contain U+0000");
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
      // The key is the client's text: echoed only when it is UTF-8, and bounded so that
      // the detail stays short.
      if (!Utf8Length(key)) {
        throw http::HttpError(
            400, (path_.empty() ? "" : path_ + ": ") + "a field name is not valid UTF-8");
      }
      Fail(telemetry::text::Utf8Prefix(key, 64), "is not a known field");
    }
  }
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  std::optional<std::string> value;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq), true, "a query parameter's name") == name) {
      if (value) throw http::HttpError(400, std::string(name) + ": must be given once");
      value = eq == std::string_view::npos ? std::string()
                                           : PercentDecode(pair.substr(eq + 1), true, name);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return value;
}

std::string DecodePathSegment(std::string_view segment) {
  return PercentDecode(segment, false, "the path");
}

}  // namespace vigil::service

// Fuzzes what the services read from request bodies and targets (json_body.hpp): any bytes
// as a JSON body read field by field (some left unknown), as a query string, as a path segment. The
// first byte picks which. A malformed body is a 400 and a body the reader refuses a 422 (a 400 for
// text that is not UTF-8), each with a detail in valid UTF-8; no other exception, crash or
// undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vigil/http/exchange.hpp>
#include <vigil/service/json_body.hpp>

namespace svc = vigil::service;

namespace {

bool IsValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += len;
  }
  return true;
}

// What a reader may throw: 422, or 400 for text that is not UTF-8, with a UTF-8 detail.
bool Refusal(const vigil::http::HttpError& e) {
  return (e.status() == 422 || e.status() == 400) && IsValidUtf8(e.what());
}

// Reads the fields of `reader`'s object the way one of the services might, by type, all
// but every third one, which RejectUnknown then names.
void ReadAll(svc::JsonReader& reader, const boost::json::object& object, int depth) {
  std::size_t n = 0;
  for (const auto& entry : object) {
    const std::string_view key = entry.key();
    // A service reads the fields it names, in UTF-8; a name that is not is one it does not
    // know, for RejectUnknown.
    if (++n % 3 == 0 || !svc::Utf8Length(key)) continue;
    const boost::json::value& v = entry.value();
    try {
      if (v.is_string()) {
        (void)reader.String(key, 1, 8);
      } else if (v.is_array() && depth < 3) {
        const auto items = reader.Objects(key, 0, 4);
        for (std::size_t i = 0; i < items.size(); ++i) {
          svc::JsonReader item = items[i];
          ReadAll(item, v.get_array()[i].get_object(), depth + 1);
        }
      } else {
        (void)reader.Integer(key, -1000, 1000);
      }
    } catch (const vigil::http::HttpError& e) {
      if (!Refusal(e)) __builtin_trap();
    }
  }
  try {
    reader.RejectUnknown();
  } catch (const vigil::http::HttpError& e) {
    if (!Refusal(e)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        boost::json::object object = svc::ParseJsonObject(input);
        svc::JsonReader reader(object);
        ReadAll(reader, object, 0);
        break;
      }
      case 1: {
        const std::size_t split = input.find('\n');
        const std::string_view name = input.substr(0, split);
        const std::string_view query = split == std::string_view::npos ? "" : input.substr(split + 1);
        (void)svc::QueryParam(query, name);
        break;
      }
      default:
        if (svc::DecodePathSegment(input).size() > input.size()) __builtin_trap();
        break;
    }
  } catch (const vigil::http::HttpError& e) {
    // Only a malformed body or escape: 400 (ParseJsonObject, percent-decoding).
    if (e.status() != 400) __builtin_trap();
  }
  return 0;
}

#include "otlp/response.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry::otlp {
namespace {

// ---------------------------------------------------------------------------- protobuf

class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }

  bool Varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) {
        return false;
      }
      const auto b = static_cast<std::uint8_t>(data_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        return true;
      }
    }
    return false;
  }

  bool Key(std::uint64_t& field, std::uint8_t& wire) {
    std::uint64_t key = 0;
    if (!Varint(key)) {
      return false;
    }
    field = key >> 3;
    wire = static_cast<std::uint8_t>(key & 7);
    return field != 0;
  }

  bool Bytes(std::string_view& out) {
    std::uint64_t n = 0;
    if (!Varint(n) || n > data_.size() - pos_) {
      return false;
    }
    out = data_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }

  // Steps over a field of a type this reader does not need; groups are not supported.
  bool Skip(std::uint8_t wire) {
    std::uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire) {
      case 0:
        return Varint(ignored);
      case 1:
        return Advance(8);
      case 2:
        return Bytes(ignored_bytes);
      case 5:
        return Advance(4);
      default:
        return false;
    }
  }

 private:
  bool Advance(std::size_t n) {
    if (n > data_.size() - pos_) {
      return false;
    }
    pos_ += n;
    return true;
  }

  std::string_view data_;
  std::size_t pos_ = 0;
};

std::optional<PartialSuccess> ParseProtobufResponse(std::string_view body) {
  PartialSuccess result;
  ProtoReader top(body);
  while (!top.done()) {
    std::uint64_t field = 0;
    std::uint8_t wire = 0;
    if (!top.Key(field, wire)) {
      return std::nullopt;
    }
    if (field != 1 || wire != 2) {
      if (!top.Skip(wire)) {
        return std::nullopt;
      }
      continue;
    }
    std::string_view inner_bytes;
    if (!top.Bytes(inner_bytes)) {
      return std::nullopt;
    }
    ProtoReader inner(inner_bytes);
    while (!inner.done()) {
      if (!inner.Key(field, wire)) {
        return std::nullopt;
      }
      if (field == 1 && wire == 0) {
        std::uint64_t v = 0;
        if (!inner.Varint(v)) {
          return std::nullopt;
        }
        result.rejected_spans = static_cast<std::int64_t>(v);
      } else if (field == 2 && wire == 2) {
        std::string_view msg;
        if (!inner.Bytes(msg)) {
          return std::nullopt;
        }
        result.error_message.assign(msg);
      } else if (!inner.Skip(wire)) {
        return std::nullopt;
      }
    }
  }
  return result;
}

std::string ParseProtobufStatus(std::string_view body) {
  ProtoReader r(body);
  std::string message;
  while (!r.done()) {
    std::uint64_t field = 0;
    std::uint8_t wire = 0;
    if (!r.Key(field, wire)) {
      return {};
    }
    if (field == 2 && wire == 2) {
      std::string_view msg;
      if (!r.Bytes(msg)) {
        return {};
      }
      message.assign(msg);
    } else if (!r.Skip(wire)) {
      return {};
    }
  }
  return message;
}

// ---------------------------------------------------------------------------- JSON

// Just enough JSON to find a few members of an object and skip everything else.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  bool AtEnd() {
    Ws();
    return i_ == s_.size();
  }

  // Calls on_member(key) for each member; on_member must consume the value.
  template <typename F>
  bool Object(F&& on_member) {
    Ws();
    if (!Eat('{')) {
      return false;
    }
    Ws();
    if (Eat('}')) {
      return true;
    }
    while (true) {
      std::string key;
      Ws();
      if (!String(key)) {
        return false;
      }
      Ws();
      if (!Eat(':')) {
        return false;
      }
      Ws();
      if (!on_member(key)) {
        return false;
      }
      Ws();
      if (Eat('}')) {
        return true;
      }
      if (!Eat(',')) {
        return false;
      }
    }
  }

  bool String(std::string& out) {
    Ws();
    if (!Eat('"')) {
      return false;
    }
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') {
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return false;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) {
        return false;
      }
      switch (s_[i_++]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!Hex4(cp)) {
            return false;
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low = 0;
            if (!(Eat('\\') && Eat('u') && Hex4(low) && low >= 0xDC00 && low <= 0xDFFF)) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  // A JSON number's text.
  bool Number(std::string_view& out) {
    Ws();
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
    }
    out = s_.substr(start, i_ - start);
    return !out.empty();
  }

  char Peek() {
    Ws();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

  bool SkipValue(int depth = 0) {
    if (depth > 64) {
      return false;
    }
    switch (Peek()) {
      case '{':
        return Object([&](const std::string&) { return SkipValue(depth + 1); });
      case '[': {
        ++i_;
        Ws();
        if (Eat(']')) {
          return true;
        }
        while (true) {
          if (!SkipValue(depth + 1)) {
            return false;
          }
          Ws();
          if (Eat(']')) {
            return true;
          }
          if (!Eat(',')) {
            return false;
          }
        }
      }
      case '"': {
        std::string ignored;
        return String(ignored);
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default: {
        std::string_view ignored;
        return Number(ignored);
      }
    }
  }

 private:
  void Ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view lit) {
    if (s_.substr(i_, lit.size()) != lit) {
      return false;
    }
    i_ += lit.size();
    return true;
  }
  bool Hex4(std::uint32_t& v) {
    if (s_.size() - i_ < 4) {
      return false;
    }
    v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  static void AppendUtf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// An int64 written as a JSON number or, as the protobuf JSON mapping prefers, a string.
bool JsonInt64(JsonReader& r, std::int64_t& out) {
  std::string text;
  std::string_view digits;
  if (r.Peek() == '"') {
    if (!r.String(text)) {
      return false;
    }
    digits = text;
  } else if (!r.Number(digits)) {
    return false;
  }
  const char* end = digits.data() + digits.size();
  auto [ptr, ec] = std::from_chars(digits.data(), end, out);
  return ec == std::errc() && ptr == end;
}

std::optional<PartialSuccess> ParseJsonResponse(std::string_view body) {
  PartialSuccess result;
  JsonReader r(body);
  const bool ok = r.Object([&](const std::string& key) {
    if (key != "partialSuccess" && key != "partial_success") {
      return r.SkipValue();
    }
    if (r.Peek() == 'n') {
      return r.SkipValue();  // null: no partial success
    }
    return r.Object([&](const std::string& inner) {
      if (inner == "rejectedSpans" || inner == "rejected_spans") {
        return JsonInt64(r, result.rejected_spans);
      }
      if (inner == "errorMessage" || inner == "error_message") {
        return r.String(result.error_message);
      }
      return r.SkipValue();
    });
  });
  if (!ok || !r.AtEnd()) {
    return std::nullopt;
  }
  return result;
}

std::string ParseJsonStatus(std::string_view body) {
  std::string message;
  JsonReader r(body);
  const bool ok = r.Object([&](const std::string& key) {
    if (key == "message" && r.Peek() == '"') {
      message.clear();
      return r.String(message);
    }
    return r.SkipValue();
  });
  return ok ? message : std::string();
}

std::string_view MediaType(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') {
    content_type.remove_suffix(1);
  }
  while (!content_type.empty() && content_type.front() == ' ') {
    content_type.remove_prefix(1);
  }
  return content_type;
}

}  // namespace

std::optional<PartialSuccess> ParseExportResponse(std::string_view body, bool json) {
  if (body.empty()) {
    return PartialSuccess{};
  }
  return json ? ParseJsonResponse(body) : ParseProtobufResponse(body);
}

std::string ParseStatusMessage(std::string_view body, bool json) {
  if (body.empty()) {
    return {};
  }
  return json ? ParseJsonStatus(body) : ParseProtobufStatus(body);
}

bool IsJsonContentType(std::string_view content_type) noexcept {
  return text::EqualsIgnoreCase(MediaType(content_type), "application/json");
}

bool IsProtobufContentType(std::string_view content_type) noexcept {
  const std::string_view media = MediaType(content_type);
  return text::EqualsIgnoreCase(media, "application/x-protobuf") ||
         text::EqualsIgnoreCase(media, "application/protobuf");
}

}  // namespace vigil::telemetry::otlp

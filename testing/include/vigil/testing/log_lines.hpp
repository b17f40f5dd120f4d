// Test support: a strict reader for log lines: one flat JSON object whose values are
// strings, numbers, booleans or null, which is all the logger writes. It checks the whole
// line against RFC 8259 (escapes, number grammar, no raw control characters, well-formed
// UTF-8, nothing after the closing brace) and keeps members in their written order, so
// tests can assert key order and catch any invalid output.
//
//   auto obj = vigil::test_support::ParseLogLine(R"({"time":"...","level":"info","n":3})");
//   ASSERT_TRUE(obj);
//   EXPECT_EQ(obj->Keys()[1], "level");
//
// Thread-safety: stateless functions and value types.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::test_support {

struct JsonScalar {
  enum class Kind { kString, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  std::string text;  // decoded string, number as written, "true"/"false", "null"
};

struct JsonLine {
  std::vector<std::pair<std::string, JsonScalar>> members;

  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    for (const auto& m : members) keys.push_back(m.first);
    return keys;
  }
  // The first member named `key`, if any.
  const JsonScalar* Find(std::string_view key) const {
    for (const auto& m : members) {
      if (m.first == key) return &m.second;
    }
    return nullptr;
  }
  // The text of the first member named `key`; "<missing>" when there is none.
  std::string Text(std::string_view key) const {
    const JsonScalar* v = Find(key);
    return v == nullptr ? std::string("<missing>") : v->text;
  }
  std::size_t Count(std::string_view key) const {
    std::size_t n = 0;
    for (const auto& m : members) n += m.first == key ? 1u : 0u;
    return n;
  }
};

// The members of `line` (without its trailing newline), or nullopt when it is not
// exactly one valid JSON object of scalars.
std::optional<JsonLine> ParseLogLine(std::string_view line);

// Each of `lines` parsed; a line that does not parse is a test failure and left out.
std::vector<JsonLine> ParseLogLines(const std::vector<std::string>& lines);

}  // namespace vigil::test_support

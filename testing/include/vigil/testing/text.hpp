// Test support: looking at captured output (log lines, metrics, bodies) and writing exact
// bytes.
//
//   EXPECT_TRUE(vigil::test_support::Has(logs, "\"level\":\"warn\""));
//   EXPECT_EQ(vigil::test_support::Occurrences(logs, "\"msg\":\"stopped\""), 1u);
//   for (const std::string& line : vigil::test_support::SplitLines(output)) ...
//   const std::string varint = vigil::test_support::Bytes({0x96, 0x01});
//
// Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::test_support {

inline bool Has(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

// Non-overlapping occurrences of a non-empty `needle` in `text`.
inline std::size_t Occurrences(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// The lines of `text` without their '\n'. Output made of lines ends with one: anything
// after the last '\n' is a test failure ("does not end with a newline") and left out.
std::vector<std::string> SplitLines(std::string_view text);

// A string of the given byte values (0 to 255), for encodings written out byte by byte.
inline std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out += static_cast<char>(b);
  return out;
}

}  // namespace vigil::test_support

// Test support: looking for text in captured output (log lines, metrics, bodies).
//
//   EXPECT_TRUE(vigil::test_support::Has(logs, "\"level\":\"warn\""));
//   EXPECT_EQ(vigil::test_support::Occurrences(logs, "\"msg\":\"stopped\""), 1u);
#pragma once

#include <cstddef>
#include <string_view>

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

}  // namespace vigil::test_support

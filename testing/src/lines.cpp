// The readers that report what they find wrong as GoogleTest failures. The log-line
// parser itself (log_line.cpp) has no GoogleTest in it, so that a fuzzer can link it.
#include <gtest/gtest.h>

#include "vigil/testing/log_lines.hpp"
#include "vigil/testing/text.hpp"

namespace vigil::test_support {

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string_view::npos; start = nl + 1) {
    lines.emplace_back(text.substr(start, nl - start));
  }
  EXPECT_EQ(start, text.size()) << "output does not end with a newline";
  return lines;
}

std::vector<JsonLine> ParseLogLines(const std::vector<std::string>& lines) {
  std::vector<JsonLine> out;
  for (const std::string& line : lines) {
    auto parsed = ParseLogLine(line);
    EXPECT_TRUE(parsed.has_value()) << "invalid JSON: " << line;
    if (parsed) out.push_back(std::move(*parsed));
  }
  return out;
}

}  // namespace vigil::test_support

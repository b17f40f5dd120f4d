#include "sql_text.hpp"

#include <array>
#include <cctype>
#include <cstddef>

namespace vigil::storage {
namespace {

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsWordChar(char c) { return IsWordStart(c) || IsDigit(c) || c == '$'; }
char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string Uppercase(std::string_view word) {
  std::string out(word);
  for (char& c : out) c = Upper(c);
  return out;
}

bool EqualsUpper(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (Upper(word[i]) != upper[i]) return false;
  }
  return true;
}

// When a literal, a quoted identifier or a comment starts at `i`, the index just past
// it; otherwise `i`. An unterminated one runs to the end of the text.
std::size_t SkipQuotedOrComment(std::string_view sql, std::size_t i) {
  const char c = sql[i];
  if (c == '\'' || c == '"' || c == '`') {
    const std::size_t close = sql.find(c, i + 1);
    return close == std::string_view::npos ? sql.size() : close + 1;
  }
  if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
    const std::size_t eol = sql.find('\n', i + 2);
    return eol == std::string_view::npos ? sql.size() : eol + 1;
  }
  if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
    const std::size_t close = sql.find("*/", i + 2);
    return close == std::string_view::npos ? sql.size() : close + 2;
  }
  return i;
}

std::size_t SkipSpaces(std::string_view sql, std::size_t i) {
  while (i < sql.size() && IsSpace(sql[i])) ++i;
  return i;
}

std::string_view WordAt(std::string_view sql, std::size_t i) {
  std::size_t end = i;
  while (end < sql.size() && IsWordChar(sql[end])) ++end;
  return sql.substr(i, end - i);
}

// The name after a FROM / INTO / UPDATE / TABLE keyword ending at `i`: `IF [NOT] EXISTS`
// and `ONLY` are passed over; the name ends at a space, a parenthesis, a comma or a
// semicolon outside quotes, and loses its quotes.
std::string TableAfter(std::string_view sql, std::size_t i) {
  i = SkipSpaces(sql, i);
  for (std::string_view filler : {"IF", "NOT", "EXISTS", "ONLY"}) {
    const std::string_view word = WordAt(sql, i);
    if (EqualsUpper(word, filler)) i = SkipSpaces(sql, i + word.size());
  }
  std::string table;
  char quote = 0;
  for (; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        table += c;
      }
      continue;
    }
    if (c == '"' || c == '`') {
      quote = c;
      continue;
    }
    if (IsSpace(c) || c == '(' || c == ')' || c == ';' || c == ',') break;
    table += c;
  }
  return table;
}

bool IsTableKeyword(std::string_view upper) {
  return upper == "FROM" || upper == "INTO" || upper == "UPDATE" || upper == "TABLE";
}

}  // namespace

OperationAndTable ParseOperationAndTable(std::string_view sql) {
  OperationAndTable out;
  bool first = true;
  std::size_t i = 0;
  while (i < sql.size()) {
    const std::size_t skipped = SkipQuotedOrComment(sql, i);
    if (skipped != i) {
      i = skipped;
      continue;
    }
    if (!IsWordStart(sql[i])) {
      ++i;
      continue;
    }
    const std::string_view word = WordAt(sql, i);
    i += word.size();
    const std::string upper = Uppercase(word);
    if (first) {
      out.operation = upper;
      first = false;
    }
    if (IsTableKeyword(upper)) {
      // `FROM (SELECT ...)` names no table here; a later keyword may.
      out.table = TableAfter(sql, i);
      if (!out.table.empty()) break;
    }
  }
  return out;
}

std::string ToSqlitePlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  std::size_t i = 0;
  while (i < sql.size()) {
    const std::size_t skipped = SkipQuotedOrComment(sql, i);
    if (skipped != i) {
      out.append(sql.substr(i, skipped - i));
      i = skipped;
      continue;
    }
    const char c = sql[i];
    if (IsWordStart(c)) {
      // A `$` inside a word (`a$1`) is part of the word, never a placeholder.
      const std::string_view word = WordAt(sql, i);
      out.append(word);
      i += word.size();
      continue;
    }
    if (c == '$' && i + 1 < sql.size() && IsDigit(sql[i + 1])) {
      out += '?';
      ++i;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace vigil::storage

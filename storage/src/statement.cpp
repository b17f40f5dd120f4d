// Statement parsing and Row accessors.
#include <atomic>
#include <charconv>
#include <string>
#include <vigil/storage/database.hpp>

#include "sql_text.hpp"

namespace vigil::storage {
namespace {

// Ids start at 1 so that 0 never names a prepared statement.
std::atomic<std::uint64_t> next_statement_id{1};

}  // namespace

Statement::Statement(std::string sql)
    : sql_(std::move(sql)), id_(next_statement_id.fetch_add(1, std::memory_order_relaxed)) {
  OperationAndTable parsed = ParseOperationAndTable(sql_);
  operation_ = std::move(parsed.operation);
  table_ = std::move(parsed.table);
  if (operation_.empty()) {
    span_name_ = "DB";
  } else if (table_.empty()) {
    span_name_ = operation_;
  } else {
    span_name_ = operation_ + " " + table_;
  }
}

std::string_view Row::Text(std::size_t column) const {
  if (column >= columns_.size()) {
    throw DatabaseError("column " + std::to_string(column) + " is out of range: the row has " +
                        std::to_string(columns_.size()));
  }
  const auto& value = columns_[column];
  return value ? std::string_view(*value) : std::string_view();
}

std::int64_t Row::Int(std::size_t column) const {
  const std::string_view text = Text(column);
  if (!columns_[column].has_value()) {
    throw DatabaseError("column " + std::to_string(column) + " is NULL, not an integer");
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // The value itself stays out of the message: it may be a user's data.
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw DatabaseError("column " + std::to_string(column) + " is not an integer");
  }
  return value;
}

}  // namespace vigil::storage

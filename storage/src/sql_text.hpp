// Reading SQL text without a parser: the operation and table that name a statement's span
// and label its metric, and the placeholder rewrite SQLite needs.
//
// Both walk the text once, skipping string literals, quoted identifiers and comments, so
// a `$1` or a `FROM` inside a literal is left alone.
//
//   auto [op, table] = ParseOperationAndTable("SELECT id FROM items WHERE id = $1");
//   // op == "SELECT", table == "items"
//   ToSqlitePlaceholders("... WHERE id = $1");  // "... WHERE id = ?1"
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace vigil::storage {

struct OperationAndTable {
  std::string operation;  // the first keyword, uppercased ("" for empty text)
  std::string table;      // the name after FROM / INTO / UPDATE / TABLE, unquoted; may be ""
};

OperationAndTable ParseOperationAndTable(std::string_view sql);

// `$N` -> `?N` outside literals, identifiers and comments: SQLite's numbered parameters
// keep the same numbering, so a `$1` used twice binds one value.
std::string ToSqlitePlaceholders(std::string_view sql);

}  // namespace vigil::storage

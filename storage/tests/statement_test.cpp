// Statement parsing (operation, table, span name), the SQLite placeholder rewrite, Row
// accessors and DatabaseOptions::FromEnv. No database needed.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vigil/storage/database.hpp>
#include <vigil/telemetry/env.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/scoped_env.hpp>

#include "sql_text.hpp"

namespace vigil::storage {
namespace {

using test_support::ScopedEnv;

struct Parsed {
  std::string operation;
  std::string table;
  std::string span_name;
};

Parsed Parse(std::string sql) {
  Statement s(std::move(sql));
  return {std::string(s.operation()), std::string(s.table()), s.span_name()};
}

TEST(StatementTest, OperationAndTableOfEachKind) {
  auto p = Parse("SELECT id, name FROM items WHERE id = $1");
  EXPECT_EQ(p.operation, "SELECT");
  EXPECT_EQ(p.table, "items");
  EXPECT_EQ(p.span_name, "SELECT items");

  p = Parse("insert into orders (id) values ($1) returning id");
  EXPECT_EQ(p.operation, "INSERT");
  EXPECT_EQ(p.table, "orders");
  EXPECT_EQ(p.span_name, "INSERT orders");

  p = Parse("UPDATE items SET stock = stock - $1 WHERE id = $2 RETURNING stock");
  EXPECT_EQ(p.span_name, "UPDATE items");
  p = Parse("DELETE FROM reservations WHERE id = $1");
  EXPECT_EQ(p.span_name, "DELETE reservations");
  p = Parse("CREATE TABLE IF NOT EXISTS schema_migrations (service TEXT)");
  EXPECT_EQ(p.span_name, "CREATE schema_migrations");
  p = Parse("DROP TABLE IF EXISTS old_things");
  EXPECT_EQ(p.span_name, "DROP old_things");
  p = Parse("ALTER TABLE items ADD COLUMN sku TEXT");
  EXPECT_EQ(p.span_name, "ALTER items");
  p = Parse("INSERT OR IGNORE INTO tags(name) VALUES ($1)");
  EXPECT_EQ(p.span_name, "INSERT tags");
}

TEST(StatementTest, NoTableGivesTheOperationAlone) {
  auto p = Parse("SELECT 1");
  EXPECT_EQ(p.operation, "SELECT");
  EXPECT_EQ(p.table, "");
  EXPECT_EQ(p.span_name, "SELECT");
  EXPECT_EQ(Parse("  begin  ").span_name, "BEGIN");
  EXPECT_EQ(Parse("").span_name, "DB");
}

TEST(StatementTest, QuotesAreStrippedAndTheNameEndsAtDelimiters) {
  EXPECT_EQ(Parse("SELECT * FROM \"Items\" WHERE 1").table, "Items");
  EXPECT_EQ(Parse("SELECT * FROM `items`").table, "items");
  EXPECT_EQ(Parse("INSERT INTO items(id) VALUES (1)").table, "items");
  EXPECT_EQ(Parse("SELECT * FROM items;").table, "items");
  EXPECT_EQ(Parse("SELECT * FROM public.items").table, "public.items");
  EXPECT_EQ(Parse("SELECT * FROM \"my items\" x").table, "my items");
}

TEST(StatementTest, KeywordsInsideLiteralsIdentifiersAndCommentsDoNotCount) {
  EXPECT_EQ(Parse("SELECT 'from x' AS t, \"from\" FROM items").table, "items");
  EXPECT_EQ(Parse("-- FROM comments\nSELECT a FROM b").span_name, "SELECT b");
  EXPECT_EQ(Parse("/* UPDATE x */ SELECT a FROM b").span_name, "SELECT b");
  // A column named like a keyword's prefix is not the keyword.
  EXPECT_EQ(Parse("SELECT updated_at, into_x FROM items").table, "items");
}

TEST(StatementTest, SubqueryAfterFromLetsALaterKeywordName) {
  EXPECT_EQ(Parse("SELECT n FROM (SELECT count(*) AS n FROM items) t").table, "items");
  // The first table keyword wins: the INSERT's target, not the upsert's UPDATE.
  EXPECT_EQ(
      Parse("INSERT INTO items (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = $1").span_name,
      "INSERT items");
}

TEST(StatementTest, IdsAreUniquePerObject) {
  Statement a("SELECT 1");
  Statement b("SELECT 1");
  EXPECT_NE(a.id(), b.id());
  EXPECT_NE(a.id(), 0u);
  EXPECT_EQ(a.sql(), "SELECT 1");
}

TEST(SqlTextTest, DollarPlaceholdersBecomeNumberedQuestionMarks) {
  EXPECT_EQ(ToSqlitePlaceholders("SELECT * FROM t WHERE a = $1 AND b = $12 OR c = $1"),
            "SELECT * FROM t WHERE a = ?1 AND b = ?12 OR c = ?1");
  EXPECT_EQ(ToSqlitePlaceholders("VALUES ($1,$2)"), "VALUES (?1,?2)");
}

TEST(SqlTextTest, DollarsOutsidePlaceholdersAreKept) {
  EXPECT_EQ(ToSqlitePlaceholders("SELECT '$1', \"a$1\", x FROM t -- $1\nWHERE y = $2"),
            "SELECT '$1', \"a$1\", x FROM t -- $1\nWHERE y = ?2");
  EXPECT_EQ(ToSqlitePlaceholders("SELECT a$1 /* $3 */ FROM t"), "SELECT a$1 /* $3 */ FROM t");
  EXPECT_EQ(ToSqlitePlaceholders("SELECT '$' || $a"), "SELECT '$' || $a");
  EXPECT_EQ(ToSqlitePlaceholders("it's $1"), "it's $1");  // unterminated literal: untouched
  EXPECT_EQ(ToSqlitePlaceholders("$"), "$");
  EXPECT_EQ(ToSqlitePlaceholders(""), "");
}

TEST(RowTest, TextAndInt) {
  Row row({std::string("42"), std::nullopt, std::string("-9223372036854775808"), std::string("4x"),
           std::string("")});
  EXPECT_EQ(row.size(), 5u);
  EXPECT_EQ(row.Text(0), "42");
  EXPECT_EQ(row.Int(0), 42);
  EXPECT_TRUE(row.IsNull(1));
  EXPECT_EQ(row.Text(1), "");
  EXPECT_THROW(row.Int(1), DatabaseError);
  EXPECT_EQ(row.Int(2), INT64_MIN);
  EXPECT_THROW(row.Int(3), DatabaseError);
  EXPECT_THROW(row.Int(4), DatabaseError);
  EXPECT_THROW(row.Text(5), DatabaseError);
  EXPECT_THROW(row.Int(5), DatabaseError);
}

TEST(RowTest, FirstRowOfAResult) {
  EXPECT_FALSE(Result{}.FirstRow().has_value());
  Result r;
  r.rows.emplace_back(std::vector<std::optional<std::string>>{std::string("a")});
  r.rows.emplace_back(std::vector<std::optional<std::string>>{std::string("b")});
  auto first = std::move(r).FirstRow();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->Text(0), "a");
}

class FromEnvTest : public ::testing::Test {
 protected:
  test_support::TempDir temp_{"storage-env"};
  const std::filesystem::path& dir_ = temp_.path();
  ScopedEnv url_{"DATABASE_URL", nullptr};
  ScopedEnv data_{"VIGIL_DATA_DIR", nullptr};
  ScopedEnv connections_{"VIGIL_DB_CONNECTIONS", nullptr};
  ScopedEnv waiting_{"VIGIL_DB_MAX_WAITING", nullptr};
};

TEST_F(FromEnvTest, SqliteInTheDataDirWhichIsCreated) {
  const auto data = dir_ / "nested" / "data";
  ScopedEnv d("VIGIL_DATA_DIR", data.c_str());
  const DatabaseOptions o = DatabaseOptions::FromEnv("catalog");
  EXPECT_EQ(o.engine, Engine::kSqlite);
  EXPECT_EQ(o.target, (data / "catalog.db").string());
  EXPECT_TRUE(std::filesystem::is_directory(data));
  EXPECT_EQ(o.connections, 4u);
  EXPECT_EQ(o.max_waiting, 1024u);
}

TEST_F(FromEnvTest, DataDirDefaultsToDotData) {
  ScopedEnv d("DATABASE_URL", "");  // empty counts as unset
  const auto cwd = std::filesystem::current_path();
  std::filesystem::create_directories(dir_);
  std::filesystem::current_path(dir_);
  DatabaseOptions o;
  EXPECT_NO_THROW(o = DatabaseOptions::FromEnv("auth"));
  std::filesystem::current_path(cwd);
  EXPECT_EQ(o.target, "./data/auth.db");
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "data"));
}

TEST_F(FromEnvTest, PostgresUrls) {
  {
    ScopedEnv u("DATABASE_URL", "postgres://u:pw@db.internal:5433/catalog");
    const DatabaseOptions o = DatabaseOptions::FromEnv("catalog");
    EXPECT_EQ(o.engine, Engine::kPostgres);
    EXPECT_EQ(o.target, "postgres://u:pw@db.internal:5433/catalog");
  }
  ScopedEnv u("DATABASE_URL", "postgresql://localhost/x?sslmode=disable");
  EXPECT_EQ(DatabaseOptions::FromEnv("x").engine, Engine::kPostgres);
}

TEST_F(FromEnvTest, BadUrlsNameTheVariableButNotTheValue) {
  for (const char* bad : {"mysql://u:hunter2@h/db", "postgresql://u:hunter2@h/db?nonsense=1",
                          "postgres://u:hunter2%zz@h/db"}) {
    ScopedEnv u("DATABASE_URL", bad);
    try {
      DatabaseOptions::FromEnv("catalog");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const telemetry::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("DATABASE_URL"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
  }
}

TEST_F(FromEnvTest, PoolSizes) {
  ScopedEnv d("VIGIL_DATA_DIR", dir_.c_str());
  {
    ScopedEnv c("VIGIL_DB_CONNECTIONS", "64");
    ScopedEnv w("VIGIL_DB_MAX_WAITING", "0");
    const DatabaseOptions o = DatabaseOptions::FromEnv("s");
    EXPECT_EQ(o.connections, 64u);
    EXPECT_EQ(o.max_waiting, 0u);
  }
  for (const char* bad : {"0", "65", "four", "-1", "2.5"}) {
    ScopedEnv c("VIGIL_DB_CONNECTIONS", bad);
    try {
      DatabaseOptions::FromEnv("s");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const telemetry::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("VIGIL_DB_CONNECTIONS"), std::string::npos);
    }
  }
  ScopedEnv w("VIGIL_DB_MAX_WAITING", "lots");
  try {
    DatabaseOptions::FromEnv("s");
    ADD_FAILURE() << "accepted";
  } catch (const telemetry::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("VIGIL_DB_MAX_WAITING"), std::string::npos);
  }
}

TEST_F(FromEnvTest, DataDirThatCannotBeCreated) {
  std::filesystem::create_directories(dir_);
  const auto file = dir_ / "a-file";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  ScopedEnv d("VIGIL_DATA_DIR", (file / "sub").c_str());
  try {
    DatabaseOptions::FromEnv("s");
    ADD_FAILURE() << "accepted";
  } catch (const telemetry::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("VIGIL_DATA_DIR"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vigil::storage

#include "store.hpp"

#include <algorithm>
#include <array>
#include <numeric>

namespace vigil::catalog {

namespace {

using storage::Param;
using storage::Row;
using storage::Session;
using storage::Statement;

// Version 1: the tables and an index for each query path: the id (primary key) for
// reads and the unfiltered listing, (category, id) for a category's pages in id order,
// name for prefix search.
constexpr std::string_view kSchemaSqlite = R"(
CREATE TABLE items (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  category TEXT NOT NULL,
  price_cents BIGINT NOT NULL,
  stock BIGINT NOT NULL CHECK (stock >= 0),
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX items_name ON items (name);
CREATE INDEX items_category_id ON items (category, id);
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  released_at BIGINT NULL
);
CREATE TABLE reservation_lines (
  reservation_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  quantity BIGINT NOT NULL,
  price_cents BIGINT NOT NULL,
  line_no BIGINT NOT NULL,
  PRIMARY KEY (reservation_id, item_id)
)
)";

// The same with bytewise ("C") comparison of text, as SQLite's default BINARY collation.
constexpr std::string_view kSchemaPostgres = R"(
CREATE TABLE items (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL,
  category TEXT COLLATE "C" NOT NULL,
  price_cents BIGINT NOT NULL,
  stock BIGINT NOT NULL CHECK (stock >= 0),
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX items_name ON items (name);
CREATE INDEX items_category_id ON items (category, id);
CREATE TABLE reservations (
  id TEXT COLLATE "C" PRIMARY KEY,
  created_at BIGINT NOT NULL,
  released_at BIGINT NULL
);
CREATE TABLE reservation_lines (
  reservation_id TEXT COLLATE "C" NOT NULL,
  item_id TEXT COLLATE "C" NOT NULL,
  quantity BIGINT NOT NULL,
  price_cents BIGINT NOT NULL,
  line_no BIGINT NOT NULL,
  PRIMARY KEY (reservation_id, item_id)
)
)";

constexpr std::array<storage::Migration, 1> kMigrations = {{
    {1, "items and reservations", kSchemaSqlite, kSchemaPostgres},
}};

// Columns of every item read, in this order.
Item ItemFromRow(const Row& row) {
  Item item;
  item.id = std::string(row.Text(0));
  item.fields.name = std::string(row.Text(1));
  item.fields.category = std::string(row.Text(2));
  item.fields.price_cents = row.Int(3);
  item.fields.stock = row.Int(4);
  return item;
}

const Statement kInsertItem{
    "INSERT INTO items (id, name, category, price_cents, stock, version, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, 1, $6, $7)"};
const Statement kSelectItem{
    "SELECT id, name, category, price_cents, stock FROM items WHERE id = $1"};
const Statement kUpdateItem{
    "UPDATE items SET name = $2, category = $3, price_cents = $4, stock = $5, "
    "version = version + 1, updated_at = $6 WHERE id = $1 RETURNING id"};
const Statement kDeleteItem{"DELETE FROM items WHERE id = $1 RETURNING id"};

// One statement per filter combination, so that each can use its index.
const Statement kListAll{
    "SELECT id, name, category, price_cents, stock FROM items "
    "WHERE id > $1 ORDER BY id LIMIT $2"};
const Statement kListCategory{
    "SELECT id, name, category, price_cents, stock FROM items "
    "WHERE category = $1 AND id > $2 ORDER BY id LIMIT $3"};
const Statement kListPrefix{
    "SELECT id, name, category, price_cents, stock FROM items "
    "WHERE name >= $1 AND name < $2 AND id > $3 ORDER BY id LIMIT $4"};
const Statement kListPrefixCategory{
    "SELECT id, name, category, price_cents, stock FROM items "
    "WHERE category = $1 AND name >= $2 AND name < $3 AND id > $4 ORDER BY id LIMIT $5"};

const Statement kInsertReservation{
    "INSERT INTO reservations (id, created_at) VALUES ($1, $2) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"};
const Statement kSelectReservationLines{
    "SELECT item_id, quantity, price_cents FROM reservation_lines "
    "WHERE reservation_id = $1 ORDER BY line_no"};
// The guard `stock >= quantity` and the decrement are one statement: two reservations
// racing for the last units cannot both pass it.
const Statement kTakeStock{
    "UPDATE items SET stock = stock - $2, version = version + 1, updated_at = $3 "
    "WHERE id = $1 AND stock >= $4 RETURNING price_cents"};
const Statement kItemExists{"SELECT stock FROM items WHERE id = $1"};
const Statement kInsertReservationLine{
    "INSERT INTO reservation_lines (reservation_id, item_id, quantity, price_cents, line_no) "
    "VALUES ($1, $2, $3, $4, $5)"};
const Statement kMarkReleased{
    "UPDATE reservations SET released_at = $2 WHERE id = $1 AND released_at IS NULL RETURNING id"};
const Statement kReturnStock{
    "UPDATE items SET stock = stock + $2, version = version + 1, updated_at = $3 "
    "WHERE id = $1 RETURNING id"};

std::vector<ReservationLine> StoredLines(Session& s, std::string_view id) {
  std::vector<ReservationLine> lines;
  for (const Row& row : s.Query(kSelectReservationLines, {id}).rows) {
    lines.push_back({std::string(row.Text(0)), row.Int(1), row.Int(2)});
  }
  return lines;
}

}  // namespace

std::span<const storage::Migration> Migrations() noexcept { return kMigrations; }

std::optional<std::string> PrefixUpperBound(std::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty()) {
    // The last code point starts at the last byte that is not a continuation byte.
    std::size_t start = bound.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(bound[start]) & 0xC0) == 0x80) --start;
    const auto* p = reinterpret_cast<const unsigned char*>(bound.data() + start);
    const std::size_t n = bound.size() - start;
    std::uint32_t cp = 0;
    if (n == 1) {
      cp = p[0];
    } else if (n == 2) {
      cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    } else if (n == 3) {
      cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    } else {
      cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    }
    bound.resize(start);
    if (cp >= 0x10FFFF) continue;  // no larger code point: carry into the previous one
    ++cp;
    if (cp == 0xD800) cp = 0xE000;  // surrogates are not characters
    if (cp < 0x80) {
      bound.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      bound.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      bound.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      bound.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      bound.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      bound.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      bound.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      bound.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      bound.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      bound.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return bound;
  }
  return std::nullopt;
}

asio::awaitable<Item> ItemStore::Create(const telemetry::RequestContext& context, Item item,
                                        std::int64_t now_ms) {
  co_await db_.Transact(context, [&](Session& s) {
    const ItemFields& f = item.fields;
    s.Query(kInsertItem, {item.id, f.name, f.category, f.price_cents, f.stock, now_ms, now_ms});
  });
  co_return item;
}

asio::awaitable<std::optional<Item>> ItemStore::Get(const telemetry::RequestContext& context,
                                                    std::string id) {
  co_return co_await db_.Transact(context, [&](Session& s) -> std::optional<Item> {
    auto row = s.Query(kSelectItem, {id}).FirstRow();
    if (!row) return std::nullopt;
    return ItemFromRow(*row);
  });
}

asio::awaitable<std::optional<Item>> ItemStore::Update(const telemetry::RequestContext& context,
                                                       Item item, std::int64_t now_ms) {
  const bool found = co_await db_.Transact(context, [&](Session& s) {
    const ItemFields& f = item.fields;
    return !s.Query(kUpdateItem, {item.id, f.name, f.category, f.price_cents, f.stock, now_ms})
                .rows.empty();
  });
  if (!found) co_return std::nullopt;
  co_return item;
}

asio::awaitable<bool> ItemStore::Delete(const telemetry::RequestContext& context, std::string id) {
  co_return co_await db_.Transact(
      context, [&](Session& s) { return !s.Query(kDeleteItem, {id}).rows.empty(); });
}

asio::awaitable<ItemPage> ItemStore::List(const telemetry::RequestContext& context,
                                          ListQuery query) {
  std::optional<std::string> upper;
  if (!query.prefix.empty()) {
    upper = PrefixUpperBound(query.prefix);
    // Only a prefix of U+10FFFF characters has no bound; no real name starts so.
    if (!upper) co_return ItemPage{};
  }
  // One row more than asked tells whether another page follows.
  const std::int64_t fetch = query.limit + 1;
  storage::Result result = co_await db_.Transact(context, [&](Session& s) {
    const std::string_view after = query.after;
    if (query.prefix.empty() && query.category.empty()) {
      return s.Query(kListAll, {after, fetch});
    }
    if (query.prefix.empty()) {
      return s.Query(kListCategory, {std::string_view(query.category), after, fetch});
    }
    if (query.category.empty()) {
      return s.Query(kListPrefix,
                     {std::string_view(query.prefix), std::string_view(*upper), after, fetch});
    }
    return s.Query(kListPrefixCategory,
                   {std::string_view(query.category), std::string_view(query.prefix),
                    std::string_view(*upper), after, fetch});
  });
  ItemPage page;
  page.more = static_cast<std::int64_t>(result.rows.size()) > query.limit;
  if (page.more) result.rows.resize(static_cast<std::size_t>(query.limit));
  page.items.reserve(result.rows.size());
  for (const Row& row : result.rows) page.items.push_back(ItemFromRow(row));
  co_return page;
}

asio::awaitable<Reservation> ItemStore::Reserve(const telemetry::RequestContext& context,
                                                Reservation request, std::int64_t now_ms) {
  co_return co_await db_.Transact(context, [&](Session& s) {
    Reservation out;
    out.id = request.id;
    // The write comes first: on SQLite the transaction then holds the write lock from
    // its first statement, and on PostgreSQL a concurrent duplicate waits here for the
    // first to commit and then finds it.
    if (s.Query(kInsertReservation, {request.id, now_ms}).rows.empty()) {
      out.lines = StoredLines(s, request.id);
      return out;
    }
    // Items are updated in id order whatever the request's order, so that two
    // reservations of the same items lock their rows in the same order and cannot
    // deadlock each other on PostgreSQL.
    std::vector<std::size_t> order(request.lines.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return request.lines[a].item_id < request.lines[b].item_id;
    });
    for (const std::size_t i : order) {
      ReservationLine& line = request.lines[i];
      auto taken =
          s.Query(kTakeStock, {line.item_id, line.quantity, now_ms, line.quantity}).FirstRow();
      if (!taken) {
        // Throwing rolls back every line already taken.
        if (!s.Query(kItemExists, {line.item_id}).FirstRow()) throw UnknownItem(i, line.item_id);
        throw InsufficientStock(line.item_id);
      }
      line.price_cents = taken->Int(0);
      s.Query(kInsertReservationLine, {request.id, line.item_id, line.quantity, line.price_cents,
                                       static_cast<std::int64_t>(i)});
    }
    out.lines = request.lines;
    out.created = true;
    return out;
  });
}

asio::awaitable<std::vector<std::string>> ItemStore::Release(
    const telemetry::RequestContext& context, std::string id, std::int64_t now_ms) {
  co_return co_await db_.Transact(context, [&](Session& s) {
    std::vector<std::string> items;
    // Marking the reservation released is the guard that gives stock back only once.
    if (s.Query(kMarkReleased, {id, now_ms}).rows.empty()) return items;
    std::vector<ReservationLine> lines = StoredLines(s, id);
    std::sort(lines.begin(), lines.end(), [](const ReservationLine& a, const ReservationLine& b) {
      return a.item_id < b.item_id;
    });
    for (const ReservationLine& line : lines) {
      // An item deleted since has no stock to give back to.
      if (!s.Query(kReturnStock, {line.item_id, line.quantity, now_ms}).rows.empty()) {
        items.push_back(line.item_id);
      }
    }
    return items;
  });
}

}  // namespace vigil::catalog

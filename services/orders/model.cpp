#include "model.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <vigil/http/exchange.hpp>
#include <vigil/service/ids.hpp>
#include <vigil/service/json_body.hpp>

namespace vigil::orders {

namespace json = boost::json;

std::vector<LineRequest> ReadCreateOrder(const http::Exchange& exchange) {
  return ReadCreateOrder(service::ParseJsonObject(exchange));
}

std::vector<LineRequest> ReadCreateOrder(json::object body) {
  service::JsonReader reader(std::move(body));
  std::vector<service::JsonReader> items = reader.Objects("lines", 1, kMaxLines);
  reader.RejectUnknown();
  std::vector<LineRequest> lines;
  lines.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    service::JsonReader& item = items[i];
    LineRequest line;
    // Any string, then one message for every malformed id: the client needs to learn
    // the form of an id, not a length range.
    line.item_id = item.String("item_id", 0, 1024);
    if (!service::IsValidId(line.item_id)) {
      throw http::HttpError(422, item.path() + ".item_id: must be an item id (" +
                                     std::to_string(service::kIdLength) + " lowercase hex digits)");
    }
    line.quantity = item.Integer("quantity", 1, kMaxQuantity);
    item.RejectUnknown();
    const auto earlier = std::find_if(lines.begin(), lines.end(), [&](const LineRequest& l) {
      return l.item_id == line.item_id;
    });
    if (earlier != lines.end()) {
      throw http::HttpError(422, item.path() + ".item_id: the item is already in lines[" +
                                     std::to_string(earlier - lines.begin()) +
                                     "]; use one line per item");
    }
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end(),
            [](const LineRequest& a, const LineRequest& b) { return a.item_id < b.item_id; });
  return lines;
}

bool IsValidIdempotencyKey(std::string_view key) noexcept {
  if (key.empty() || key.size() > kMaxIdempotencyKey) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c >= '!' && c <= '~'; });
}

std::optional<std::string> ReadIdempotencyKey(const http::Exchange& exchange) {
  const auto& fields = exchange.request();
  const std::size_t count = fields.count(kIdempotencyKeyHeader);
  if (count == 0) return std::nullopt;
  if (count > 1) throw http::HttpError(400, "Idempotency-Key: send the header once");
  const std::string_view key = exchange.header(kIdempotencyKeyHeader);
  if (!IsValidIdempotencyKey(key)) {
    throw http::HttpError(400, "Idempotency-Key: must be 1 to " +
                                   std::to_string(kMaxIdempotencyKey) +
                                   " visible ASCII characters");
  }
  return std::string(key);
}

std::string RequestHash(std::span<const LineRequest> lines) {
  std::string canonical;
  for (const LineRequest& line : lines) {
    canonical += line.item_id;
    canonical += '=';
    canonical += std::to_string(line.quantity);
    canonical += '\n';
  }
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(canonical.data()),
                     canonical.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest.size());
  for (const unsigned char byte : digest) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 0xF];
  }
  return hex;
}

std::string FormatTimestamp(std::int64_t unix_ms) {
  namespace chrono = std::chrono;
  const chrono::sys_time<chrono::milliseconds> time{chrono::milliseconds(unix_ms)};
  const chrono::sys_days day = chrono::floor<chrono::days>(time);
  const chrono::year_month_day date{day};
  const chrono::hh_mm_ss<chrono::milliseconds> clock{time - day};
  char out[32];
  std::snprintf(
      out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
      static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
      static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return out;
}

json::object OrderJson(const Order& order) {
  json::array lines;
  lines.reserve(order.lines.size());
  for (const OrderLine& line : order.lines) {
    lines.push_back(json::object{
        {"item_id", line.item_id}, {"quantity", line.quantity}, {"price_cents", line.price_cents}});
  }
  return json::object{{"id", order.id},
                      {"status", order.status},
                      {"total_cents", order.total_cents},
                      {"lines", std::move(lines)},
                      {"created_at", FormatTimestamp(order.created_at_ms)}};
}

}  // namespace vigil::orders

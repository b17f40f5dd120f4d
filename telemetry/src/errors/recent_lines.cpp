#include "errors/recent_lines.hpp"

#include <algorithm>
#include <cstring>

#include <vigil/telemetry/text.hpp>

#include "errors/scrub.hpp"
#include "log/json.hpp"

namespace vigil::telemetry::internal {
namespace {

// Copies at most `room` bytes of `s` (never splitting a UTF-8 sequence) to `out`.
std::size_t CopyCut(std::string_view s, char* out, std::size_t room) {
  const std::string_view cut = text::Utf8Prefix(s, room);
  if (!cut.empty()) std::memcpy(out, cut.data(), cut.size());  // an empty view may be null
  return cut.size();
}

}  // namespace

std::string FieldText(const Field& field) {
  char buffer[kMaxNumberSize];
  std::size_t n = 0;
  const std::uint64_t bits = field.value_bits();
  switch (field.type()) {
    case Field::Type::kString:
      return std::string(field.string_value());
    case Field::Type::kBool:
      return field.bool_value() ? "true" : "false";
    case Field::Type::kInt:
      n = FormatInt(field.int_value(), buffer);
      break;
    case Field::Type::kUint:
      n = FormatUint(bits, buffer);
      break;
    case Field::Type::kDouble:
    case Field::Type::kDurationMs:
      n = FormatDouble(field.double_value(), buffer);
      break;
    case Field::Type::kDurationNs:
      n = FormatDurationNs(field.int_value(), buffer);
      break;
  }
  return std::string(buffer, n);
}

RecentLines::RecentLines() : ring_(kCapacity) {}

void RecentLines::Add(const LogLineView& line) {
  if (!line.has_context) return;
  // Formatted outside the lock.
  Entry e;
  e.time = line.time_unix_nano;
  e.level = line.level;
  e.trace_id = line.trace_id;
  e.request_id_size =
      static_cast<std::uint8_t>(CopyCut(line.request_id, e.request_id.data(), e.request_id.size()));
  e.message_size = static_cast<std::uint16_t>(CopyCut(line.msg, e.message.data(), kMaxMessage));
  // Each field as [key size][key][value size][value], each part cut to what fits.
  std::size_t used = 0;
  for (const Field& f : line.fields) {
    if (f.key().starts_with("sentry.")) continue;
    const std::string value = IsSensitiveName(f.key()) ? std::string(kFiltered) : FieldText(f);
    if (used + 2 + f.key().size() + std::min<std::size_t>(value.size(), 1) > kMaxData) break;
    for (const std::string_view part : {f.key(), std::string_view(value)}) {
      const std::size_t room = std::min<std::size_t>(255, kMaxData - used - 1);
      const std::size_t n = CopyCut(part, e.data.data() + used + 1, room);
      e.data[used] = static_cast<char>(n);
      used += 1 + n;
    }
    ++e.data_fields;
  }
  e.data_size = static_cast<std::uint16_t>(used);
  std::lock_guard lock(mu_);
  ring_[next_] = e;
  next_ = (next_ + 1) % kCapacity;
  size_ = std::min(size_ + 1, kCapacity);
}

std::vector<Breadcrumb> RecentLines::Of(std::string_view request_id, const TraceId& trace_id,
                                        std::int64_t until_unix_nano, std::size_t max) {
  std::vector<Breadcrumb> crumbs;
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < size_; ++i) {
    const Entry& e = ring_[(next_ + kCapacity - size_ + i) % kCapacity];
    const bool same = request_id.empty()
                          ? e.trace_id == trace_id
                          : std::string_view(e.request_id.data(), e.request_id_size) == request_id;
    if (!same || e.time > until_unix_nano) continue;
    Breadcrumb b;
    b.time_unix_nano = e.time;
    b.level = ErrorLevelOf(e.level);
    b.category = "log";
    b.message.assign(e.message.data(), e.message_size);
    const char* p = e.data.data();
    for (std::uint8_t f = 0; f < e.data_fields; ++f) {
      std::string parts[2];
      for (std::string& part : parts) {
        const auto n = static_cast<unsigned char>(*p++);
        part.assign(p, n);
        p += n;
      }
      b.data.emplace_back(std::move(parts[0]), std::move(parts[1]));
    }
    crumbs.push_back(std::move(b));
  }
  if (crumbs.size() > max)
    crumbs.erase(crumbs.begin(), crumbs.end() - static_cast<std::ptrdiff_t>(max));
  return crumbs;
}

}  // namespace vigil::telemetry::internal

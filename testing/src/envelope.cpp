#include "vigil/testing/envelope.hpp"

#include <charconv>
#include <cstddef>

namespace vigil::test_support {
namespace {

// The string value of "key":"..." in a header (no escapes in what Sentry's headers hold).
std::string StringMember(std::string_view json, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":\"";
  const std::size_t at = json.find(needle);
  if (at == std::string_view::npos) return {};
  const std::size_t start = at + needle.size();
  const std::size_t end = json.find('"', start);
  return end == std::string_view::npos ? std::string()
                                       : std::string(json.substr(start, end - start));
}

// The number of "key":N (spaces allowed around it), or nullopt.
std::optional<std::size_t> NumberMember(std::string_view json, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":";
  const std::size_t at = json.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t i = at + needle.size();
  while (i < json.size() && json[i] == ' ') ++i;
  std::size_t value = 0;
  const auto [ptr, ec] = std::from_chars(json.data() + i, json.data() + json.size(), value);
  if (ec != std::errc() || ptr == json.data() + i) return std::nullopt;
  return value;
}

}  // namespace

std::vector<const EnvelopeItem*> Envelope::Items(std::string_view type) const {
  std::vector<const EnvelopeItem*> out;
  for (const EnvelopeItem& item : items) {
    if (item.type == type) out.push_back(&item);
  }
  return out;
}

std::optional<Envelope> SplitEnvelope(std::string_view data) {
  Envelope envelope;
  std::size_t newline = data.find('\n');
  if (newline == std::string_view::npos) return std::nullopt;
  envelope.header = std::string(data.substr(0, newline));
  data.remove_prefix(newline + 1);
  while (!data.empty()) {
    newline = data.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    EnvelopeItem item;
    item.header = std::string(data.substr(0, newline));
    item.type = StringMember(item.header, "type");
    data.remove_prefix(newline + 1);
    if (const auto length = NumberMember(item.header, "length")) {
      if (data.size() < *length) return std::nullopt;
      item.payload = std::string(data.substr(0, *length));
      data.remove_prefix(*length);
      // The newline after a payload may be left out at the very end.
      if (!data.empty()) {
        if (data.front() != '\n') return std::nullopt;
        data.remove_prefix(1);
      }
    } else {
      newline = data.find('\n');
      item.payload = std::string(data.substr(0, newline));
      data.remove_prefix(newline == std::string_view::npos ? data.size() : newline + 1);
    }
    envelope.items.push_back(std::move(item));
  }
  return envelope;
}

}  // namespace vigil::test_support

#include <boost/beast/core/string.hpp>

#include <bit>
#include <cstring>
#include <stdexcept>
#include <vigil/http/field_block.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::http {

bool IsFieldValue(std::string_view value) noexcept {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

void FieldBlock::Check(std::string_view name) {
  if (!telemetry::text::IsToken(name) || name.size() >= 64) {
    throw std::invalid_argument("field name \"" + std::string(name) + "\" is not a token");
  }
  if (FindSlow(name) >= 0) {
    throw std::invalid_argument("field \"" + std::string(name) + "\" is given twice");
  }
  if (entries_.size() == kMaxEntries) throw std::invalid_argument("too many fields");
}

FieldBlock& FieldBlock::Set(std::string_view name, std::string_view value, Existing existing) {
  Check(name);
  if (!IsFieldValue(value)) {
    throw std::invalid_argument("the value of field \"" + std::string(name) +
                                "\" has a control character");
  }
  Entry entry{std::string(name), std::string(), existing, lines_.size()};
  entry.line.append(name).append(": ").append(value).append("\r\n");
  lines_.append(entry.line);
  lengths_ |= std::uint64_t{1} << name.size();
  entries_.push_back(std::move(entry));
  return *this;
}

FieldBlock& FieldBlock::Remove(std::string_view name) {
  Check(name);
  lengths_ |= std::uint64_t{1} << name.size();
  entries_.push_back(Entry{std::string(name), std::string(), kReplace, lines_.size()});
  return *this;
}

int FieldBlock::FindSlow(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const std::string& n = entries_[i].name;
    if (n.size() != name.size()) continue;
    // Names come as the entry spells them nearly always (a Vigil service's answer): an
    // exact comparison first, the case-insensitive one only when it fails.
    if (std::memcmp(n.data(), name.data(), n.size()) == 0 ||
        boost::beast::iequals(boost::beast::string_view(n.data(), n.size()),
                              boost::beast::string_view(name.data(), name.size()))) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void FieldBlock::AppendTo(std::string& out, std::uint32_t skip) const {
  if (skip == 0) {
    out.append(lines_);
    return;
  }
  // The lines before the first entry the response kept go in one piece (a kept
  // Cache-Control, the usual case, comes last but the removals).
  const auto first = static_cast<std::size_t>(std::countr_zero(skip));
  out.append(lines_, 0, entries_[first].offset);
  for (std::size_t i = first + 1; i < entries_.size(); ++i) {
    if ((skip >> i & 1U) == 0) out.append(entries_[i].line);
  }
}

void FieldBlock::ApplyTo(ResponseHeader& head) const {
  for (const Entry& e : entries_) {
    const boost::beast::string_view name(e.name.data(), e.name.size());
    if (e.line.empty()) {
      head.erase(name);
      continue;
    }
    if (e.existing == kKeep && head.find(name) != head.end()) continue;
    // The line is "Name: value\r\n".
    const std::string_view value =
        std::string_view(e.line).substr(e.name.size() + 2, e.line.size() - e.name.size() - 4);
    head.set(name, boost::beast::string_view(value.data(), value.size()));
  }
}

}  // namespace vigil::http

// Baggage: the W3C `baggage` header, percent-coding and limits.
//
//   baggage-string = list-member 0*179( OWS "," OWS list-member )
//   list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//   property       = key OWS "=" OWS value / key OWS
//   key            = token
//   value          = *baggage-octet
//
// Invariant kept by both the parser and Set(): ToHeader() of any Baggage is at most
// kMaxBytes long and has at most kMaxMembers members, so what we accept we can always
// pass on, and formatting then parsing gives back the same object.
#include <algorithm>
#include <vigil/telemetry/context.hpp>
#include <vigil/telemetry/text.hpp>

#include "context/w3c_text.hpp"
#include "utf8.hpp"

namespace vigil::telemetry {
namespace {

constexpr char kUpperHex[] = "0123456789ABCDEF";

// '%' is a baggage-octet but must be escaped itself, or decoding would misread it.
bool NeedsEscape(char c) noexcept { return c == '%' || !w3c::Is(c, w3c::kBaggageOctet); }

std::size_t EncodedSize(std::string_view value) noexcept {
  std::size_t n = value.size();
  for (char c : value) {
    if (NeedsEscape(c)) n += 2;
  }
  return n;
}

void AppendEncoded(std::string_view value, std::string& out) {
  for (char c : value) {
    if (NeedsEscape(c)) {
      const auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kUpperHex[b >> 4]);
      out.push_back(kUpperHex[b & 0x0f]);
    } else {
      out.push_back(c);
    }
  }
}

std::size_t MemberSize(std::string_view key, std::string_view value,
                       std::string_view properties) noexcept {
  return key.size() + 1 + EncodedSize(value) + (properties.empty() ? 0 : 1 + properties.size());
}

// Appends `bytes` to `out`, replacing each maximal ill-formed UTF-8 subpart with
// U+FFFD, as the Baggage spec asks for decoded octets that are not UTF-8.
void AppendUtf8Sanitized(std::string_view bytes, std::string& out) {
  const utf8::Measured m = utf8::Measure(bytes);
  if (m.valid) {
    out.append(bytes);
    return;
  }
  const std::size_t start = out.size();
  out.resize(start + m.repaired_size);
  utf8::WriteRepaired(bytes, out.data() + start);
}

// Percent-decodes `raw` (all baggage-octets) into `out`; false on a malformed escape.
bool PercentDecode(std::string_view raw, std::string& out) {
  if (raw.find('%') == std::string_view::npos) {
    out.assign(raw);  // the common case: plain ASCII, nothing to decode
    return true;
  }
  std::optional<std::string> bytes = text::PercentDecode(raw);
  if (!bytes) return false;
  // Only escapes can yield non-ASCII: unescaped baggage-octets are all below 0x80.
  const bool ascii = std::all_of(bytes->begin(), bytes->end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    out = *std::move(bytes);
  } else {
    out.clear();
    AppendUtf8Sanitized(*bytes, out);
  }
  return true;
}

std::size_t SkipOws(std::string_view s, std::size_t i) noexcept {
  while (i < s.size() && w3c::IsOws(s[i])) ++i;
  return i;
}

std::size_t SkipWhile(std::string_view s, std::size_t i, std::uint8_t cls) noexcept {
  while (i < s.size() && w3c::Is(s[i], cls)) ++i;
  return i;
}

// One property, already trimmed: `key` or `key OWS "=" OWS *baggage-octet`.
bool IsValidProperty(std::string_view p) noexcept {
  std::size_t i = SkipWhile(p, 0, w3c::kToken);
  if (i == 0) return false;
  i = SkipOws(p, i);
  if (i == p.size()) return true;
  if (p[i] != '=') return false;
  i = SkipOws(p, i + 1);
  return SkipWhile(p, i, w3c::kBaggageOctet) == p.size();
}

// The text after a member's first ';', trimmed: property *( OWS ";" OWS property ).
bool IsValidPropertyList(std::string_view text) noexcept {
  std::size_t pos = 0;
  while (true) {
    const std::size_t semi = text.find(';', pos);
    const std::string_view part =
        text.substr(pos, semi == std::string_view::npos ? semi : semi - pos);
    if (!IsValidProperty(w3c::TrimOws(part))) return false;
    if (semi == std::string_view::npos) return true;
    pos = semi + 1;
  }
}

}  // namespace

// Fills Baggage's member list directly: members arrive already validated, and Set()
// would collapse the duplicate keys the spec asks us to preserve.
struct BaggageParser {
  static ParseResult<Baggage> Parse(std::string_view header) {
    Baggage bag;
    std::string_view dropped;  // why the first dropped member was dropped
    const auto drop = [&dropped](std::string_view why) {
      if (dropped.empty()) dropped = why;
    };
    std::size_t canonical_size = 0;
    std::size_t pos = 0;
    while (true) {
      const std::size_t comma = header.find(',', pos);
      const std::string_view member =
          w3c::TrimOws(header.substr(pos, comma == std::string_view::npos ? comma : comma - pos));
      // The grammar has no empty members, but RFC 9110 §5.6.1 tells a recipient to ignore
      // empty list elements, and combining field lines (one of them empty) makes them.
      if (!member.empty()) {
        if (bag.members_.size() == Baggage::kMaxMembers) {
          drop("baggage: more than 64 list members, later ones dropped");
        } else {
          Baggage::Member m;
          // One bad member costs only itself: the others were set by other parties, and
          // the spec's limits already have us drop whole members rather than the header.
          const std::string_view bad = ParseMember(member, m);
          if (!bad.empty()) {
            drop(bad);
          } else {
            // Decoding can grow a value (each invalid UTF-8 byte becomes U+FFFD, escaped
            // as nine characters), so the limit is checked on what we would send.
            const std::size_t size =
                (bag.members_.empty() ? 0 : 1) + MemberSize(m.key, m.value, m.properties);
            if (canonical_size + size > Baggage::kMaxBytes) {
              drop("baggage: longer than 8192 bytes, members dropped");
            } else {
              canonical_size += size;
              if (bag.members_.empty()) bag.members_.reserve(4);
              bag.members_.push_back(std::move(m));
            }
          }
        }
      }
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    return ParseResult<Baggage>{std::move(bag), dropped};
  }

 private:
  // Parses one trimmed, non-empty list member into `m`; returns why it is malformed, or
  // "" when it is not.
  static std::string_view ParseMember(std::string_view member, Baggage::Member& m) {
    std::size_t i = SkipWhile(member, 0, w3c::kToken);
    if (i == 0) return "baggage: key is not a token";
    const std::string_view key = member.substr(0, i);
    i = SkipOws(member, i);
    if (i == member.size() || member[i] != '=') return "baggage: list member without '='";
    i = SkipOws(member, i + 1);
    const std::size_t value_end = SkipWhile(member, i, w3c::kBaggageOctet);
    const std::string_view raw_value = member.substr(i, value_end - i);
    i = SkipOws(member, value_end);
    std::string_view properties;
    if (i < member.size()) {
      if (member[i] != ';') return "baggage: invalid character in value";
      properties = w3c::TrimOws(member.substr(i + 1));
      if (!IsValidPropertyList(properties)) return "baggage: invalid property";
    }
    if (!PercentDecode(raw_value, m.value)) return "baggage: bad percent-escape";
    m.key.assign(key);
    m.properties.assign(properties);
    return {};
  }
};

std::optional<std::string_view> Baggage::Get(std::string_view key) const noexcept {
  for (const auto& m : members_) {
    if (m.key == key) return std::string_view(m.value);
  }
  return std::nullopt;
}

bool Baggage::Set(std::string_view key, std::string_view value, std::string_view properties) {
  properties = w3c::TrimOws(properties);
  if (!text::IsToken(key)) return false;
  // Properties go on the wire verbatim, so they must already be well-formed.
  if (!properties.empty() && !IsValidPropertyList(properties)) return false;

  // Size and count of the header as it would be after the change: the first member
  // with this key is replaced, later duplicates are dropped.
  std::size_t count = 1;
  std::size_t size = MemberSize(key, value, properties);
  for (const auto& m : members_) {
    if (m.key == key) continue;
    ++count;
    size += 1 + MemberSize(m.key, m.value, m.properties);
  }
  if (count > kMaxMembers || size > kMaxBytes) return false;

  Member fresh{std::string(key), std::string(value), std::string(properties)};
  const auto first = std::find_if(members_.begin(), members_.end(),
                                  [key](const Member& m) { return m.key == key; });
  if (first == members_.end()) {
    members_.push_back(std::move(fresh));
    return true;
  }
  *first = std::move(fresh);
  members_.erase(std::remove_if(first + 1, members_.end(),
                                [key](const Member& m) { return m.key == key; }),
                 members_.end());
  return true;
}

bool Baggage::Erase(std::string_view key) {
  const auto old_size = members_.size();
  members_.erase(std::remove_if(members_.begin(), members_.end(),
                                [key](const Member& m) { return m.key == key; }),
                 members_.end());
  return members_.size() != old_size;
}

std::string Baggage::ToHeader() const {
  std::string out;
  w3c::AppendBaggageHeader(*this, out);
  return out;
}

namespace w3c {

void AppendBaggageHeader(const Baggage& bag, std::string& out) {
  const auto& members = bag.members();
  if (members.empty()) return;
  std::size_t size = out.size() + members.size() - 1;
  for (const auto& m : members) size += MemberSize(m.key, m.value, m.properties);
  out.reserve(size);
  bool first = true;
  for (const auto& m : members) {
    if (!first) out.push_back(',');
    first = false;
    out.append(m.key);
    out.push_back('=');
    AppendEncoded(m.value, out);
    if (!m.properties.empty()) {
      out.push_back(';');
      out.append(m.properties);
    }
  }
}

}  // namespace w3c

ParseResult<Baggage> ParseBaggage(std::string_view header) { return BaggageParser::Parse(header); }

}  // namespace vigil::telemetry

// TraceState: validation, mutation and the tracestate header (W3C Trace Context).
//
// Keys follow the Level 1 grammar:
//   key              = simple-key / multi-tenant-key
//   simple-key       = lcalpha 0*255( keychar )
//   multi-tenant-key = tenant-id "@" system-id
//   tenant-id        = ( lcalpha / DIGIT ) 0*240( keychar )
//   system-id        = lcalpha 0*13( keychar )
//   keychar          = lcalpha / DIGIT / "_" / "-" / "*" / "/"
// and values are 0*255( %x20 / nblk-chr ) nblk-chr.
#include <algorithm>
#include <vigil/telemetry/context.hpp>

#include "context/w3c_text.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::size_t kMaxSimpleKey = 256;
constexpr std::size_t kMaxTenantId = 241;
constexpr std::size_t kMaxSystemId = 14;
constexpr std::size_t kMaxValue = 256;

bool AllKeyChars(std::string_view s) noexcept {
  for (char c : s) {
    if (!w3c::Is(c, w3c::kKeyChar)) return false;
  }
  return true;
}

}  // namespace

// Builds a TraceState directly in its private member list; the public Set() would
// re-validate every member and reorder them.
struct TraceStateParser {
  // Replaces the members of `ts`; returns the failure reason (leaving `ts` partly
  // filled), or "" on success.
  static std::string_view ParseInto(std::string_view header, TraceState& ts) {
    ts.members_.clear();
    std::size_t pos = 0;
    while (true) {
      const std::size_t comma = header.find(',', pos);
      const std::string_view member =
          w3c::TrimOws(header.substr(pos, comma == std::string_view::npos ? comma : comma - pos));
      // Empty members appear when several tracestate header lines are joined; they
      // carry nothing and are skipped.
      if (!member.empty()) {
        if (ts.members_.size() == TraceState::kMaxMembers) {
          return "tracestate: more than 32 list members";
        }
        const std::size_t eq = member.find('=');
        if (eq == std::string_view::npos) return "tracestate: list member without '='";
        const std::string_view key = member.substr(0, eq);
        const std::string_view value = member.substr(eq + 1);
        if (!TraceState::IsValidKey(key)) return "tracestate: invalid key";
        if (!TraceState::IsValidValue(value)) return "tracestate: invalid value";
        for (const auto& m : ts.members_) {
          if (m.key == key) return "tracestate: duplicate key";
        }
        if (ts.members_.empty()) ts.members_.reserve(4);
        ts.members_.push_back({std::string(key), std::string(value)});
      }
      if (comma == std::string_view::npos) return {};
      pos = comma + 1;
    }
  }
};

namespace w3c {

void ParseTracestateInto(std::string_view header, TraceState& out) {
  if (!TraceStateParser::ParseInto(header, out).empty()) out = TraceState{};
}

}  // namespace w3c

bool TraceState::IsValidKey(std::string_view key) noexcept {
  if (key.empty() || key.size() > kMaxSimpleKey) return false;
  const std::size_t at = key.find('@');
  if (at == std::string_view::npos) {
    return w3c::Is(key[0], w3c::kLcAlpha) && AllKeyChars(key.substr(1));
  }
  const std::string_view tenant = key.substr(0, at);
  const std::string_view system = key.substr(at + 1);
  if (tenant.empty() || tenant.size() > kMaxTenantId) return false;
  if (system.empty() || system.size() > kMaxSystemId) return false;
  // A second '@' is not a keychar, so AllKeyChars() rejects it.
  return w3c::Is(tenant[0], w3c::kLcAlpha | w3c::kDigit) && AllKeyChars(tenant.substr(1)) &&
         w3c::Is(system[0], w3c::kLcAlpha) && AllKeyChars(system.substr(1));
}

bool TraceState::IsValidValue(std::string_view value) noexcept {
  if (value.empty() || value.size() > kMaxValue) return false;
  if (value.back() == ' ') return false;
  for (char c : value) {
    if (!w3c::Is(c, w3c::kStateChr)) return false;
  }
  return true;
}

std::optional<std::string_view> TraceState::Get(std::string_view key) const noexcept {
  for (const auto& m : members_) {
    if (m.key == key) return std::string_view(m.value);
  }
  return std::nullopt;
}

bool TraceState::Set(std::string_view key, std::string_view value) {
  if (!IsValidKey(key) || !IsValidValue(value)) return false;
  const auto it = std::find_if(members_.begin(), members_.end(),
                               [key](const Member& m) { return m.key == key; });
  if (it != members_.end()) {
    std::string new_value(value);  // may throw: do it before touching the list
    std::rotate(members_.begin(), it, it + 1);
    members_.front().value = std::move(new_value);
    return true;
  }
  Member m{std::string(key), std::string(value)};
  if (members_.size() >= kMaxMembers) {
    // Full: the rightmost member is the one the spec says to drop first. After the
    // pop the capacity covers the insert, so nothing below can throw.
    members_.pop_back();
  }
  members_.insert(members_.begin(), std::move(m));
  return true;
}

bool TraceState::Erase(std::string_view key) {
  const auto it = std::find_if(members_.begin(), members_.end(),
                               [key](const Member& m) { return m.key == key; });
  if (it == members_.end()) return false;
  members_.erase(it);
  return true;
}

std::string TraceState::ToHeader() const {
  std::string out;
  w3c::AppendTraceStateHeader(*this, out);
  return out;
}

namespace w3c {

void AppendTraceStateHeader(const TraceState& ts, std::string& out) {
  const auto& members = ts.members();
  if (members.empty()) return;
  std::size_t size = out.size() + members.size() - 1;
  for (const auto& m : members) size += m.key.size() + 1 + m.value.size();
  out.reserve(size);
  bool first = true;
  for (const auto& m : members) {
    if (!first) out.push_back(',');
    first = false;
    out.append(m.key);
    out.push_back('=');
    out.append(m.value);
  }
}

}  // namespace w3c

ParseResult<TraceState> ParseTracestate(std::string_view header) {
  ParseResult<TraceState> result;
  result.error = TraceStateParser::ParseInto(header, result.value.emplace());
  if (!result.error.empty()) result.value.reset();
  return result;
}

}  // namespace vigil::telemetry

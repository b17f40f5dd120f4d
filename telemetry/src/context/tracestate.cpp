// TraceState: validation, mutation and the tracestate header (W3C Trace Context).
//
// Keys follow the Level 2 grammar, which replaced Level 1's separate simple and
// multi-tenant (`tenant@system`) forms with one rule that accepts both, lets any key start
// with a digit and treats '@' as an ordinary character after the first:
//   key     = ( lcalpha / DIGIT ) 0*255( keychar )
//   keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
// and values are 0*255( %x20 / nblk-chr ) nblk-chr.
//
// Invariant kept by both the parser and Set(): keys are unique, there are at most
// kMaxMembers members and ToHeader() is at most kMaxBytes long, so what we hold we can
// always pass on, and formatting then parsing gives back the same object.
#include <algorithm>
#include <vigil/telemetry/context.hpp>

#include "context/w3c_text.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::size_t kMaxKey = 256;
constexpr std::size_t kMaxValue = 256;
// The spec's truncation rule: "Entries larger than 128 characters long SHOULD be removed
// first. Then entries SHOULD be removed starting from the end of tracestate."
constexpr std::size_t kLongMember = 128;

constexpr std::string_view kOverLimits =
    "tracestate: over 32 members or 512 bytes, members dropped";
constexpr std::string_view kDuplicate = "tracestate: duplicate key, later member dropped";

// "key=value" as it is sent.
std::size_t MemberSize(std::string_view key, std::string_view value) noexcept {
  return key.size() + 1 + value.size();
}
std::size_t MemberSize(const TraceState::Member& m) noexcept { return MemberSize(m.key, m.value); }

// The size of the header of `members` (members joined by ',').
std::size_t HeaderSize(const std::vector<TraceState::Member>& members) noexcept {
  std::size_t size = members.empty() ? 0 : members.size() - 1;
  for (const auto& m : members) size += MemberSize(m);
  return size;
}

bool Fits(std::size_t count, std::size_t bytes) noexcept {
  return count <= TraceState::kMaxMembers && bytes <= TraceState::kMaxBytes;
}

// Removes members until `members` fit the limits, by the spec's rule: the rightmost member
// longer than 128 characters first, then the rightmost member. The first `keep` members
// are never removed (Set() keeps the member it just added). Never throws: erasing from a
// vector of nothrow-movable members does not allocate.
void Truncate(std::vector<TraceState::Member>& members, std::size_t keep) noexcept {
  std::size_t bytes = HeaderSize(members);
  while (!Fits(members.size(), bytes) && members.size() > keep) {
    auto victim = members.end() - 1;
    for (auto it = members.end(); it != members.begin() + static_cast<std::ptrdiff_t>(keep);) {
      --it;
      if (MemberSize(*it) > kLongMember) {
        victim = it;
        break;
      }
    }
    bytes -= MemberSize(*victim) + (members.size() > 1 ? 1 : 0);
    members.erase(victim);
  }
}

}  // namespace

// Builds a TraceState directly in its private member list; the public Set() would
// re-validate every member and reorder them.
struct TraceStateParser {
  // Replaces the members of `ts` with those of the list `header`. Returns false, leaving
  // `ts` empty, when a member breaks the grammar; `why` then says what was wrong, and on
  // success why members were dropped (empty when none was).
  //
  // The result is what the spec's steps give when applied in order: drop later duplicates,
  // then truncate to the limits (Truncate's rule). The list is read in one pass that
  // stores only members that can still be part of that result: once the short members
  // (<= 128 characters) alone fill the limits, every later member is going to be dropped,
  // and a long member that does not fit next to the short ones and the long ones before
  // it never will. So a header of thousands of members costs no more than a scan, and the
  // duplicate check compares against at most about 35 stored keys.
  static bool ParseInto(std::string_view header, TraceState& ts, std::string_view& why) {
    auto& members = ts.members_;
    members.clear();
    why = {};
    std::size_t bytes = 0;        // HeaderSize(members)
    std::size_t short_count = 0;  // the short members stored, and their header's size
    std::size_t short_bytes = 0;
    bool shorts_full = false;  // a short member did not fit: nothing later is kept
    bool longs_full = false;   // a long member did not fit: no later long one is kept
    // Keys of long members dropped for size: a later member with one of these keys is
    // still a duplicate (duplicates go before truncation). Empty unless a list is long.
    std::vector<std::string_view> dropped_keys;
    const auto drop = [&why](std::string_view reason) {
      if (why.empty()) why = reason;
    };

    std::size_t pos = 0;
    while (true) {
      const std::size_t comma = header.find(',', pos);
      const std::string_view member =
          w3c::TrimOws(header.substr(pos, comma == std::string_view::npos ? comma : comma - pos));
      // Empty members appear when several tracestate header lines are joined; they
      // carry nothing and are skipped.
      if (!member.empty()) {
        const std::size_t eq = member.find('=');
        const std::string_view key = member.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view() : member.substr(eq + 1);
        // A member we cannot read makes the whole list unusable: the spec lets a vendor
        // discard a header it cannot parse, and its test suite expects exactly that.
        const std::string_view bad =
            eq == std::string_view::npos       ? "tracestate: list member without '='"
            : !TraceState::IsValidKey(key)     ? "tracestate: invalid key"
            : !TraceState::IsValidValue(value) ? "tracestate: invalid value"
                                               : std::string_view();
        if (!bad.empty()) {
          members.clear();
          why = bad;
          return false;
        }
        const std::size_t size = MemberSize(key, value);
        const bool is_long = size > kLongMember;
        if (shorts_full) {
          drop(kOverLimits);
        } else if (is_long && longs_full) {
          // No later long member fits either; the key is remembered for the duplicate
          // check without comparing it to anything.
          dropped_keys.push_back(key);
          drop(kOverLimits);
        } else if (IsDuplicate(key, members, dropped_keys)) {
          // "Only one entry per key is allowed" (Combined Header Value), and "invalid
          // tracestate entries MAY also be discarded" (processing model): the leftmost
          // member is the most recent position, so it is the one kept, and the vendors'
          // other members survive the mistake. The W3C test suite would discard the whole
          // list instead; losing every vendor's state for one vendor's duplicate is the
          // worse outcome.
          drop(kDuplicate);
        } else if (!is_long) {
          const std::size_t with = short_bytes + (short_count == 0 ? 0 : 1) + size;
          if (!Fits(short_count + 1, with)) {
            shorts_full = true;
            drop(kOverLimits);
          } else {
            ++short_count;
            short_bytes = with;
            Store(members, key, value, bytes);
          }
        } else if (!Fits(members.size() + 1, bytes + (members.empty() ? 0 : 1) + size)) {
          longs_full = true;
          dropped_keys.push_back(key);
          drop(kOverLimits);
        } else {
          Store(members, key, value, bytes);
        }
      }
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    // Short members that arrived after a long one may leave no room for it.
    if (!Fits(members.size(), bytes)) {
      Truncate(members, 0);
      drop(kOverLimits);
    }
    return true;
  }

 private:
  static bool IsDuplicate(std::string_view key, const std::vector<TraceState::Member>& members,
                          const std::vector<std::string_view>& dropped_keys) noexcept {
    for (const auto& m : members) {
      if (m.key == key) return true;
    }
    return std::find(dropped_keys.begin(), dropped_keys.end(), key) != dropped_keys.end();
  }

  static void Store(std::vector<TraceState::Member>& members, std::string_view key,
                    std::string_view value, std::size_t& bytes) {
    bytes += (members.empty() ? 0 : 1) + MemberSize(key, value);
    if (members.empty()) members.reserve(4);
    members.push_back({std::string(key), std::string(value)});
  }
};

namespace w3c {

std::string_view ParseTracestateInto(std::string_view header, TraceState& out) {
  std::string_view why;
  TraceStateParser::ParseInto(header, out, why);
  return why;
}

}  // namespace w3c

bool TraceState::IsValidKey(std::string_view key) noexcept {
  if (key.empty() || key.size() > kMaxKey) return false;
  if (!w3c::Is(key[0], w3c::kLcAlpha | w3c::kDigit)) return false;
  for (char c : key.substr(1)) {
    if (!w3c::Is(c, w3c::kKeyChar)) return false;
  }
  return true;
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
  // The longest key and value together are one byte over the header limit.
  if (MemberSize(key, value) > kMaxBytes) return false;
  const auto it = std::find_if(members_.begin(), members_.end(),
                               [key](const Member& m) { return m.key == key; });
  if (it != members_.end()) {
    std::string new_value(value);  // may throw: do it before touching the list
    std::rotate(members_.begin(), it, it + 1);
    members_.front().value = std::move(new_value);
  } else {
    // Inserting one element either succeeds or changes nothing; what follows cannot throw.
    members_.insert(members_.begin(), Member{std::string(key), std::string(value)});
  }
  // A 33rd member, or a longer value, may take the list past the limits: the spec's
  // truncation rule then drops members, never the one just set.
  Truncate(members_, 1);
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
  if (!TraceStateParser::ParseInto(header, result.value.emplace(), result.error)) {
    result.value.reset();
  }
  return result;
}

}  // namespace vigil::telemetry

// The event model: levels, reasons, request details, handler scopes; and the scrubbing
// rules the request details follow.

#include <algorithm>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/text.hpp>

#include "errors/scrub.hpp"
#include "log/json.hpp"

namespace vigil::telemetry {
namespace {

template <typename Pairs, typename Value>
void Replace(Pairs& pairs, std::string_view key, Value&& value) {
  for (auto& [k, v] : pairs) {
    if (k == key) {
      v = std::forward<Value>(value);
      return;
    }
  }
  pairs.emplace_back(std::string(key), std::forward<Value>(value));
}

}  // namespace

namespace internal {

bool IsSensitiveName(std::string_view name, std::span<const std::string> also) noexcept {
  if (IsSensitiveKey(name)) return true;
  return std::any_of(also.begin(), also.end(),
                     [name](const std::string& s) { return text::EqualsIgnoreCase(s, name); });
}

std::string FilterQuery(std::string_view query) {
  std::string out;
  out.reserve(query.size());
  while (true) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    const std::size_t eq = part.find('=');
    const std::string_view raw_name = part.substr(0, eq);
    const std::string name = text::PercentDecode(raw_name).value_or(std::string(raw_name));
    if (eq != std::string_view::npos && IsSensitiveName(name)) {
      out.append(part.substr(0, eq + 1));
      out.append(kFiltered);
    } else {
      out.append(part);
    }
    if (amp == std::string_view::npos) break;
    out.push_back('&');
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace internal

std::string_view ToString(ErrorLevel level) noexcept {
  switch (level) {
    case ErrorLevel::kDebug:
      return "debug";
    case ErrorLevel::kInfo:
      return "info";
    case ErrorLevel::kWarning:
      return "warning";
    case ErrorLevel::kError:
      return "error";
    case ErrorLevel::kFatal:
      return "fatal";
  }
  return "error";
}

ErrorLevel ErrorLevelOf(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace:
    case LogLevel::kDebug:
      return ErrorLevel::kDebug;
    case LogLevel::kInfo:
      return ErrorLevel::kInfo;
    case LogLevel::kWarn:
      return ErrorLevel::kWarning;
    case LogLevel::kError:
      return ErrorLevel::kError;
    case LogLevel::kFatal:
      return ErrorLevel::kFatal;
  }
  return ErrorLevel::kError;
}

std::string_view ToString(DiscardReason reason) noexcept {
  switch (reason) {
    case DiscardReason::kQueueOverflow:
      return "queue_overflow";
    case DiscardReason::kRateLimitBackoff:
      return "ratelimit_backoff";
    case DiscardReason::kNetworkError:
      return "network_error";
    case DiscardReason::kSendError:
      return "send_error";
    case DiscardReason::kSampleRate:
      return "sample_rate";
    case DiscardReason::kBeforeSend:
      return "before_send";
    case DiscardReason::kCount:
      break;
  }
  return "unknown";
}

void RequestInfo::AddHeader(std::string_view name, std::string_view value,
                            std::span<const std::string> also_sensitive) {
  headers.emplace_back(std::string(name), internal::IsSensitiveName(name, also_sensitive)
                                              ? std::string(internal::kFiltered)
                                              : std::string(value));
}

void RequestInfo::SetUrl(std::string_view scheme, std::string_view host, std::string_view target) {
  const std::size_t q = target.find('?');
  url.assign(scheme);
  url.append("://");
  url.append(host);
  url.append(target.substr(0, q));
  query_string =
      q == std::string_view::npos ? std::string() : internal::FilterQuery(target.substr(q + 1));
}

ErrorEvent ErrorEvent::ForRequest(const RequestContext& ctx) {
  ErrorEvent event;
  event.trace_id = ctx.span.trace_id;
  event.span_id = ctx.span.span_id;
  event.request_id = std::string(ctx.request_id.view());
  return event;
}

void ErrorEvent::SetTag(std::string_view key, std::string_view value) {
  Replace(tags, key, std::string(value));
}

void ErrorScope::SetTag(std::string_view key, std::string_view value) {
  Replace(tags_, key, std::string(value));
}

void ErrorScope::SetContext(std::string_view name, StringPairs values) {
  Replace(contexts_, name, std::move(values));
}

void ErrorScope::AddBreadcrumb(Breadcrumb crumb) {
  if (breadcrumbs_.size() == kMaxBreadcrumbs) breadcrumbs_.erase(breadcrumbs_.begin());
  breadcrumbs_.push_back(std::move(crumb));
}

void ErrorScope::SetUser(std::string_view id) { user_id_ = std::string(id); }

void ErrorScope::ApplyTo(ErrorEvent& event) const {
  for (const auto& [key, value] : tags_) event.SetTag(key, value);
  for (const auto& [name, values] : contexts_) Replace(event.contexts, name, values);
  event.breadcrumbs.insert(event.breadcrumbs.end(), breadcrumbs_.begin(), breadcrumbs_.end());
  if (!user_id_.empty()) event.user_id = user_id_;
}

}  // namespace vigil::telemetry

// Accept header negotiation (RFC 9110 section 12.5.1) between the two text formats.
#include <algorithm>
#include <optional>
#include <vigil/telemetry/metrics.hpp>
#include <vigil/telemetry/text.hpp>

namespace vigil::telemetry {
namespace {

enum class Range { kOther, kOpenMetrics, kTextPlain, kTextAny, kAny };

struct Element {
  Range range = Range::kOther;
  int q = 1000;  // thousandths
};

// One media-range with parameters; false when malformed.
bool ParseElement(std::string_view element, Element& out) noexcept {
  std::size_t semi = element.find(';');
  const std::string_view type = text::TrimOws(element.substr(0, semi));
  const std::size_t slash = type.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == type.size()) {
    return false;
  }

  std::string_view version;
  while (semi != std::string_view::npos) {
    element.remove_prefix(semi + 1);
    semi = element.find(';');
    const std::string_view param = text::TrimOws(element.substr(0, semi));
    if (param.empty()) {
      continue;
    }
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      return false;
    }
    const std::string_view key = text::TrimOws(param.substr(0, eq));
    std::string_view value = text::TrimOws(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (text::EqualsIgnoreCase(key, "q")) {
      const std::optional<int> q = text::ParseQvalue(value);
      if (!q) {
        return false;
      }
      out.q = *q;
    } else if (text::EqualsIgnoreCase(key, "version")) {
      version = value;
    }
  }

  if (text::EqualsIgnoreCase(type, "application/openmetrics-text")) {
    // We write 1.0.0, which 0.0.1 ingestors read as well; a future version is not ours.
    if (version.empty() || version == "1.0.0" || version == "0.0.1") {
      out.range = Range::kOpenMetrics;
    }
  } else if (text::EqualsIgnoreCase(type, "text/plain")) {
    out.range = Range::kTextPlain;
  } else if (text::EqualsIgnoreCase(type, "text/*")) {
    out.range = Range::kTextAny;
  } else if (type == "*/*") {
    out.range = Range::kAny;
  }
  return true;
}

}  // namespace

Negotiation NegotiateExposition(std::string_view accept_header) noexcept {
  int om = -1;
  int text = -1;
  int text_any = -1;
  int any = -1;
  while (!accept_header.empty()) {
    const std::size_t comma = accept_header.find(',');
    const std::string_view element = text::TrimOws(accept_header.substr(0, comma));
    accept_header =
        comma == std::string_view::npos ? std::string_view{} : accept_header.substr(comma + 1);
    if (element.empty()) {
      continue;
    }
    Element e;
    if (!ParseElement(element, e)) {
      continue;
    }
    switch (e.range) {
      case Range::kOpenMetrics:
        om = std::max(om, e.q);
        break;
      case Range::kTextPlain:
        text = std::max(text, e.q);
        break;
      case Range::kTextAny:
        text_any = std::max(text_any, e.q);
        break;
      case Range::kAny:
        any = std::max(any, e.q);
        break;
      case Range::kOther:
        break;
    }
  }
  // The most specific range that matches text/plain decides its preference.
  const int text_q = text >= 0 ? text : text_any >= 0 ? text_any : any >= 0 ? any : 0;
  if (om > 0 && om >= text_q) {
    return {ExpositionFormat::kOpenMetrics, kOpenMetricsContentType};
  }
  return {ExpositionFormat::kPrometheusText, kPrometheusTextContentType};
}

}  // namespace vigil::telemetry

#include "metrics/text_format.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace vigil::telemetry::internal {
namespace {

bool IsAlpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) noexcept { return c >= '0' && c <= '9'; }

// Returns true when v was NaN or infinite and has been written.
bool AppendSpecial(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return true;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return true;
  }
  return false;
}

void AppendChars(std::string& out, const char* first, const char* last) {
  out.append(first, static_cast<std::size_t>(last - first));
}

}  // namespace

bool IsValidMetricName(std::string_view name) noexcept {
  if (name.empty()) {
    return false;
  }
  if (!IsAlpha(name[0]) && name[0] != '_' && name[0] != ':') {
    return false;
  }
  for (char c : name.substr(1)) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != ':') {
      return false;
    }
  }
  return true;
}

bool IsValidLabelName(std::string_view name) noexcept {
  if (name.empty()) {
    return false;
  }
  if (!IsAlpha(name[0]) && name[0] != '_') {
    return false;
  }
  for (char c : name.substr(1)) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_') {
      return false;
    }
  }
  return true;
}

void AppendLabelValue(std::string& out, std::string_view value) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') {
      continue;
    }
    out.append(value, start, i - start);
    out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
    start = i + 1;
  }
  out.append(value, start);
}

void AppendHelp(std::string& out, std::string_view help, ExpositionFormat format) {
  const bool quote = format == ExpositionFormat::kOpenMetrics;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void AppendValue(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  AppendChars(out, buf, r.ptr);
}

void AppendValue(std::string& out, double v) {
  if (AppendSpecial(out, v)) {
    return;
  }
  char buf[32];
  // Integral values (counts, most counters) print fastest and shortest as integers.
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    AppendChars(out, buf, r.ptr);
    return;
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  AppendChars(out, buf, r.ptr);
}

void AppendGoFloat(std::string& out, double v) {
  if (AppendSpecial(out, v)) {
    return;
  }
  // Go's shortest %g picks the exponent form when the decimal exponent is < -4 or >= 6
  // (strconv uses precision 6 for that decision when the precision is "shortest").
  char buf[40];
  const auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const char* e =
      static_cast<const char*>(std::memchr(buf, 'e', static_cast<std::size_t>(sci.ptr - buf)));
  int exp = 0;
  std::from_chars(e + 1 + (e[1] == '+' ? 1 : 0), sci.ptr, exp);
  if (exp < -4 || exp >= 6) {
    AppendChars(out, buf, sci.ptr);  // to_chars, like Go, writes at least two exponent digits
    return;
  }
  const auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  AppendChars(out, buf, fixed.ptr);
}

void AppendCanonicalFloat(std::string& out, double v) {
  const std::size_t start = out.size();
  AppendGoFloat(out, v);
  if (std::isfinite(v) && out.find_first_of(".e", start) == std::string::npos) {
    out += ".0";
  }
}

void AppendUnixSeconds(std::string& out, std::int64_t unix_nanos) {
  std::int64_t seconds = unix_nanos / 1'000'000'000;
  std::int64_t micros = (unix_nanos % 1'000'000'000) / 1000;
  if (micros < 0) {
    micros += 1'000'000;
    seconds -= 1;
  }
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, seconds);
  AppendChars(out, buf, r.ptr);
  out += '.';
  char frac[6];
  for (int i = 5; i >= 0; --i) {
    frac[i] = static_cast<char>('0' + micros % 10);
    micros /= 10;
  }
  out.append(frac, sizeof frac);
}

void AppendExemplar(std::string& out, const Exemplar& e) {
  char trace[TraceId::kHexSize];
  char span[SpanId::kHexSize];
  e.trace_id.ToHex(trace);
  e.span_id.ToHex(span);
  out += " # {trace_id=\"";
  out.append(trace, sizeof trace);
  out += "\",span_id=\"";
  out.append(span, sizeof span);
  out += "\"} ";
  AppendValue(out, e.value);
  out += ' ';
  AppendUnixSeconds(out, e.unix_nanos);
}

std::string_view TypeName(MetricType type) noexcept {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "unknown";
}

void AppendFamilyHeader(std::string& out, std::string_view name, std::string_view help,
                        MetricType type, ExpositionFormat format) {
  const bool om = format == ExpositionFormat::kOpenMetrics;
  const std::string_view family = type == MetricType::kCounter && om ? CounterBaseName(name) : name;
  const auto help_line = [&] {
    if (help.empty()) {
      return;  // an empty HELP means "no help" in both formats
    }
    out += "# HELP ";
    out += family;
    out += ' ';
    AppendHelp(out, help, format);
    out += '\n';
  };
  const auto type_line = [&] {
    out += "# TYPE ";
    out += family;
    out += ' ';
    out += TypeName(type);
    out += '\n';
  };
  // Prometheus clients write HELP first; OpenMetrics asks for TYPE first.
  if (om) {
    type_line();
    help_line();
  } else {
    help_line();
    type_line();
  }
}

}  // namespace vigil::telemetry::internal

// Building blocks of the Prometheus text 0.0.4 and OpenMetrics 1.0 text formats: name
// validation, escaping and number rendering. Everything appends to a std::string and
// never allocates beyond the string's own growth.
//
//   std::string out = "x_bucket{le=\"";
//   AppendCanonicalFloat(out, 1.0);  // 1.0
//   AppendLabelValue(out, "a\"b");   // a\"b
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry::internal {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name) noexcept;
// [a-zA-Z_][a-zA-Z0-9_]*
bool IsValidLabelName(std::string_view name) noexcept;
// Names starting with "__" are reserved for Prometheus' internal use.
inline bool IsReservedName(std::string_view name) noexcept { return name.starts_with("__"); }

// Label values: backslash, double quote and line feed escaped (same in both formats).
void AppendLabelValue(std::string& out, std::string_view value);
// HELP text: backslash and line feed escaped; OpenMetrics also escapes double quotes.
void AppendHelp(std::string& out, std::string_view help, ExpositionFormat format);

// A sample value: integers without a fraction, otherwise the shortest round-trip form;
// NaN, +Inf, -Inf spelled as both formats require.
void AppendValue(std::string& out, double v);
void AppendValue(std::string& out, std::uint64_t v);
// The rendering of Go's strconv.FormatFloat(v, 'g', -1, 64): what Prometheus clients
// print for `le` in the text format (0.005, 1, 100000, 1e+06).
void AppendGoFloat(std::string& out, double v);
// OpenMetrics' canonical `le`: the Go rendering with ".0" appended when it has neither
// a decimal point nor an exponent (1.0, 0.005, 1e+06, +Inf).
void AppendCanonicalFloat(std::string& out, double v);
// Unix time in seconds with a 6-digit fraction, never in exponent form.
void AppendUnixSeconds(std::string& out, std::int64_t unix_nanos);

// " # {trace_id=\"…\",span_id=\"…\"} <value> <timestamp>"
void AppendExemplar(std::string& out, const Exemplar& e);

// The OpenMetrics family name of a counter: the name without "_total".
inline std::string_view CounterBaseName(std::string_view name) noexcept {
  return name.substr(0, name.size() - 6);
}

std::string_view TypeName(MetricType type) noexcept;

// "# HELP" and "# TYPE" lines of a family (HELP first in Prometheus text, TYPE first in
// OpenMetrics; no HELP line for empty help). A counter's OpenMetrics family name drops
// "_total".
void AppendFamilyHeader(std::string& out, std::string_view name, std::string_view help,
                        MetricType type, ExpositionFormat format);

}  // namespace vigil::telemetry::internal

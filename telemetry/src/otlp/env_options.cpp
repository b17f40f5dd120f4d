// OTEL_EXPORTER_OTLP_* and VIGIL_TRACES_FILE, as the OpenTelemetry SDK configuration
// specification defines them for the HTTP exporters.

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <stdexcept>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/telemetry/text.hpp>

#include "otlp/url.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::int64_t kMaxTimeoutMs = 24LL * 3600 * 1000;

// A set variable's trimmed value; unset and empty are the same ("use the default").
std::optional<std::string> Get(const char* name) {
  // Read at start-up only; the header documents that nothing may modify the environment
  // meanwhile.
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
  if (v == nullptr) {
    return std::nullopt;
  }
  std::string_view t = text::TrimOws(v);
  if (t.empty()) {
    return std::nullopt;
  }
  return std::string(t);
}

// The TRACES_-specific variable when set, else the general one; `used` names the one read.
std::optional<std::string> GetEither(const char* specific, const char* general, const char*& used) {
  if (auto v = Get(specific)) {
    used = specific;
    return v;
  }
  used = general;
  return Get(general);
}

[[noreturn]] void Invalid(std::string_view variable, std::string_view value,
                          std::string_view expected) {
  throw std::invalid_argument(std::string(variable) + "=\"" + std::string(value) +
                              "\" is not valid: expected " + std::string(expected));
}

// Adds `from` to `into`; a name already present (case-insensitively) takes the new value.
void MergeHeaders(std::vector<std::pair<std::string, std::string>>& into,
                  std::vector<std::pair<std::string, std::string>>&& from) {
  for (auto& header : from) {
    auto same = [&header](const auto& kv) {
      return text::EqualsIgnoreCase(kv.first, header.first);
    };
    if (auto it = std::find_if(into.begin(), into.end(), same); it != into.end()) {
      it->second = std::move(header.second);
    } else {
      into.push_back(std::move(header));
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseOtlpHeaders(std::string_view value,
                                                                  std::string_view variable) {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view rest = value;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view member = text::TrimOws(rest.substr(0, comma));
    if (!member.empty()) {
      const std::size_t eq = member.find('=');
      if (eq == std::string_view::npos) {
        Invalid(variable, value,
                "a comma-separated list of key=value (\"" + std::string(member) + "\" has no '=')");
      }
      const std::string_view key = text::TrimOws(member.substr(0, eq));
      if (!text::IsToken(key)) {
        Invalid(variable, value,
                "header names made of token characters (\"" + std::string(key) + "\" is not one)");
      }
      std::optional<std::string> decoded =
          text::PercentDecode(text::TrimOws(member.substr(eq + 1)));
      if (!decoded) {
        Invalid(variable, value, "percent-encoding as %XX with two hex digits");
      }
      // A decoded CR or LF would let a value start a header of its own.
      if (std::any_of(decoded->begin(), decoded->end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
        Invalid(variable, value, "header values without CR, LF or NUL");
      }
      MergeHeaders(headers, {{std::string(key), *std::move(decoded)}});
    }
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return headers;
}

OtlpHttpExporterOptions OtlpHttpExporterOptionsFromEnv() {
  OtlpHttpExporterOptions options;
  const char* used = nullptr;

  if (auto url = Get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    if (!otlp::IsHttpUrl(*url)) {
      Invalid("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", *url, "an http:// or https:// URL");
    }
    options.endpoint = *url;
  } else if (auto base = Get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
    if (!otlp::IsHttpUrl(*base)) {
      Invalid("OTEL_EXPORTER_OTLP_ENDPOINT", *base, "an http:// or https:// URL");
    }
    options.endpoint = *base;
    if (options.endpoint.back() != '/') {
      options.endpoint += '/';
    }
    options.endpoint += "v1/traces";
  }

  if (auto protocol =
          GetEither("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", used)) {
    if (*protocol == "http/protobuf") {
      options.protocol = OtlpProtocol::kHttpProtobuf;
    } else if (*protocol == "http/json") {
      options.protocol = OtlpProtocol::kHttpJson;
    } else {
      Invalid(used, *protocol, "http/protobuf or http/json (grpc is not supported)");
    }
  }

  if (auto general = Get("OTEL_EXPORTER_OTLP_HEADERS")) {
    options.headers = ParseOtlpHeaders(*general, "OTEL_EXPORTER_OTLP_HEADERS");
  }
  if (auto specific = Get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) {
    MergeHeaders(options.headers, ParseOtlpHeaders(*specific, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"));
  }

  if (auto timeout =
          GetEither("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", used)) {
    std::int64_t ms = 0;
    const char* end = timeout->data() + timeout->size();
    auto [ptr, ec] = std::from_chars(timeout->data(), end, ms);
    if (ec != std::errc() || ptr != end || ms < 1 || ms > kMaxTimeoutMs) {
      Invalid(used, *timeout,
              "a whole number of milliseconds from 1 to " + std::to_string(kMaxTimeoutMs));
    }
    options.timeout = std::chrono::milliseconds{ms};
  }

  if (auto compression = GetEither("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                                   "OTEL_EXPORTER_OTLP_COMPRESSION", used)) {
    const std::string c = text::AsciiLowercase(*compression);
    if (c == "gzip") {
      options.compression = OtlpCompression::kGzip;
    } else if (c == "none") {
      options.compression = OtlpCompression::kNone;
    } else {
      Invalid(used, *compression, "gzip or none");
    }
  }
  return options;
}

std::optional<OtlpFileExporterOptions> OtlpFileExporterOptionsFromEnv() {
  OtlpFileExporterOptions options;
  // Checked even without a file, so that a typo fails at once rather than on the day the
  // file is switched on. Whole numbers only: a size with a unit ("64M") or a negative count is
  // refused rather than read as something else.
  const auto whole = [](const char* name, std::int64_t min, std::int64_t max,
                        std::int64_t fallback) {
    auto raw = Get(name);
    if (!raw) {
      return fallback;
    }
    std::int64_t v = 0;
    const char* end = raw->data() + raw->size();
    auto [ptr, ec] = std::from_chars(raw->data(), end, v);
    if (ec != std::errc() || ptr != end || v < min || v > max) {
      Invalid(name, *raw,
              "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    }
    return v;
  };
  options.max_bytes =
      static_cast<std::uint64_t>(whole("VIGIL_TRACES_FILE_MAX_BYTES", 0, std::int64_t{1} << 40,
                                       static_cast<std::int64_t>(options.max_bytes)));
  options.keep = static_cast<unsigned>(
      whole("VIGIL_TRACES_FILE_KEEP", 1, OtlpFileExporterOptions::kMaxKeep, options.keep));
  auto path = Get("VIGIL_TRACES_FILE");
  if (!path) {
    return std::nullopt;
  }
  options.path = std::move(*path);
  return options;
}

}  // namespace vigil::telemetry

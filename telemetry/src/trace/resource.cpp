// The Resource: the service's identity plus OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
#include <vigil/telemetry/trace_resource.hpp>
#include <vigil/telemetry/text.hpp>

#include "trace/env_vars.hpp"
#include "vigil_build_info.hpp"

namespace vigil::telemetry {
namespace {

constexpr const char* kResourceVar = "OTEL_RESOURCE_ATTRIBUTES";

void Put(std::vector<Attribute>& attributes, std::string_view key, std::string_view value) {
  for (auto& a : attributes) {
    if (a.key == key) {
      a.value = AttributeValue(value);
      return;
    }
  }
  attributes.push_back(Attribute{std::string(key), AttributeValue(value)});
}

// Parses `key=value,key2=value2`. The specification asks to discard the whole value on
// any error; Vigil's configuration rule goes further and refuses to start.
std::vector<Attribute> ParseResourceAttributes(const std::string& raw) {
  std::vector<Attribute> out;
  std::string_view rest = raw;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view member = text::TrimOws(rest.substr(0, comma));
    const std::size_t eq = member.find('=');
    if (eq == std::string_view::npos) {
      internal::ThrowInvalid(kResourceVar, raw,
                             "key=value pairs separated by ',' (a member has no '=')");
    }
    const auto key = text::PercentDecode(text::TrimOws(member.substr(0, eq)));
    const auto value = text::PercentDecode(text::TrimOws(member.substr(eq + 1)));
    if (!key || !value) {
      internal::ThrowInvalid(kResourceVar, raw,
                             "key=value pairs with '%' followed by two hex digits");
    }
    if (key->empty()) {
      internal::ThrowInvalid(kResourceVar, raw, "key=value pairs with non-empty keys");
    }
    Put(out, *key, *value);
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

Resource BuildResource(std::string_view service_name, std::string_view service_version,
                       std::string_view environment, std::string_view instance_id) {
  Resource resource;
  auto& attrs = resource.attributes;
  // The first keys are the identity, in a fixed order, so the output is stable.
  Put(attrs, "service.name", "unknown_service");
  if (const auto raw = internal::ReadEnv(kResourceVar)) {
    for (auto& a : ParseResourceAttributes(*raw)) {
      Put(attrs, a.key, std::get<std::string>(a.value.v));
    }
  }
  if (!service_name.empty()) {
    Put(attrs, "service.name", service_name);
  }
  if (!service_version.empty()) {
    Put(attrs, "service.version", service_version);
  }
  if (!environment.empty()) {
    Put(attrs, "deployment.environment.name", environment);
  }
  if (!instance_id.empty()) {
    Put(attrs, "service.instance.id", instance_id);
  }
  if (const auto name = internal::ReadEnv("OTEL_SERVICE_NAME")) {
    Put(attrs, "service.name", *name);
  }
  Put(attrs, "telemetry.sdk.name", "vigil");
  Put(attrs, "telemetry.sdk.language", "cpp");
  Put(attrs, "telemetry.sdk.version", build::kVersion);
  return resource;
}

}  // namespace vigil::telemetry

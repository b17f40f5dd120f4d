// The OTLP Resource that says which service produced a batch of spans.
//
// Built once at start-up from the service's own identity and the standard variables,
// then given to the exporter, which attaches it to every batch.
//
//   Resource r = BuildResource("auth", "0.3.0", "prod", instance_id);
//   // service.name=auth service.version=0.3.0 deployment.environment.name=prod
//   // service.instance.id=... telemetry.sdk.{name=vigil,language=cpp,version=...}
//
// Precedence, lowest first (the OpenTelemetry resource rules):
//   1. OTEL_RESOURCE_ATTRIBUTES: `key=value,key2=value2`, keys and values
//      percent-decoded, surrounding spaces trimmed, every value a string;
//   2. the arguments (an empty argument sets nothing);
//   3. OTEL_SERVICE_NAME for service.name.
// Without any service name the resource says service.name=unknown_service. The
// telemetry.sdk.* attributes are always Vigil's.
//
// Thread-safety: reads the process environment; call it while no thread modifies it.
#pragma once

#include <string_view>
#include <vigil/telemetry/span_data.hpp>
#include <vigil/telemetry/trace.hpp>

namespace vigil::telemetry {

// Throws EnvVarError naming OTEL_RESOURCE_ATTRIBUTES when it is malformed (a member
// without '=', an empty key, a bad percent-escape); per the specification the whole
// value is then unusable.
Resource BuildResource(std::string_view service_name, std::string_view service_version,
                       std::string_view environment, std::string_view instance_id);

}  // namespace vigil::telemetry

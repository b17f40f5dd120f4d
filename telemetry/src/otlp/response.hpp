// Reading what an OTLP/HTTP receiver answers: the ExportTraceServiceResponse of a 2xx
// (which may report a partial success) and the google.rpc.Status of an error, each in
// protobuf or JSON according to the response's Content-Type.
//
//   auto ps = otlp::ParseExportResponse(body, /*json=*/false);
//   if (ps && ps->rejected_spans > 0) Count(ps->rejected_spans, ps->error_message);
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::telemetry::otlp {

// ExportTracePartialSuccess{1 rejected_spans int64, 2 error_message string}; both zero
// when the receiver accepted everything.
struct PartialSuccess {
  std::int64_t rejected_spans = 0;
  std::string error_message;
};

// Parses an ExportTraceServiceResponse{1 partial_success}. An empty body is a full
// success. nullopt when the body is malformed.
std::optional<PartialSuccess> ParseExportResponse(std::string_view body, bool json);

// The `message` of a google.rpc.Status body{1 code, 2 message, 3 details}; empty when
// there is none or the body is not a Status.
std::string ParseStatusMessage(std::string_view body, bool json);

// True for a media type that names JSON ("application/json; charset=utf-8").
bool IsJsonContentType(std::string_view content_type) noexcept;
// True for application/x-protobuf or application/protobuf.
bool IsProtobufContentType(std::string_view content_type) noexcept;

}  // namespace vigil::telemetry::otlp

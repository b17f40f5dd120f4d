// Sentry envelopes (develop.sentry.dev, "Envelopes"): a JSON header line, then items,
// each a JSON header line with its type and payload length, then the payload and a
// newline. And the payloads the reporter sends: events, client reports, session
// aggregates.
//
//   std::string body;
//   JsonBuffer out(body);
//   EnvelopeWriter envelope(out, header);
//   WriteEvent(envelope.BeginItem("event"), event, attributes);
//   envelope.EndItem();
//
// An item's length is written after its payload, into room reserved in its header
// ("length":1234 followed by spaces up to the closing brace, which JSON allows), so a
// payload is written once, straight into the output. Nothing here allocates when the
// buffer is a fixed one: a crash handler can write a whole envelope into memory reserved
// at start-up and write(2) it to a file.
//
// Thread-safety: an EnvelopeWriter belongs to one thread; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vigil/telemetry/errors.hpp>

#include "errors/json_writer.hpp"
#include "errors/outcomes.hpp"
#include "errors/session_aggregates.hpp"

namespace vigil::telemetry::internal {

// The SDK as envelopes and events name it.
inline constexpr std::string_view kSdkName = "vigil.telemetry";

struct EnvelopeHeader {
  std::string_view event_id;  // empty: an envelope without an event
  std::string_view dsn;       // without the secret key
  std::int64_t sent_at_unix_nano = 0;
  std::string_view sdk_version;
  // The trace's dynamic sampling context; written when trace_id is valid.
  TraceId trace_id;
  std::string_view public_key;
  std::string_view release;
  std::string_view environment;
};

class EnvelopeWriter {
 public:
  // Writes the envelope's header line.
  EnvelopeWriter(JsonBuffer& out, const EnvelopeHeader& header);

  // Writes an item's header line; the item's payload goes to the writer returned (one
  // JSON value), until EndItem().
  JsonWriter& BeginItem(std::string_view type);
  // Writes the payload's length into the item's header and ends the item.
  void EndItem();

 private:
  JsonBuffer& out_;
  JsonWriter writer_;
  std::size_t length_at_ = 0;
  std::size_t payload_at_ = 0;
};

// What every event of one reporter carries besides its own content.
struct EventAttributes {
  std::string_view release;
  std::string_view environment;
  std::string_view server_name;
  std::string_view sdk_version;
};

// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (RFC 3339, UTC), 27 characters, into `out`.
void FormatTimestamp(std::int64_t unix_nano, char (&out)[27]) noexcept;

// A timestamp value: FormatTimestamp's text.
void WriteTimestamp(JsonWriter& w, std::int64_t unix_nano);
// A trace or span id as lowercase hex.
template <typename IdType>
void WriteId(JsonWriter& w, const IdType& id) {
  char hex[IdType::kHexSize];
  id.ToHex(hex);
  w.String(std::string_view(hex, sizeof hex));
}
// A context's "trace" member (Sentry's contexts.trace): the ids that link an event to its
// trace; the span ids when valid.
void WriteTraceContext(JsonWriter& w, const TraceId& trace_id, const SpanId& span_id,
                       const SpanId& parent_span_id);
// Sentry's debug_meta: the loaded modules, for symbolication on the receiver's side.
void WriteDebugMeta(JsonWriter& w, std::span<const DebugImage> images);

// The members every event starts with: its id, time, platform, level, logger, and the
// reporter's attributes (release, environment, server name, SDK).
void WriteEventHead(JsonWriter& w, std::string_view event_id, std::int64_t time_unix_nano,
                    ErrorLevel level, std::string_view logger, const EventAttributes& attributes);
// The event as Sentry's event payload (platform "native"; frames outermost first).
void WriteEvent(JsonWriter& w, const ErrorEvent& event, const EventAttributes& attributes);
// A client_report payload: what was discarded since the last one.
void WriteClientReport(JsonWriter& w, std::int64_t now_unix_nano,
                       std::span<const Outcomes::Pending> discarded);
// A sessions payload: request-mode aggregates per minute.
void WriteSessions(JsonWriter& w, std::span<const SessionAggregates::Minute> minutes,
                   std::string_view release, std::string_view environment);

}  // namespace vigil::telemetry::internal

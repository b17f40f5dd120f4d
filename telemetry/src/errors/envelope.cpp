#include "errors/envelope.hpp"

#include <type_traits>

#include "log/clock.hpp"

namespace vigil::telemetry::internal {
namespace {

// Room for the longest length (an envelope is far below 10^10 bytes).
constexpr std::string_view kLengthRoom = "          ";

void Pairs(JsonWriter& w, const StringPairs& pairs) {
  w.BeginObject();
  for (const auto& [key, value] : pairs) w.Field(key, value);
  w.EndObject();
}

void Frames(JsonWriter& w, const std::vector<StackFrame>& frames) {
  w.Key("stacktrace");
  w.BeginObject();
  w.Key("frames");
  w.BeginArray();
  // Sentry lists frames from the outermost call to the innermost.
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    const StackFrame& f = *it;
    w.BeginObject();
    w.Key("instruction_addr");
    w.Address(f.address);
    if (!f.function.empty()) w.Field("function", f.function);
    if (!f.file.empty()) {
      w.Field("filename", f.file);
      w.FieldInt("lineno", f.line);
    }
    if (!f.module.empty()) w.Field("package", f.module);
    w.Key("in_app");
    w.Bool(f.in_app);
    w.EndObject();
  }
  w.EndArray();
  // Every address is a return address (the frames of the hook are not there).
  w.Field("instruction_addr_adjustment", "all");
  w.EndObject();
}

void Exception(JsonWriter& w, const ExceptionInfo& e) {
  w.Key("exception");
  w.BeginObject();
  w.Key("values");
  w.BeginArray();
  w.BeginObject();
  w.Field("type", e.type);
  w.Field("value", e.value);
  w.Key("mechanism");
  w.BeginObject();
  w.Field("type", e.mechanism);
  w.Key("handled");
  w.Bool(e.handled);
  w.Key("data");
  w.BeginObject();
  w.Field("stack", e.frames_at_throw ? "where it was thrown" : "where it was caught");
  w.EndObject();
  w.EndObject();
  if (!e.frames.empty()) Frames(w, e.frames);
  w.EndObject();
  w.EndArray();
  w.EndObject();
}

void Contexts(JsonWriter& w, const ErrorEvent& event) {
  w.Key("contexts");
  w.BeginObject();
  if (event.trace_id.IsValid()) {
    WriteTraceContext(w, event.trace_id, event.span_id, event.parent_span_id);
  }
  for (const auto& [name, values] : event.contexts) {
    if (name == "trace") continue;  // the event's own ids are the trace context
    w.Key(name);
    Pairs(w, values);
  }
  w.EndObject();
}

void Request(JsonWriter& w, const RequestInfo& r) {
  w.Key("request");
  w.BeginObject();
  if (!r.method.empty()) w.Field("method", r.method);
  if (!r.url.empty()) w.Field("url", r.url);
  if (!r.query_string.empty()) w.Field("query_string", r.query_string);
  if (!r.headers.empty()) {
    w.Key("headers");
    Pairs(w, r.headers);
  }
  w.EndObject();
}

void Breadcrumbs(JsonWriter& w, const std::vector<Breadcrumb>& crumbs) {
  w.Key("breadcrumbs");
  w.BeginObject();
  w.Key("values");
  w.BeginArray();
  for (const Breadcrumb& b : crumbs) {
    w.BeginObject();
    w.Key("timestamp");
    WriteTimestamp(w, b.time_unix_nano);
    w.Field("type", "default");
    if (!b.category.empty()) w.Field("category", b.category);
    w.Field("level", ToString(b.level));
    if (!b.message.empty()) w.Field("message", b.message);
    if (!b.data.empty()) {
      w.Key("data");
      Pairs(w, b.data);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

void WriteTimestamp(JsonWriter& w, std::int64_t unix_nano) {
  char text[27];
  FormatTimestamp(unix_nano, text);
  w.String(std::string_view(text, sizeof text));
}

void WriteDebugMeta(JsonWriter& w, std::span<const DebugImage> images) {
  w.Key("debug_meta");
  w.BeginObject();
  w.Key("images");
  w.BeginArray();
  for (const DebugImage& image : images) {
    w.BeginObject();
    w.Field("type", "elf");
    w.Field("code_id", image.code_id);
    w.Field("debug_id", image.debug_id);
    w.Key("image_addr");
    w.Address(image.image_addr);
    w.Key("image_size");
    w.Uint(image.image_size);
    if (!image.code_file.empty()) w.Field("code_file", image.code_file);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteTraceContext(JsonWriter& w, const TraceId& trace_id, const SpanId& span_id,
                       const SpanId& parent_span_id) {
  w.Key("trace");
  w.BeginObject();
  w.Field("type", "trace");
  w.Key("trace_id");
  WriteId(w, trace_id);
  if (span_id.IsValid()) {
    w.Key("span_id");
    WriteId(w, span_id);
  }
  if (parent_span_id.IsValid()) {
    w.Key("parent_span_id");
    WriteId(w, parent_span_id);
  }
  w.EndObject();
}

void FormatTimestamp(std::int64_t unix_nano, char (&out)[27]) noexcept {
  TimeFormatter formatter;
  formatter.Format(unix_nano, out);
}

EnvelopeWriter::EnvelopeWriter(JsonBuffer& out, const EnvelopeHeader& header)
    : out_(out), writer_(out) {
  JsonWriter w(out_);
  w.BeginObject();
  if (!header.event_id.empty()) w.Field("event_id", header.event_id);
  if (!header.dsn.empty()) w.Field("dsn", header.dsn);
  w.Key("sent_at");
  WriteTimestamp(w, header.sent_at_unix_nano);
  w.Key("sdk");
  w.BeginObject();
  w.Field("name", kSdkName);
  w.Field("version", header.sdk_version);
  w.EndObject();
  if (header.trace_id.IsValid()) {
    w.Key("trace");
    w.BeginObject();
    w.Key("trace_id");
    WriteId(w, header.trace_id);
    w.Field("public_key", header.public_key);
    if (!header.release.empty()) w.Field("release", header.release);
    if (!header.environment.empty()) w.Field("environment", header.environment);
    w.EndObject();
  }
  w.EndObject();
  out_.Append('\n');
}

JsonWriter& EnvelopeWriter::BeginItem(std::string_view type) {
  JsonWriter w(out_);
  w.BeginObject();
  w.Field("type", type);
  w.Key("length");
  length_at_ = out_.size();
  out_.Append(kLengthRoom);
  out_.Append("}\n", 2);
  payload_at_ = out_.size();
  writer_.Reset();
  return writer_;
}

void EnvelopeWriter::EndItem() {
  char digits[kMaxNumberSize];
  const std::size_t n = FormatUint(out_.size() - payload_at_, digits);
  out_.Overwrite(length_at_, std::string_view(digits, n));
  out_.Append('\n');
}

void WriteEventHead(JsonWriter& w, std::string_view event_id, std::int64_t time_unix_nano,
                    ErrorLevel level, std::string_view logger, const EventAttributes& attributes) {
  w.Field("event_id", event_id);
  w.Key("timestamp");
  WriteTimestamp(w, time_unix_nano);
  w.Field("platform", "native");
  w.Field("level", ToString(level));
  if (!logger.empty()) w.Field("logger", logger);
  if (!attributes.release.empty()) w.Field("release", attributes.release);
  if (!attributes.environment.empty()) w.Field("environment", attributes.environment);
  if (!attributes.server_name.empty()) w.Field("server_name", attributes.server_name);
  w.Key("sdk");
  w.BeginObject();
  w.Field("name", kSdkName);
  w.Field("version", attributes.sdk_version);
  w.EndObject();
}

void WriteEvent(JsonWriter& w, const ErrorEvent& event, const EventAttributes& attributes) {
  w.BeginObject();
  WriteEventHead(w, event.event_id, event.time_unix_nano, event.level, event.logger, attributes);
  if (!event.message.empty()) {
    w.Key("message");
    w.BeginObject();
    w.Field("formatted", event.message);
    w.EndObject();
  }
  if (event.exception) Exception(w, *event.exception);
  if (!event.tags.empty()) {
    w.Key("tags");
    Pairs(w, event.tags);
  }
  Contexts(w, event);
  if (event.request) Request(w, *event.request);
  if (!event.user_id.empty()) {
    w.Key("user");
    w.BeginObject();
    w.Field("id", event.user_id);
    w.EndObject();
  }
  if (!event.breadcrumbs.empty()) Breadcrumbs(w, event.breadcrumbs);
  if (!event.extra.empty()) {
    w.Key("extra");
    Pairs(w, event.extra);
  }
  if (!event.fingerprint.empty()) {
    w.Key("fingerprint");
    w.BeginArray();
    for (const std::string& part : event.fingerprint) w.String(part);
    w.EndArray();
  }
  if (!event.images.empty()) WriteDebugMeta(w, event.images);
  w.EndObject();
}

void WriteClientReport(JsonWriter& w, std::int64_t now_unix_nano,
                       std::span<const Outcomes::Pending> discarded) {
  w.BeginObject();
  w.Key("timestamp");
  WriteTimestamp(w, now_unix_nano);
  w.Key("discarded_events");
  w.BeginArray();
  for (const Outcomes::Pending& d : discarded) {
    w.BeginObject();
    w.Field("reason", ToString(d.reason));
    w.Field("category", CategoryName(d.category));
    w.Key("quantity");
    w.Uint(d.quantity);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteSessions(JsonWriter& w, std::span<const SessionAggregates::Minute> minutes,
                   std::string_view release, std::string_view environment) {
  w.BeginObject();
  w.Key("attrs");
  w.BeginObject();
  w.Field("release", release);
  if (!environment.empty()) w.Field("environment", environment);
  w.EndObject();
  w.Key("aggregates");
  w.BeginArray();
  for (const SessionAggregates::Minute& m : minutes) {
    w.BeginObject();
    w.Key("started");
    WriteTimestamp(w, m.start_unix_seconds * 1'000'000'000);
    for (const auto& [name, count] :
         {std::pair<std::string_view, std::uint64_t>{"exited", m.exited},
          {"errored", m.errored},
          {"crashed", m.crashed}}) {
      if (count == 0) continue;
      w.Key(name);
      w.Uint(count);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace vigil::telemetry::internal

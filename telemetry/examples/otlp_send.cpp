// otlp_send: encodes or exports a fixed batch of spans that covers every OTLP trace field,
// so the integration tests can check Vigil's encoders against OpenTelemetry's decoder and
// the exporters against a local receiver.
//
//   otlp_send encode --protobuf body.bin --json body.json
//   otlp_send http [--batches N] [--repeat N] [--initial-backoff-ms N] [--max-backoff-ms N]
//                  [--shutdown-after-ms N] [--shutdown-grace-ms N]     (OTEL_EXPORTER_OTLP_*)
//   otlp_send file [--batches N] [--repeat N]                           (VIGIL_TRACES_FILE)
//
// `http` and `file` print one JSON object per line on stdout: {"event":"error",...} for
// every on_error call, {"event":"outcome",...} per batch and {"event":"stats",...} at the
// end. A bad OTEL_* value exits with status 2 and the exception text on stderr.

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <vigil/telemetry/otlp.hpp>

namespace {

using namespace vigil::telemetry;
using Clock = std::chrono::steady_clock;

TraceId Tid(std::string_view hex) { return *TraceId::FromHex(hex); }
SpanId Sid(std::string_view hex) { return *SpanId::FromHex(hex); }

Resource FixedResource() {
  return Resource{{
      {"service.name", "otlp-send"},
      {"service.version", "1.2.3"},
      {"deployment.environment.name", "test"},
      {"service.instance.id", "instance-1"},
      {"host.cores", 2},
  }};
}

InstrumentationScope FixedScope() { return InstrumentationScope{"vigil", "0.1.0-test"}; }

// The spans the tests expect, field for field (tests/integration/test_otlp_decode.py).
std::vector<SpanData> FixedSpans() {
  std::vector<SpanData> spans(5);

  SpanData& server = spans[0];
  server.trace_id = Tid("4bf92f3577b34da6a3ce929d0e0e4736");
  server.span_id = Sid("00f067aa0ba902b7");
  server.parent_span_id = Sid("53995c3f42cd8ad8");
  server.parent_is_remote = true;
  server.flags.bits = TraceFlags::kSampled;
  server.trace_state = "vendor=abc,other=x y";
  server.name = "GET /items/{id}";
  server.kind = SpanKind::kServer;
  server.start_unix_nano = 1700000000123456789ULL;
  server.end_unix_nano = 1700000000223456789ULL;
  server.attributes = {
      {"http.request.method", "GET"},
      {"http.response.status_code", 200},
      {"big", std::int64_t{9223372036854775807LL}},
      {"negative", -42},
      {"zero", 0},
      {"ratio", 0.25},
      {"neg.double", -1.5e300},
      {"cache.hit", true},
      {"retry", false},
      {"empty", ""},
      {"unicode", "h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93 \xF0\x9F\x98\x80"},
      {"quote", "say \"hi\"\n\ttab\\ \x01"},
      {"array.strings", AttributeArray{"a", "b"}},
      {"array.ints", AttributeArray{1, -2, 3}},
      {"array.doubles", AttributeArray{1.5, 2.0}},
      {"array.bools", AttributeArray{true, false}},
      {"array.mixed", AttributeArray{"x", 1, 2.5, true, AttributeArray{"nested"}}},
      {"array.empty", AttributeArray{}},
  };
  server.dropped_attributes_count = 3;
  server.events = {
      {"exception",
       1700000000150000000ULL,
       {{"exception.type", "std::runtime_error"}, {"exception.message", "boom"}}},
      {"no-attrs", 1700000000160000000ULL, {}},
  };
  server.dropped_events_count = 1;
  SpanLink remote_link;
  remote_link.context.trace_id = Tid("0af7651916cd43dd8448eb211c80319c");
  remote_link.context.span_id = Sid("b7ad6b7169203331");
  remote_link.context.flags.bits = TraceFlags::kSampled;
  remote_link.context.trace_state.Set("rojo", "00f067aa0ba902b7");
  remote_link.context.trace_state.Set("congo", "t61rcWkgMzE");
  remote_link.context.is_remote = true;
  remote_link.attributes = {{"link.kind", "follows"}};
  SpanLink local_link;
  local_link.context.trace_id = Tid("4bf92f3577b34da6a3ce929d0e0e4736");
  local_link.context.span_id = Sid("2222222222222222");
  server.links = {remote_link, local_link};
  server.dropped_links_count = 2;
  server.status = {StatusCode::kError, "boom happened"};

  SpanData& client = spans[1];
  client.trace_id = server.trace_id;
  client.span_id = Sid("1111111111111111");
  client.parent_span_id = server.span_id;
  client.flags.bits = TraceFlags::kSampled | TraceFlags::kRandom;
  client.name = "GET";
  client.kind = SpanKind::kClient;
  client.start_unix_nano = 1700000000130000000ULL;
  client.end_unix_nano = 1700000000140000000ULL;
  client.attributes = {{"server.address", "catalog"}, {"server.port", 8082}};
  client.status = {StatusCode::kOk, ""};

  SpanData& producer = spans[2];
  producer.trace_id = Tid("5bf92f3577b34da6a3ce929d0e0e4737");
  producer.span_id = Sid("3333333333333333");
  producer.flags.bits = TraceFlags::kSampled;
  producer.name = "publish orders";
  producer.kind = SpanKind::kProducer;
  producer.start_unix_nano = 1700000001000000000ULL;
  producer.end_unix_nano = 1700000001000000001ULL;

  SpanData& consumer = spans[3];
  consumer.trace_id = producer.trace_id;
  consumer.span_id = Sid("4444444444444444");
  consumer.parent_span_id = producer.span_id;
  consumer.parent_is_remote = true;
  consumer.flags.bits = TraceFlags::kSampled;
  consumer.name = "process orders";
  consumer.kind = SpanKind::kConsumer;
  consumer.start_unix_nano = 1700000002000000000ULL;
  consumer.end_unix_nano = 1700000003000000000ULL;

  // Every optional field at its default: an unsampled internal span with no name.
  SpanData& bare = spans[4];
  bare.trace_id = Tid("6bf92f3577b34da6a3ce929d0e0e4738");
  bare.span_id = Sid("5555555555555555");
  bare.kind = SpanKind::kInternal;
  return spans;
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(f);
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

struct Args {
  std::string mode;
  std::string protobuf_path, json_path;
  long batches = 1, repeat = 1;
  long initial_backoff_ms = -1, max_backoff_ms = -1;
  long shutdown_after_ms = -1, shutdown_grace_ms = 0;
};

bool ParseLong(const char* text, long& out) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && ptr == end && out >= 0;
}

int Usage() {
  std::cerr << "usage: otlp_send encode --protobuf FILE --json FILE\n"
               "       otlp_send http [--batches N] [--repeat N] [--initial-backoff-ms N]\n"
               "                      [--max-backoff-ms N] [--shutdown-after-ms N]\n"
               "                      [--shutdown-grace-ms N]\n"
               "       otlp_send file [--batches N] [--repeat N]\n";
  return 2;
}

// Runs `batches` exports through `exporter`, printing outcomes; the optional timer calls
// Shutdown() from another thread, as a program's signal handler would.
int RunExports(SpanExporter& exporter, const Args& args, const std::vector<SpanData>& spans,
               const std::function<OtlpExporterStats()>& stats) {
  std::vector<const SpanData*> batch;
  for (long r = 0; r < args.repeat; ++r) {
    for (const auto& s : spans) {
      batch.push_back(&s);
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread timer;
  if (args.shutdown_after_ms >= 0) {
    timer = std::thread([&] {
      std::unique_lock lock(mu);
      if (cv.wait_for(lock, std::chrono::milliseconds(args.shutdown_after_ms),
                      [&] { return finished; })) {
        return;
      }
      exporter.Shutdown(Clock::now() + std::chrono::milliseconds(args.shutdown_grace_ms));
    });
  }

  for (long i = 0; i < args.batches; ++i) {
    const auto start = Clock::now();
    ExportOutcome outcome = exporter.Export(batch);
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    PrintLine("{\"event\":\"outcome\",\"batch\":" + std::to_string(i) + ",\"exported\":" +
              std::to_string(outcome.exported) + ",\"dropped\":" + std::to_string(outcome.dropped) +
              ",\"reason\":" + JsonString(outcome.drop_reason) +
              ",\"elapsed_ms\":" + std::to_string(elapsed) + "}");
  }
  {
    std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  if (timer.joinable()) {
    timer.join();
  }
  exporter.Shutdown(Clock::now() + std::chrono::milliseconds(args.shutdown_grace_ms));

  if (stats) {
    const OtlpExporterStats st = stats();
    PrintLine("{\"event\":\"stats\",\"requests\":" + std::to_string(st.requests) +
              ",\"retries\":" + std::to_string(st.retries) +
              ",\"spans_exported\":" + std::to_string(st.spans_exported) +
              ",\"spans_rejected\":" + std::to_string(st.spans_rejected) +
              ",\"spans_failed\":" + std::to_string(st.spans_failed) +
              ",\"bytes_sent\":" + std::to_string(st.bytes_sent) + "}");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    return Usage();
  }
  Args args;
  args.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      return Usage();
    }
    const char* value = argv[++i];
    bool ok = true;
    if (flag == "--protobuf") {
      args.protobuf_path = value;
    } else if (flag == "--json") {
      args.json_path = value;
    } else if (flag == "--batches") {
      ok = ParseLong(value, args.batches);
    } else if (flag == "--repeat") {
      ok = ParseLong(value, args.repeat);
    } else if (flag == "--initial-backoff-ms") {
      ok = ParseLong(value, args.initial_backoff_ms);
    } else if (flag == "--max-backoff-ms") {
      ok = ParseLong(value, args.max_backoff_ms);
    } else if (flag == "--shutdown-after-ms") {
      ok = ParseLong(value, args.shutdown_after_ms);
    } else if (flag == "--shutdown-grace-ms") {
      ok = ParseLong(value, args.shutdown_grace_ms);
    } else {
      ok = false;
    }
    if (!ok) {
      return Usage();
    }
  }

  const std::vector<SpanData> spans = FixedSpans();
  auto on_error = [](std::string_view message) {
    PrintLine("{\"event\":\"error\",\"message\":" + JsonString(message) + "}");
  };

  try {
    if (args.mode == "encode") {
      if (args.protobuf_path.empty() && args.json_path.empty()) {
        return Usage();
      }
      std::vector<const SpanData*> batch;
      batch.reserve(spans.size());
      for (const auto& s : spans) {
        batch.push_back(&s);
      }
      std::string body;
      if (!args.protobuf_path.empty()) {
        EncodeTracesProtobuf(FixedResource(), FixedScope(), batch, body);
        if (!WriteFile(args.protobuf_path, body)) {
          return 1;
        }
      }
      if (!args.json_path.empty()) {
        body.clear();
        EncodeTracesJson(FixedResource(), FixedScope(), batch, body);
        if (!WriteFile(args.json_path, body)) {
          return 1;
        }
      }
      return 0;
    }
    if (args.mode == "http") {
      OtlpHttpExporterOptions options = OtlpHttpExporterOptionsFromEnv();
      if (args.initial_backoff_ms >= 0) {
        options.initial_backoff = std::chrono::milliseconds(args.initial_backoff_ms);
      }
      if (args.max_backoff_ms >= 0) {
        options.max_backoff = std::chrono::milliseconds(args.max_backoff_ms);
      }
      options.on_error = on_error;
      OtlpHttpExporter exporter(std::move(options), FixedResource(), FixedScope());
      return RunExports(exporter, args, spans, [&] { return exporter.stats(); });
    }
    if (args.mode == "file") {
      auto options = OtlpFileExporterOptionsFromEnv();
      if (!options) {
        std::cerr << "otlp_send: VIGIL_TRACES_FILE is not set\n";
        return 2;
      }
      options->on_error = on_error;
      OtlpFileExporter exporter(std::move(*options), FixedResource(), FixedScope());
      return RunExports(exporter, args, spans, nullptr);
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "otlp_send: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "otlp_send: " << e.what() << "\n";
    return 1;
  }
  return Usage();
}

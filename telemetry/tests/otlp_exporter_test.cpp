// OtlpHttpExporter against a canned HTTP responder on 127.0.0.1 and against dead ports,
// and OtlpFileExporter against real files. The Python suite tests/integration/
// test_otlp_export.py covers the same behaviour end to end with longer waits.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/testing/canned_http.hpp>
#include <vigil/testing/eventually.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/ports.hpp>
#include <vigil/testing/text.hpp>

namespace vigil::telemetry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using test_support::Eventually;

using test_support::CannedServer;
using test_support::Gunzip;

std::string Response(int status, const std::string& extra_headers = "",
                     const std::string& body = "") {
  return test_support::CannedResponse(status, extra_headers, body);
}

class OtlpExporterTest : public ::testing::Test {
 protected:
  OtlpExporterTest() {
    for (int i = 0; i < 5; ++i) {
      SpanData s;
      s.trace_id = TraceId::Random();
      s.span_id = SpanId::Random();
      s.name = "span " + std::to_string(i);
      s.kind = SpanKind::kServer;
      s.start_unix_nano = 1700000000000000000ULL;
      s.end_unix_nano = 1700000000000001000ULL;
      s.attributes = {{"i", i}};
      spans_.push_back(std::move(s));
    }
    for (const auto& s : spans_) {
      batch_.push_back(&s);
    }
    resource_.attributes = {{"service.name", "test"}};
  }

  OtlpHttpExporterOptions Options(std::string endpoint) {
    OtlpHttpExporterOptions o;
    o.endpoint = std::move(endpoint);
    o.timeout = milliseconds(5000);
    o.initial_backoff = milliseconds(10);
    o.max_backoff = milliseconds(20);
    o.on_error = [this](std::string_view m) {
      std::lock_guard lock(mu_);
      errors_.emplace_back(m);
    };
    return o;
  }

  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

  std::vector<SpanData> spans_;
  std::vector<const SpanData*> batch_;
  Resource resource_;
  InstrumentationScope scope_{"vigil", "1"};
  std::mutex mu_;
  std::vector<std::string> errors_;
};

TEST_F(OtlpExporterTest, DeliversProtobufAndReusesTheConnection) {
  CannedServer server({Response(200)});
  auto options = Options(server.url("/v1/traces"));
  options.headers = {{"api-key", "s3cret"}, {"Empty", ""}};
  OtlpHttpExporter exporter(options, resource_, scope_);
  for (int i = 0; i < 3; ++i) {
    const ExportOutcome out = exporter.Export(batch_);
    EXPECT_EQ(out.exported, 5u);
    EXPECT_EQ(out.dropped, 0u);
    EXPECT_EQ(out.drop_reason, "");
  }
  EXPECT_EQ(server.connections(), 1);
  std::string expected;
  EncodeTracesProtobuf(resource_, scope_, batch_, expected);
  ASSERT_EQ(server.bodies().size(), 3u);
  EXPECT_EQ(server.bodies()[2], expected);
  const std::string head = server.heads()[0];
  EXPECT_EQ(head.rfind("POST /v1/traces HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: application/x-protobuf\r\n"), std::string::npos);
  EXPECT_NE(head.find("api-key: s3cret\r\n"), std::string::npos);
  EXPECT_NE(head.find("Empty:"), std::string::npos);
  EXPECT_EQ(head.find("Expect:"), std::string::npos);
  EXPECT_TRUE(errors().empty());
  const auto st = exporter.stats();
  EXPECT_EQ(st.requests, 3u);
  EXPECT_EQ(st.retries, 0u);
  EXPECT_EQ(st.spans_exported, 15u);
}

TEST_F(OtlpExporterTest, JsonWithGzip) {
  CannedServer server({Response(200)});
  auto options = Options(server.url("/v1/traces"));
  options.protocol = OtlpProtocol::kHttpJson;
  options.compression = OtlpCompression::kGzip;
  OtlpHttpExporter exporter(options, resource_, scope_);
  EXPECT_EQ(exporter.Export(batch_).exported, 5u);
  std::string expected;
  EncodeTracesJson(resource_, scope_, batch_, expected);
  ASSERT_EQ(server.bodies().size(), 1u);
  EXPECT_EQ(Gunzip(server.bodies()[0]), expected);
  EXPECT_NE(server.heads()[0].find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(server.heads()[0].find("Content-Encoding: gzip\r\n"), std::string::npos);
}

TEST_F(OtlpExporterTest, RetriesAfterRetryAfterZeroThenSucceeds) {
  CannedServer server({Response(503, "Retry-After: 0\r\n"), Response(429), Response(200)});
  OtlpHttpExporter exporter(Options(server.url("/v1/traces")), resource_, scope_);
  const ExportOutcome out = exporter.Export(batch_);
  EXPECT_EQ(out.exported, 5u);
  EXPECT_EQ(exporter.stats().requests, 3u);
  EXPECT_EQ(exporter.stats().retries, 2u);
  EXPECT_TRUE(errors().empty());
  const auto bodies = server.bodies();
  EXPECT_EQ(bodies[0], bodies[2]) << "the same batch is sent again";
}

TEST_F(OtlpExporterTest, ClientErrorDropsOnceWithTheReceiversMessage) {
  const std::string status = std::string("\x08\x03\x12\x08", 4) + "no spans";  // google.rpc.Status
  CannedServer server({Response(400, "Content-Type: application/x-protobuf\r\n", status)});
  OtlpHttpExporter exporter(Options(server.url("/v1/traces")), resource_, scope_);
  const ExportOutcome out = exporter.Export(batch_);
  EXPECT_EQ(out.exported, 0u);
  EXPECT_EQ(out.dropped, 5u);
  EXPECT_EQ(out.drop_reason, "rejected");
  EXPECT_EQ(exporter.stats().requests, 1u);
  ASSERT_EQ(errors().size(), 1u);
  EXPECT_NE(errors()[0].find("HTTP 400: no spans"), std::string::npos) << errors()[0];
}

TEST_F(OtlpExporterTest, PartialSuccessIsCounted) {
  const std::string body = std::string("\x0a\x07\x08\x02\x12\x03", 6) + "old";
  CannedServer server({Response(200, "Content-Type: application/x-protobuf\r\n", body)});
  OtlpHttpExporter exporter(Options(server.url("/v1/traces")), resource_, scope_);
  const ExportOutcome out = exporter.Export(batch_);
  EXPECT_EQ(out.exported, 3u);
  EXPECT_EQ(out.dropped, 2u);
  EXPECT_EQ(out.drop_reason, "rejected");
  ASSERT_EQ(errors().size(), 1u);
  EXPECT_NE(errors()[0].find("rejected 2: old"), std::string::npos) << errors()[0];
  EXPECT_EQ(exporter.stats().spans_rejected, 2u);
}

TEST_F(OtlpExporterTest, RejectedCountIsClampedToTheBatch) {
  const std::string body = R"({"partialSuccess":{"rejectedSpans":"99"}})";
  CannedServer server({Response(200, "Content-Type: application/json\r\n", body)});
  OtlpHttpExporter exporter(Options(server.url("/v1/traces")), resource_, scope_);
  const ExportOutcome out = exporter.Export(batch_);
  EXPECT_EQ(out.exported + out.dropped, 5u);
  EXPECT_EQ(out.dropped, 5u);
}

TEST_F(OtlpExporterTest, DeadReceiverFailsWithinTheTimeout) {
  auto options =
      Options("http://127.0.0.1:" + std::to_string(test_support::UnusedPort()) + "/v1/traces");
  options.timeout = milliseconds(300);
  OtlpHttpExporter exporter(options, resource_, scope_);
  const auto start = Clock::now();
  const ExportOutcome out = exporter.Export(batch_);
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(out.dropped, 5u);
  EXPECT_EQ(out.drop_reason, "export_failed");
  EXPECT_LT(elapsed, milliseconds(800));
  EXPECT_GE(exporter.stats().requests, 3u) << "transport errors are retried";
  ASSERT_EQ(errors().size(), 1u) << "one line per failed batch";
  EXPECT_NE(errors()[0].find("gave up"), std::string::npos) << errors()[0];
}

TEST_F(OtlpExporterTest, ADownReceiverIsProbedOncePerBackoffNotRetriedForEveryBatch) {
  // Without this every batch held the export thread for the whole timeout while the
  // processor's queue filled up behind it.
  auto options =
      Options("http://127.0.0.1:" + std::to_string(test_support::UnusedPort()) + "/v1/traces");
  options.timeout = milliseconds(100);
  options.initial_backoff = milliseconds(400);  // the first wait outlasts the timeout
  options.max_backoff = milliseconds(400);
  OtlpHttpExporter exporter(options, resource_, scope_);
  ASSERT_EQ(exporter.Export(batch_).drop_reason, "export_failed");
  ASSERT_EQ(exporter.stats().requests, 1u);

  // Within the backoff (200-400 ms): dropped at once, no request.
  const auto start = Clock::now();
  const ExportOutcome skipped = exporter.Export(batch_);
  EXPECT_LT(Clock::now() - start, milliseconds(50));
  EXPECT_EQ(skipped.dropped, 5u);
  EXPECT_EQ(skipped.drop_reason, "export_failed");
  EXPECT_EQ(exporter.stats().requests, 1u);
  EXPECT_EQ(exporter.stats().batches_skipped, 1u);
  EXPECT_EQ(exporter.stats().spans_failed, 10u);

  // Once the backoff is over, one attempt and no retries decides the next batch.
  std::this_thread::sleep_for(milliseconds(450));  // the backoff itself is what is tested
  const ExportOutcome probed = exporter.Export(batch_);
  EXPECT_EQ(probed.drop_reason, "export_failed");
  EXPECT_EQ(exporter.stats().requests, 2u);
  EXPECT_EQ(exporter.stats().retries, 0u);
  // The skipped batch is not a line of its own: the next attempt's line reports it.
  const auto lines = errors();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("still down"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("and 5 spans dropped unsent"), std::string::npos) << lines[1];
}

TEST_F(OtlpExporterTest, ShutdownEndsABackoffWaitPromptly) {
  auto options =
      Options("http://127.0.0.1:" + std::to_string(test_support::UnusedPort()) + "/v1/traces");
  options.timeout = milliseconds(60000);
  options.initial_backoff = milliseconds(20000);
  options.max_backoff = milliseconds(20000);
  OtlpHttpExporter exporter(options, resource_, scope_);
  ExportOutcome out;
  std::thread exporting([&] { out = exporter.Export(batch_); });
  ASSERT_TRUE(Eventually([&] { return exporter.stats().requests >= 1; }));
  const auto start = Clock::now();
  exporter.Shutdown(Clock::now() + milliseconds(5000));
  exporting.join();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_EQ(out.dropped, 5u);
  EXPECT_EQ(out.drop_reason, "shutdown");
  EXPECT_EQ(errors().size(), 1u);
}

TEST_F(OtlpExporterTest, ShutdownAbortsAnAnswerlessRequestAtItsDeadline) {
  test_support::SilentListener silent;  // the kernel accepts; nobody answers
  auto options = Options("http://127.0.0.1:" + std::to_string(silent.port()) + "/v1/traces");
  options.timeout = milliseconds(60000);
  OtlpHttpExporter exporter(options, resource_, scope_);
  ExportOutcome out;
  std::thread exporting([&] { out = exporter.Export(batch_); });
  ASSERT_TRUE(Eventually([&] { return exporter.stats().requests >= 1; }));
  const auto start = Clock::now();
  exporter.Shutdown(start + milliseconds(200));
  exporting.join();
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(190)) << "the in-flight request gets its grace period";
  EXPECT_LT(elapsed, milliseconds(1000));
  EXPECT_EQ(out.drop_reason, "shutdown");
}

TEST_F(OtlpExporterTest, AfterShutdownEverythingIsDroppedSilently) {
  OtlpHttpExporter exporter(Options("http://127.0.0.1:1/v1/traces"), resource_, scope_);
  exporter.Shutdown(Clock::now());
  const ExportOutcome out = exporter.Export(batch_);
  EXPECT_EQ(out.exported, 0u);
  EXPECT_EQ(out.dropped, 5u);
  EXPECT_EQ(out.drop_reason, "shutdown");
  EXPECT_EQ(exporter.stats().requests, 0u);
  EXPECT_TRUE(errors().empty());
  exporter.Shutdown(Clock::now());  // twice is fine
}

TEST_F(OtlpExporterTest, EmptyBatchSendsNothing) {
  OtlpHttpExporter exporter(Options("http://127.0.0.1:1/v1/traces"), resource_, scope_);
  const ExportOutcome out = exporter.Export({});
  EXPECT_EQ(out.exported + out.dropped, 0u);
  EXPECT_EQ(exporter.stats().requests, 0u);
}

TEST_F(OtlpExporterTest, RejectsNonHttpEndpoints) {
  EXPECT_THROW(OtlpHttpExporter(Options("ftp://x/v1/traces"), resource_, scope_),
               std::invalid_argument);
  EXPECT_THROW(OtlpHttpExporter(Options("localhost:4318"), resource_, scope_),
               std::invalid_argument);
}

TEST_F(OtlpExporterTest, ThrowingErrorCallbackIsContained) {
  CannedServer server({Response(400)});
  auto options = Options(server.url("/v1/traces"));
  options.on_error = [](std::string_view) { throw std::runtime_error("logger broke"); };
  OtlpHttpExporter exporter(options, resource_, scope_);
  EXPECT_EQ(exporter.Export(batch_).drop_reason, "rejected");
}

// ---------------------------------------------------------------------------- file exporter

class OtlpFileExporterTest : public OtlpExporterTest {
 protected:
  static std::vector<std::string> Lines(const std::filesystem::path& p) {
    return test_support::SplitLines(test_support::ReadFile(p));
  }

  test_support::TempDir temp_{"otlp-file"};
  const std::filesystem::path& dir_ = temp_.path();
};

TEST_F(OtlpFileExporterTest, OneJsonLinePerBatchAppended) {
  const auto path = dir_ / "traces.jsonl";
  std::ofstream(path) << "existing\n";
  OtlpFileExporter exporter({path.string(), nullptr}, resource_, scope_);
  EXPECT_EQ(exporter.Export(batch_).exported, 5u);
  EXPECT_EQ(exporter.Export(std::span(batch_).first(2)).exported, 2u);
  std::string one, two;
  EncodeTracesJson(resource_, scope_, batch_, one);
  EncodeTracesJson(resource_, scope_, std::span(batch_).first(2), two);
  EXPECT_EQ(Lines(path), (std::vector<std::string>{"existing", one, two}));
}

TEST_F(OtlpFileExporterTest, ReopenFollowsRotation) {
  const auto path = dir_ / "traces.jsonl";
  // Without size rotation the exporter leaves moving the file to logrotate and Reopen().
  OtlpFileExporter exporter({path.string(), nullptr, 0}, resource_, scope_);
  exporter.Export(batch_);
  std::filesystem::rename(path, dir_ / "traces.jsonl.1");
  exporter.Export(batch_);  // still the old file
  ASSERT_TRUE(exporter.Reopen());
  exporter.Export(batch_);
  EXPECT_EQ(Lines(dir_ / "traces.jsonl.1").size(), 2u);
  EXPECT_EQ(Lines(path).size(), 1u);
}

TEST_F(OtlpFileExporterTest, RotatesBySizeAndKeepsTheNewestFiles) {
  const auto path = dir_ / "traces.jsonl";
  std::string line;
  EncodeTracesJson(resource_, scope_, batch_, line);
  const std::uint64_t max_bytes = 2 * (line.size() + 1) + 10;  // two lines fit, not three
  OtlpFileExporter exporter({path.string(), nullptr, max_bytes, 3}, resource_, scope_);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(exporter.Export(batch_).exported, 5u) << i;
  }
  // Nine lines, two per file: the current file and two older ones hold the newest six.
  EXPECT_EQ(Lines(path).size(), 1u);
  EXPECT_EQ(Lines(dir_ / "traces.jsonl.1").size(), 2u);
  EXPECT_EQ(Lines(dir_ / "traces.jsonl.2").size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "traces.jsonl.3"));
  for (const char* name : {"traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"}) {
    EXPECT_LE(std::filesystem::file_size(dir_ / name), max_bytes) << name;
  }
}

TEST_F(OtlpFileExporterTest, RotationKeepsOrderAndNeverSplitsALine) {
  const auto path = dir_ / "traces.jsonl";
  std::string big, small;
  EncodeTracesJson(resource_, scope_, batch_, big);
  EncodeTracesJson(resource_, scope_, std::span(batch_).first(1), small);
  // Smaller than one big line: each big line is written whole, alone in its file.
  OtlpFileExporter exporter({path.string(), nullptr, big.size() / 2, 4}, resource_, scope_);
  exporter.Export(std::span(batch_).first(1));
  exporter.Export(batch_);
  exporter.Export(std::span(batch_).first(1));
  EXPECT_EQ(Lines(dir_ / "traces.jsonl.2"), std::vector<std::string>{small});
  EXPECT_EQ(Lines(dir_ / "traces.jsonl.1"), std::vector<std::string>{big});
  EXPECT_EQ(Lines(path), std::vector<std::string>{small});
}

TEST_F(OtlpFileExporterTest, WritersSharingAPathRotateItTogether) {
  // Two exporters on one path stand for two services sharing build/run/traces.jsonl. A
  // writer that did not rotate must follow the other's rotation, or it would go on
  // appending to traces.jsonl.1 without bound.
  const auto path = dir_ / "traces.jsonl";
  std::string line;
  EncodeTracesJson(resource_, scope_, batch_, line);
  const std::uint64_t max_bytes = 3 * (line.size() + 1);
  OtlpFileExporter a({path.string(), nullptr, max_bytes, 100}, resource_, scope_);
  OtlpFileExporter b({path.string(), nullptr, max_bytes, 100}, resource_, scope_);
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(a.Export(batch_).exported, 5u);
    EXPECT_EQ(b.Export(batch_).exported, 5u);
  }
  std::size_t lines = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_LE(entry.file_size(), max_bytes) << entry.path();
    lines += Lines(entry.path()).size();
  }
  EXPECT_EQ(lines, 2u * kRounds) << "every line is in exactly one file";
  EXPECT_EQ(Lines(path).size(), 1u) << "3 per file: 40 lines end with one in the newest";
}

TEST_F(OtlpFileExporterTest, WriteErrorsDropTheBatchWithOneLine) {
  if (!std::filesystem::exists("/dev/full")) {
    GTEST_SKIP() << "no /dev/full";
  }
  auto options = OtlpFileExporterOptions{"/dev/full", [this](std::string_view m) {
                                           std::lock_guard lock(mu_);
                                           errors_.emplace_back(m);
                                         }};
  OtlpFileExporter exporter(options, resource_, scope_);
  const ExportOutcome out = exporter.Export(batch_);
  EXPECT_EQ(out.dropped, 5u);
  EXPECT_EQ(out.drop_reason, "export_failed");
  ASSERT_EQ(errors().size(), 1u);
  EXPECT_NE(errors()[0].find("/dev/full"), std::string::npos);
}

TEST_F(OtlpFileExporterTest, ShutdownThenDrop) {
  OtlpFileExporter exporter({(dir_ / "t.jsonl").string(), nullptr}, resource_, scope_);
  exporter.Shutdown(Clock::now());
  EXPECT_EQ(exporter.Export(batch_).drop_reason, "shutdown");
  EXPECT_FALSE(exporter.Reopen());
}

TEST_F(OtlpFileExporterTest, UnopenablePathThrowsNamingIt) {
  try {
    OtlpFileExporter exporter({(dir_ / "missing" / "t.jsonl").string(), nullptr}, resource_,
                              scope_);
    ADD_FAILURE() << "opened a file in a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vigil::telemetry

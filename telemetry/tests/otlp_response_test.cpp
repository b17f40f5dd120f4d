// Reading receivers' answers: ExportTraceServiceResponse.partial_success in protobuf and
// JSON, google.rpc.Status messages, and content types.

#include <gtest/gtest.h>

#include <string>
#include <vigil/testing/text.hpp>

#include "otlp/response.hpp"

namespace vigil::telemetry::otlp {
namespace {

using test_support::Bytes;

TEST(OtlpResponse, EmptyBodyIsFullSuccess) {
  for (bool json : {false, true}) {
    auto r = ParseExportResponse("", json);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->rejected_spans, 0);
    EXPECT_EQ(r->error_message, "");
  }
}

TEST(OtlpResponse, ProtobufPartialSuccess) {
  // {1: {1: 3, 2: "too old"}}
  const std::string body = Bytes({0x0a, 0x0b, 0x08, 0x03, 0x12, 0x07}) + "too old";
  auto r = ParseExportResponse(body, false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rejected_spans, 3);
  EXPECT_EQ(r->error_message, "too old");
}

TEST(OtlpResponse, ProtobufSkipsUnknownFieldsOfEveryWireType) {
  const std::string body = Bytes({0x10, 0x05,                          // varint 2
                                  0x19, 1,    2,    3, 4, 5, 6, 7, 8,  // fixed64 3
                                  0x25, 1,    2,    3, 4,              // fixed32 4
                                  0x0a, 0x08,                          // field 1
                                  0x18, 0x01,                          //   unknown 3
                                  0x08, 0xac, 0x02,                    //   rejected 300
                                  0x22, 0x01, 'x',                     //   unknown 4
                                  0x2a, 0x00});                        // bytes 5
  auto r = ParseExportResponse(body, false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rejected_spans, 300);
}

TEST(OtlpResponse, ProtobufMalformed) {
  EXPECT_FALSE(ParseExportResponse(Bytes({0x0a, 0x05, 0x08}), false).has_value()) << "truncated";
  EXPECT_FALSE(ParseExportResponse(Bytes({0x0a}), false).has_value());
  EXPECT_FALSE(ParseExportResponse(Bytes({0x0b}), false).has_value()) << "groups";
  EXPECT_FALSE(
      ParseExportResponse(
          Bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), false)
          .has_value())
      << "an 11-byte varint";
  EXPECT_FALSE(ParseExportResponse("<html>bad gateway</html>", false).has_value());
}

TEST(OtlpResponse, JsonPartialSuccess) {
  auto r =
      ParseExportResponse(R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad"}})", true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rejected_spans, 2);
  EXPECT_EQ(r->error_message, "bad");

  r = ParseExportResponse(R"( { "partial_success" : { "rejected_spans" : 5 } } )", true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rejected_spans, 5) << "snake_case names and numbers are accepted too";

  r = ParseExportResponse(
      R"({"other":[1,{"a":null},"x",true,-1.5e3],"partialSuccess":{"extra":{},"errorMessage":"caf\u00e9 \ud83d\ude00 \"q\""}})",
      true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rejected_spans, 0);
  EXPECT_EQ(r->error_message, "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\"");

  r = ParseExportResponse(R"({"partialSuccess":null})", true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rejected_spans, 0);
  r = ParseExportResponse("{}", true);
  ASSERT_TRUE(r.has_value());
}

TEST(OtlpResponse, JsonMalformed) {
  for (const char* bad : {"{", "[]", "{\"partialSuccess\":{\"rejectedSpans\":\"x\"}}",
                          "{\"partialSuccess\":{\"rejectedSpans\":1.5}}", "{} trailing",
                          "{\"a\":\"\\ud800\"}", "{\"a\" 1}", "ok"}) {
    EXPECT_FALSE(ParseExportResponse(bad, true).has_value()) << bad;
  }
}

TEST(OtlpResponse, StatusMessage) {
  // google.rpc.Status{1: 3, 2: "invalid span"}
  const std::string pb = Bytes({0x08, 0x03, 0x12, 0x0c}) + "invalid span";
  EXPECT_EQ(ParseStatusMessage(pb, false), "invalid span");
  EXPECT_EQ(ParseStatusMessage(R"({"code":3,"message":"invalid span","details":[]})", true),
            "invalid span");
  EXPECT_EQ(ParseStatusMessage("", true), "");
  EXPECT_EQ(ParseStatusMessage("not json", true), "");
  EXPECT_EQ(ParseStatusMessage(Bytes({0x12, 0x09}) + "short", false), "");
}

TEST(OtlpResponse, ContentTypes) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(IsJsonContentType("application/jsonl"));
  EXPECT_FALSE(IsJsonContentType(""));
  EXPECT_TRUE(IsProtobufContentType("application/x-protobuf"));
  EXPECT_TRUE(IsProtobufContentType("application/protobuf"));
  EXPECT_FALSE(IsProtobufContentType("text/plain"));
}

}  // namespace
}  // namespace vigil::telemetry::otlp

// The line format of docs/conventions.md "Log lines": key order, every field type, escaping,
// redaction, fixed-key collisions, levels.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>
#include <vigil/telemetry/log.hpp>
#include <vigil/testing/files.hpp>
#include <vigil/testing/log_lines.hpp>

#include "log/json.hpp"

namespace vigil::telemetry {
namespace {

using test_support::JsonLine;
using test_support::JsonScalar;
using test_support::MemFile;
using test_support::ParseLogLine;

LoggerOptions Options(int fd) {
  LoggerOptions o;
  o.service = "auth";
  o.version = "0.3.0";
  o.env = "dev";
  o.fd = fd;
  o.handle_signals = false;
  return o;
}

// Logs through a fresh logger and returns the single line it wrote.
template <typename Fn>
JsonLine OneLine(Fn&& fn, LoggerOptions options = {}) {
  MemFile capture;
  options.fd = capture.fd();
  options.handle_signals = false;
  {
    Logger log(options);
    fn(log);
  }
  auto lines = capture.LogLines();
  EXPECT_EQ(lines.size(), 1u);
  return lines.empty() ? JsonLine{} : lines.front();
}

std::string Str(const JsonLine& line, std::string_view key) {
  const JsonScalar* v = line.Find(key);
  EXPECT_NE(v, nullptr) << "missing key " << key;
  if (v == nullptr) {
    return {};
  }
  EXPECT_EQ(v->kind, JsonScalar::Kind::kString) << key;
  return v->text;
}

std::string Num(const JsonLine& line, std::string_view key) {
  const JsonScalar* v = line.Find(key);
  EXPECT_NE(v, nullptr) << "missing key " << key;
  if (v == nullptr) {
    return {};
  }
  EXPECT_EQ(v->kind, JsonScalar::Kind::kNumber) << key;
  return v->text;
}

std::int64_t UnixMicros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// "2026-11-22T13:05:10.123456Z" -> microseconds since the epoch.
std::int64_t ParseTime(const std::string& s) {
  using namespace std::chrono;
  const int y = std::stoi(s.substr(0, 4));
  const auto mo = static_cast<unsigned>(std::stoi(s.substr(5, 2)));
  const auto d = static_cast<unsigned>(std::stoi(s.substr(8, 2)));
  const sys_days date{year{y} / month{mo} / day{d}};
  const std::int64_t secs = duration_cast<seconds>(date.time_since_epoch()).count() +
                            std::stoll(s.substr(11, 2)) * 3600 + std::stoll(s.substr(14, 2)) * 60 +
                            std::stoll(s.substr(17, 2));
  return secs * 1'000'000 + std::stoll(s.substr(20, 6));
}

// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" exactly.
bool IsRfc3339Micros(const std::string& s) {
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (s.size() != kShape.size()) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != kShape[i]) {
      return false;
    }
  }
  return true;
}

RequestContext FixedContext() {
  RequestContext ctx;
  ctx.span.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  ctx.span.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  ctx.request_id = *RequestId::FromString("01JD8X3Z7Q5K2M9N4P6R8T0V2W");
  return ctx;
}

TEST(LogFormat, ConventionsExampleKeyOrderAndValues) {
  const RequestContext ctx = FixedContext();
  const std::string route = "/login";
  const JsonLine line = OneLine(
      [&](Logger& log) {
        log.Info(ctx, "request completed",
                 {{"http.request.method", "POST"},
                  {"http.route", route},
                  {"http.response.status_code", 200},
                  {"duration_ms", std::chrono::microseconds(12400)}});
      },
      Options(-1));
  const std::vector<std::string> expected = {"time",       "level",
                                             "msg",        "service",
                                             "version",    "env",
                                             "trace_id",   "span_id",
                                             "request_id", "http.request.method",
                                             "http.route", "http.response.status_code",
                                             "duration_ms"};
  EXPECT_EQ(line.Keys(), expected);
  EXPECT_TRUE(IsRfc3339Micros(Str(line, "time"))) << Str(line, "time");
  EXPECT_EQ(Str(line, "level"), "info");
  EXPECT_EQ(Str(line, "msg"), "request completed");
  EXPECT_EQ(Str(line, "service"), "auth");
  EXPECT_EQ(Str(line, "version"), "0.3.0");
  EXPECT_EQ(Str(line, "env"), "dev");
  EXPECT_EQ(Str(line, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Str(line, "span_id"), "00f067aa0ba902b7");
  EXPECT_EQ(Str(line, "request_id"), "01JD8X3Z7Q5K2M9N4P6R8T0V2W");
  EXPECT_EQ(Str(line, "http.request.method"), "POST");
  EXPECT_EQ(Str(line, "http.route"), "/login");
  EXPECT_EQ(Num(line, "http.response.status_code"), "200");
  EXPECT_EQ(Num(line, "duration_ms"), "12.4");
}

TEST(LogFormat, ExactBytesAfterTheTimestamp) {
  MemFile capture;
  {
    Logger log(Options(capture.fd()));
    log.Warn(FixedContext(), "slow", {{"n", 1}});
  }
  const auto lines = capture.Lines();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  ASSERT_EQ(l.substr(0, 9), R"({"time":")");
  EXPECT_EQ(l.substr(9 + 27),
            R"(","level":"warn","msg":"slow","service":"auth","version":"0.3.0","env":"dev",)"
            R"("trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",)"
            R"("request_id":"01JD8X3Z7Q5K2M9N4P6R8T0V2W","n":1})");
}

TEST(LogFormat, ProcessScopeLineHasNoRequestKeys) {
  const JsonLine line = OneLine([](Logger& log) { log.Error("disk full", {{"free", 0}}); });
  const std::vector<std::string> expected = {"time",    "level", "msg", "service",
                                             "version", "env",   "free"};
  EXPECT_EQ(line.Keys(), expected);
  EXPECT_EQ(Str(line, "level"), "error");
  EXPECT_EQ(Str(line, "service"), "unknown");
  EXPECT_EQ(Str(line, "version"), "0.0.0");
}

TEST(LogFormat, RequestIdSkippedWhenEmptyAndInvalidIdsSkipped) {
  RequestContext ctx = RequestContext::NewRoot();
  JsonLine line = OneLine([&](Logger& log) { log.Info(ctx, "m"); });
  EXPECT_EQ(line.Count("trace_id"), 1u);
  EXPECT_EQ(line.Count("span_id"), 1u);
  EXPECT_EQ(line.Count("request_id"), 0u);
  EXPECT_EQ(Str(line, "trace_id"), ctx.span.trace_id.ToHex());

  RequestContext empty;  // all-zero ids are invalid
  empty.request_id = *RequestId::FromString("abc");
  line = OneLine([&](Logger& log) { log.Info(empty, "m"); });
  const std::vector<std::string> expected = {"time",    "level", "msg",       "service",
                                             "version", "env",   "request_id"};
  EXPECT_EQ(line.Keys(), expected);
}

TEST(LogFormat, TimestampIsRealToTheMicrosecond) {
  MemFile capture;
  std::vector<std::pair<std::int64_t, std::int64_t>> windows;
  {
    Logger log(Options(capture.fd()));
    for (int i = 0; i < 40; ++i) {
      const auto before = std::chrono::system_clock::now();
      log.Info("tick", {{"i", i}});
      const auto after = std::chrono::system_clock::now();
      windows.emplace_back(UnixMicros(before), UnixMicros(after));
      // Spread the lines over ~60 ms so that several clock anchors are involved.
      usleep(1500);
    }
  }
  const auto lines = capture.LogLines();
  ASSERT_EQ(lines.size(), windows.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::int64_t t = ParseTime(Str(lines[i], "time"));
    // The stamp is taken between the two clock reads; allow a few microseconds for the
    // counter-to-clock conversion.
    EXPECT_GE(t, windows[i].first - 20) << i;
    EXPECT_LE(t, windows[i].second + 20) << i;
  }
}

TEST(LogFormat, StringFieldTypes) {
  std::string owned = "owned";
  char mutable_chars[] = "mutable";
  const char* null_chars = nullptr;
  const JsonLine line = OneLine([&](Logger& log) {
    log.Info("m", {{"literal", "lit"},
                   {"std_string", owned},
                   {"temporary", std::string("temp")},
                   {"view", std::string_view("view!").substr(0, 4)},
                   {"char_ptr", mutable_chars},
                   {"null", null_chars},
                   {"empty", ""}});
  });
  EXPECT_EQ(Str(line, "literal"), "lit");
  EXPECT_EQ(Str(line, "std_string"), "owned");
  EXPECT_EQ(Str(line, "temporary"), "temp");
  EXPECT_EQ(Str(line, "view"), "view");
  EXPECT_EQ(Str(line, "char_ptr"), "mutable");
  EXPECT_EQ(Str(line, "null"), "");
  EXPECT_EQ(Str(line, "empty"), "");
}

TEST(LogFormat, IntegerFieldTypes) {
  enum Color { kRed = 2 };
  enum class Code : std::uint16_t { kTeapot = 418 };
  const JsonLine line = OneLine([](Logger& log) {
    log.Info("m", {{"i8", std::int8_t{-8}},
                   {"u8", std::uint8_t{250}},
                   {"i16", std::int16_t{-16000}},
                   {"u16", std::uint16_t{65535}},
                   {"int", -1},
                   {"unsigned", 4000000000u},
                   {"long", -9000000000L},
                   {"i64min", std::numeric_limits<std::int64_t>::min()},
                   {"u64max", std::numeric_limits<std::uint64_t>::max()},
                   {"size", std::size_t{42}},
                   {"enum", kRed},
                   {"enum_class", Code::kTeapot}});
  });
  EXPECT_EQ(Num(line, "i8"), "-8");
  EXPECT_EQ(Num(line, "u8"), "250");
  EXPECT_EQ(Num(line, "i16"), "-16000");
  EXPECT_EQ(Num(line, "u16"), "65535");
  EXPECT_EQ(Num(line, "int"), "-1");
  EXPECT_EQ(Num(line, "unsigned"), "4000000000");
  EXPECT_EQ(Num(line, "long"), "-9000000000");
  EXPECT_EQ(Num(line, "i64min"), "-9223372036854775808");
  EXPECT_EQ(Num(line, "u64max"), "18446744073709551615");
  EXPECT_EQ(Num(line, "size"), "42");
  EXPECT_EQ(Num(line, "enum"), "2");
  EXPECT_EQ(Num(line, "enum_class"), "418");
}

TEST(LogFormat, FloatingBoolAndNonFinite) {
  const JsonLine line = OneLine([](Logger& log) {
    log.Info("m", {{"d", 0.1},
                   {"f", 1.5f},
                   {"big", 1e300},
                   {"neg", -2.5},
                   {"whole", 3.0},
                   {"nan", std::nan("")},
                   {"inf", std::numeric_limits<double>::infinity()},
                   {"ninf", -std::numeric_limits<float>::infinity()},
                   {"yes", true},
                   {"no", false}});
  });
  EXPECT_EQ(Num(line, "d"), "0.1");
  EXPECT_EQ(Num(line, "f"), "1.5");
  EXPECT_EQ(Num(line, "big"), "1e+300");
  EXPECT_EQ(Num(line, "neg"), "-2.5");
  EXPECT_EQ(Num(line, "whole"), "3");
  for (const char* key : {"nan", "inf", "ninf"}) {
    ASSERT_NE(line.Find(key), nullptr);
    EXPECT_EQ(line.Find(key)->kind, JsonScalar::Kind::kNull) << key;
  }
  ASSERT_NE(line.Find("yes"), nullptr);
  EXPECT_EQ(line.Find("yes")->kind, JsonScalar::Kind::kBool);
  EXPECT_EQ(line.Find("yes")->text, "true");
  EXPECT_EQ(line.Find("no")->text, "false");
}

TEST(LogFormat, DurationsAreMillisecondsWithFraction) {
  using namespace std::chrono_literals;
  const JsonLine line = OneLine([](Logger& log) {
    log.Info("m", {{"ms", 12ms},
                   {"us", 12400us},
                   {"ns", 1ns},
                   {"s", 2s},
                   {"min", std::chrono::minutes(1)},
                   {"zero", 0ns},
                   {"negative", -1500us},
                   {"float_ms", std::chrono::duration<double, std::milli>(0.25)},
                   {"float_s", std::chrono::duration<double>(1.5)}});
  });
  EXPECT_EQ(Num(line, "ms"), "12");
  EXPECT_EQ(Num(line, "us"), "12.4");
  EXPECT_EQ(Num(line, "ns"), "0.000001");
  EXPECT_EQ(Num(line, "s"), "2000");
  EXPECT_EQ(Num(line, "min"), "60000");
  EXPECT_EQ(Num(line, "zero"), "0");
  EXPECT_EQ(Num(line, "negative"), "-1.5");
  EXPECT_EQ(Num(line, "float_ms"), "0.25");
  EXPECT_EQ(Num(line, "float_s"), "1500");
}

TEST(LogFormat, SingleFieldWithoutDoubleBraces) {
  const RequestContext ctx = RequestContext::NewRoot();
  const JsonLine a = OneLine([&](Logger& log) { log.Info(ctx, "m", {"http.route", "/x"}); });
  EXPECT_EQ(Str(a, "http.route"), "/x");
  const JsonLine b = OneLine([](Logger& log) { log.Info("m", {"count", 3}); });
  EXPECT_EQ(Num(b, "count"), "3");
}

TEST(LogFormat, EscapesControlCharactersQuotesAndBackslashes) {
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) {
    all_controls.push_back(static_cast<char>(c));
  }
  all_controls += "\x7f";
  MemFile capture;
  {
    Logger log(Options(capture.fd()));
    log.Info(R"(say "hi" \ bye)", {{"ctl", all_controls}, {"key\n\"q\"", "v"}});
  }
  const auto lines = capture.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("msg":"say \"hi\" \\ bye")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"(\u0000\u0001)"), std::string::npos);
  EXPECT_NE(lines[0].find(R"(\u0008\t\n\u000b\u000c\r)"), std::string::npos);
  EXPECT_NE(lines[0].find(R"(\u001f)"), std::string::npos);
  const auto parsed = ParseLogLine(lines[0]);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(Str(*parsed, "ctl"), all_controls);
  EXPECT_EQ(Str(*parsed, "key\n\"q\""), "v");
  EXPECT_EQ(Str(*parsed, "msg"), R"(say "hi" \ bye)");
}

TEST(LogFormat, ValidUtf8PassesThroughInvalidBecomesReplacementCharacter) {
  const std::string valid = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  struct Case {
    std::string in;
    std::string out;
  };
  const std::string fffd = "\xEF\xBF\xBD";
  const std::vector<Case> cases = {
      {"\xFF", fffd},
      {"a\x80z", "a" + fffd + "z"},
      {"\xC0\xAF", fffd + fffd},                        // overlong '/'
      {"\xE0\x80\xAF", fffd + fffd + fffd},             // overlong, lead byte E0 needs A0..BF
      {"\xED\xA0\x80", fffd + fffd + fffd},             // UTF-16 surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"\xE2\x82", fffd},                               // truncated at the end
      {"\xE2\x82z", fffd + "z"},                        // truncated, maximal subpart is one U+FFFD
      {"\xF0\x9F\x98", fffd},
      {std::string("nul\0byte", 8), std::string("nul\0byte", 8)},
  };
  MemFile capture;
  {
    Logger log(Options(capture.fd()));
    log.Info(valid);
    for (const Case& c : cases) {
      log.Info(c.in, {{c.in, c.in}});
    }
  }
  const auto lines = capture.LogLines();  // every line must be valid JSON
  ASSERT_EQ(lines.size(), cases.size() + 1);
  EXPECT_EQ(Str(lines[0], "msg"), valid);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Str(lines[i + 1], "msg"), cases[i].out) << i;
    EXPECT_EQ(Str(lines[i + 1], cases[i].out), cases[i].out) << i;
  }
}

TEST(LogFormat, ResourceValuesAreEscaped) {
  LoggerOptions o;
  o.service = "we\"ird\n";
  o.version = "1\\2";
  o.env = "\xFF";
  const JsonLine line = OneLine([](Logger& log) { log.Info("m"); }, o);
  EXPECT_EQ(Str(line, "service"), "we\"ird\n");
  EXPECT_EQ(Str(line, "version"), "1\\2");
  EXPECT_EQ(Str(line, "env"), "\xEF\xBF\xBD");
}

TEST(LogFormat, SensitiveKeysAreRedactedWhateverTheirType) {
  const std::vector<std::string> keys = {
      "authorization",
      "cookie",
      "password",
      "passwd",
      "secret",
      "token",
      "api_key",
      "apikey",
      "api-key",
      "private_key",
      "credential",
      "session",
      // embedded, dotted and case variants
      "http.request.header.authorization",
      "http.request.header.cookie",
      "Set-Cookie",
      "refresh_token",
      "DB_PASSWORD",
      "X-Api-Key",
      "user.Credentials",
      "SESSION_ID",
      "client_secret",
      "AccessToken",
      "tls.private_key.path",
  };
  MemFile capture;
  {
    Logger log(Options(capture.fd()));
    for (const std::string& key : keys) {
      log.Info("m", {{key, "hunter2"}});
      log.Info("m", {{key, 12345}});
      log.Info("m", {{key, true}});
      log.Info("m", {{key, 1.5}});
    }
    log.Info("m", {{"user.id", "u1"},
                   {"http.route", "/tokens/{id}"},
                   {"status", 200},
                   {"tok", "x"},
                   {"pass", "y"},
                   {"sess", "z"}});
  }
  const auto lines = capture.LogLines();
  ASSERT_EQ(lines.size(), keys.size() * 4 + 1);
  for (std::size_t i = 0; i < keys.size() * 4; ++i) {
    const std::string& key = keys[i / 4];
    EXPECT_EQ(Str(lines[i], key), "[REDACTED]") << key;
  }
  const JsonLine& plain = lines.back();
  EXPECT_EQ(Str(plain, "user.id"), "u1");
  EXPECT_EQ(Str(plain, "http.route"), "/tokens/{id}");  // values are not inspected
  EXPECT_EQ(Num(plain, "status"), "200");
  EXPECT_EQ(Str(plain, "tok"), "x");
  EXPECT_EQ(Str(plain, "pass"), "y");
  EXPECT_EQ(Str(plain, "sess"), "z");
}

TEST(LogFormat, FieldsNeverRepeatAFixedKey) {
  const RequestContext ctx = FixedContext();
  const JsonLine line = OneLine([&](Logger& log) {
    log.Info(ctx, "real",
             {{"time", "t"},
              {"level", "l"},
              {"msg", "fake"},
              {"service", "s"},
              {"version", "v"},
              {"env", "e"},
              {"trace_id", "x"},
              {"span_id", "y"},
              {"request_id", "z"}});
  });
  for (const char* key :
       {"time", "level", "msg", "service", "version", "env", "trace_id", "span_id", "request_id"}) {
    EXPECT_EQ(line.Count(key), 1u) << key;
  }
  EXPECT_EQ(Str(line, "msg"), "real");
  EXPECT_EQ(Str(line, "attr.msg"), "fake");
  EXPECT_EQ(Str(line, "attr.time"), "t");
  EXPECT_EQ(Str(line, "attr.request_id"), "z");
  EXPECT_EQ(line.members.size(), 9u + 9u);
}

TEST(LogFormat, EveryLevelName) {
  MemFile capture;
  {
    LoggerOptions o = Options(capture.fd());
    o.level = LogLevel::kTrace;
    Logger log(o);
    log.Trace("a");
    log.Debug("b");
    log.Info("c");
    log.Warn("d");
    log.Error("e");
    log.Fatal("f");
    log.Log(LogLevel::kInfo, "g");
  }
  const auto lines = capture.LogLines();
  ASSERT_EQ(lines.size(), 7u);
  const char* names[] = {"trace", "debug", "info", "warn", "error", "fatal", "info"};
  for (std::size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(Str(lines[i], "level"), names[i]);
  }
}

TEST(LogFormat, LevelFiltering) {
  MemFile capture;
  {
    Logger log(Options(capture.fd()));
    EXPECT_EQ(log.level(), LogLevel::kInfo);
    EXPECT_FALSE(log.Enabled(LogLevel::kDebug));
    EXPECT_TRUE(log.Enabled(LogLevel::kInfo));
    EXPECT_TRUE(log.Enabled(LogLevel::kFatal));
    log.Debug("hidden");
    log.Info("shown 1");
    log.SetLevel(LogLevel::kError);
    log.Warn("hidden");
    log.Error("shown 2");
    log.SetLevel(LogLevel::kTrace);
    log.Trace("shown 3");
    EXPECT_EQ(log.stats().dropped, 0u);
  }
  const auto lines = capture.LogLines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Str(lines[0], "msg"), "shown 1");
  EXPECT_EQ(Str(lines[1], "msg"), "shown 2");
  EXPECT_EQ(Str(lines[2], "msg"), "shown 3");
}

TEST(LogLevelNames, ParseAndToString) {
  EXPECT_EQ(ParseLogLevel("trace"), LogLevel::kTrace);
  EXPECT_EQ(ParseLogLevel("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("Info"), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("WARNING"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("fAtAl"), LogLevel::kFatal);
  for (const char* bad : {"", "inf", "information", "warnings", " info", "info ", "err", "5"}) {
    EXPECT_EQ(ParseLogLevel(bad), std::nullopt) << bad;
  }
  for (LogLevel l : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                     LogLevel::kError, LogLevel::kFatal}) {
    EXPECT_EQ(ParseLogLevel(ToString(l)), l);
  }
  EXPECT_EQ(ToString(static_cast<LogLevel>(42)), "unknown");
}

TEST(LogJson, DurationFormatting) {
  char buf[internal::kMaxNumberSize];
  auto fmt = [&](std::int64_t ns) { return std::string(buf, internal::FormatDurationNs(ns, buf)); };
  EXPECT_EQ(fmt(0), "0");
  EXPECT_EQ(fmt(12'400'000), "12.4");
  EXPECT_EQ(fmt(1'000'000), "1");
  EXPECT_EQ(fmt(1), "0.000001");
  EXPECT_EQ(fmt(-1), "-0.000001");
  EXPECT_EQ(fmt(123'456'789), "123.456789");
  EXPECT_EQ(fmt(std::numeric_limits<std::int64_t>::min()), "-9223372036854.775808");
  EXPECT_EQ(fmt(std::numeric_limits<std::int64_t>::max()), "9223372036854.775807");
}

TEST(LogJson, SensitiveAndReservedKeys) {
  // The documented list and the matcher agree, in any case and inside longer keys.
  for (std::string_view part : internal::kSensitiveKeyParts) {
    std::string upper(part);
    for (char& c : upper) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    EXPECT_TRUE(internal::IsSensitiveKey(part)) << part;
    EXPECT_TRUE(internal::IsSensitiveKey(upper)) << upper;
    EXPECT_TRUE(internal::IsSensitiveKey("x." + std::string(part) + ".y")) << part;
    EXPECT_FALSE(internal::IsSensitiveKey(part.substr(0, part.size() - 1))) << part;
  }
  EXPECT_TRUE(internal::IsSensitiveKey("AUTHORIZATION"));
  EXPECT_TRUE(internal::IsSensitiveKey("x.api-key.y"));
  EXPECT_FALSE(internal::IsSensitiveKey(""));
  EXPECT_FALSE(internal::IsSensitiveKey("autho"));
  EXPECT_FALSE(internal::IsSensitiveKey("http.route"));
  EXPECT_TRUE(internal::IsReservedKey("msg"));
  EXPECT_FALSE(internal::IsReservedKey("Msg"));
  EXPECT_FALSE(internal::IsReservedKey("message"));
}

TEST(LogJson, LineReaderRejectsInvalidJson) {
  for (const char* bad : {"", "{", "{}x", R"({"a":})", R"({"a":01})", R"({"a":1.})",
                          R"({"a":"\x"})", "{\"a\":\"\x01\"}", "{\"a\":\"\xFF\"}", R"({"a":tru})",
                          R"({"a":1,})", R"({"a" 1})", R"({"a":"\ud800"})"}) {
    EXPECT_FALSE(ParseLogLine(bad).has_value()) << bad;
  }
  EXPECT_TRUE(ParseLogLine(R"({"a":-0.5e+3,"b":"\u00e9\ud83d\ude00","c":null})").has_value());
}

TEST(LogFormat, LongStringsAndManyFields) {
  const std::string big(100'000, 'x');
  const JsonLine line = OneLine([&](Logger& log) {
    log.Info(big, {{"big", big}, {"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}, {"e", 5}, {"f", 6}});
  });
  EXPECT_EQ(Str(line, "msg"), big);
  EXPECT_EQ(Str(line, "big"), big);
  EXPECT_EQ(Num(line, "f"), "6");
}

}  // namespace
}  // namespace vigil::telemetry

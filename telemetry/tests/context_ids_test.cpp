// Trace and span ids, random numbers, request ids and RequestContext.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vigil/telemetry/context.hpp>

namespace vigil::telemetry {
namespace {

TEST(TraceId, HexRoundTrip) {
  const auto id = TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(id);
  EXPECT_TRUE(id->IsValid());
  EXPECT_EQ(id->bytes()[0], 0x4b);
  EXPECT_EQ(id->bytes()[15], 0x36);
  EXPECT_EQ(id->ToHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  char buf[TraceId::kHexSize];
  id->ToHex(buf);
  EXPECT_EQ(std::string_view(buf, sizeof buf), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceId, FromHexRejectsBadInput) {
  EXPECT_FALSE(TraceId::FromHex(""));
  EXPECT_FALSE(TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e473"));
  EXPECT_FALSE(TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e47360"));
  EXPECT_FALSE(TraceId::FromHex("4BF92F3577B34DA6A3CE929D0E0E4736"));
  EXPECT_FALSE(TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e473g"));
  EXPECT_FALSE(TraceId::FromHex("00000000000000000000000000000000"));
  EXPECT_TRUE(TraceId::FromHex("00000000000000000000000000000001"));
}

TEST(TraceId, DefaultIsInvalid) {
  EXPECT_FALSE(TraceId().IsValid());
  EXPECT_EQ(TraceId().ToHex(), std::string(32, '0'));
}

TEST(SpanId, HexRoundTrip) {
  const auto id = SpanId::FromHex("00f067aa0ba902b7");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->bytes()[0], 0x00);
  EXPECT_EQ(id->bytes()[7], 0xb7);
  EXPECT_EQ(id->ToHex(), "00f067aa0ba902b7");
  EXPECT_FALSE(SpanId::FromHex("0000000000000000"));
  EXPECT_FALSE(SpanId::FromHex("00F067AA0BA902B7"));
  EXPECT_FALSE(SpanId::FromHex("00f067aa0ba902b"));
  EXPECT_FALSE(SpanId().IsValid());
}

TEST(RandomIds, NeverZeroAndDistinct) {
  std::set<std::string> traces;
  std::set<std::string> spans;
  for (int i = 0; i < 10000; ++i) {
    const TraceId t = TraceId::Random();
    const SpanId s = SpanId::Random();
    ASSERT_TRUE(t.IsValid());
    ASSERT_TRUE(s.IsValid());
    traces.insert(t.ToHex());
    spans.insert(s.ToHex());
  }
  EXPECT_EQ(traces.size(), 10000u);
  EXPECT_EQ(spans.size(), 10000u);
  EXPECT_NE(RandomU64(), RandomU64());
}

TEST(RandomIds, AForkedChildDrawsIdsOfItsOwn) {
  (void)TraceId::Random();  // the generator of this thread exists before the fork
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const TraceId child = TraceId::Random();
    const bool ok = ::write(pipe_fds[1], &child, sizeof child) == sizeof child;
    ::_exit(ok ? 0 : 1);
  }
  const TraceId parent = TraceId::Random();
  TraceId child;
  ASSERT_EQ(::read(pipe_fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::waitpid(pid, nullptr, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_NE(parent, child);
}

TEST(RandomIds, HexRoundTrip) {
  for (int i = 0; i < 100; ++i) {
    const TraceId t = TraceId::Random();
    EXPECT_EQ(TraceId::FromHex(t.ToHex()), t);
    const SpanId s = SpanId::Random();
    EXPECT_EQ(SpanId::FromHex(s.ToHex()), s);
  }
}

bool IsCrockford(char c) {
  return std::string_view("0123456789ABCDEFGHJKMNPQRSTVWXYZ").find(c) != std::string_view::npos;
}

TEST(RequestId, GenerateIsUlid) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const RequestId id = RequestId::Generate();
    ASSERT_EQ(id.view().size(), 26u);
    EXPECT_FALSE(id.empty());
    for (char c : id.view()) EXPECT_TRUE(IsCrockford(c)) << id.view();
    // 48-bit milliseconds only reach the top 3 bits of the first character.
    EXPECT_LE(id.view()[0], '7');
    EXPECT_TRUE(RequestId::FromString(id.view()));
    seen.emplace(id.view());
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RequestId, GenerateIsTimeOrderedAcrossMilliseconds) {
  const RequestId a = RequestId::Generate();
  // Wait until the timestamp part (first 10 characters) changes, bounded.
  RequestId b = RequestId::Generate();
  for (int i = 0; i < 10'000'000 && b.view().substr(0, 10) == a.view().substr(0, 10); ++i) {
    b = RequestId::Generate();
  }
  ASSERT_NE(b.view().substr(0, 10), a.view().substr(0, 10));
  EXPECT_LT(a.view(), b.view());
}

TEST(RequestId, FromStringValidates) {
  EXPECT_EQ(RequestId::FromString("abc-123_X.y:z")->view(), "abc-123_X.y:z");
  EXPECT_TRUE(RequestId::FromString(std::string(64, 'a')));
  EXPECT_FALSE(RequestId::FromString(std::string(65, 'a')));
  EXPECT_FALSE(RequestId::FromString(""));
  EXPECT_FALSE(RequestId::FromString("has space"));
  EXPECT_FALSE(RequestId::FromString("new\nline"));
  EXPECT_FALSE(RequestId::FromString("semi;colon"));
  EXPECT_FALSE(RequestId::FromString("caf\xc3\xa9"));
  EXPECT_TRUE(RequestId().empty());
  EXPECT_EQ(RequestId::FromString("x"), RequestId::FromString("x"));
}

TEST(RequestContext, NewRoot) {
  const auto sampled = RequestContext::NewRoot();
  EXPECT_TRUE(sampled.span.IsValid());
  EXPECT_TRUE(sampled.span.sampled());
  EXPECT_FALSE(sampled.span.is_remote);
  EXPECT_TRUE(sampled.span.trace_state.empty());
  const auto unsampled = RequestContext::NewRoot(false);
  EXPECT_FALSE(unsampled.span.sampled());
  EXPECT_NE(sampled.span.trace_id, unsampled.span.trace_id);
}

TEST(RequestContext, ChildOfKeepsTraceFlagsAndState) {
  auto parent = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(parent);
  ASSERT_TRUE(parent.value->trace_state.Set("rojo", "00f067aa0ba902b7"));
  const auto child = RequestContext::ChildOf(*parent.value);
  EXPECT_EQ(child.span.trace_id, parent.value->trace_id);
  EXPECT_EQ(child.span.flags, parent.value->flags);
  EXPECT_EQ(child.span.trace_state, parent.value->trace_state);
  EXPECT_NE(child.span.span_id, parent.value->span_id);
  EXPECT_TRUE(child.span.span_id.IsValid());
  EXPECT_FALSE(child.span.is_remote);
}

}  // namespace
}  // namespace vigil::telemetry

// What the security headers cost an answer: the head of a typical API response laid out
// without them, with them (the middleware's pointer and the block appended while the head
// is written), and, for comparison, with the same fields set one by one in the response's
// field container, the way a middleware would without a field block.
#include <benchmark/benchmark.h>

#include <boost/beast/http/string_body.hpp>

#include <string>
#include <vigil/http/middleware/security_headers.hpp>

#include "write.hpp"

namespace {

namespace bhttp = boost::beast::http;
using vigil::http::internal::SerializeHead;

// The fields a catalog read answered through the pipeline has.
bhttp::response<bhttp::string_body> TypicalResponse() {
  bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Request-Id", "01JEXAMPLE0REQUEST0ID00000");
  res.set(bhttp::field::etag, "\"3f2a9c\"");
  res.set("RateLimit-Policy", "\"api-per-address\";q=30000;w=60");
  res.set("RateLimit", "\"api-per-address\";r=29999;t=1");
  res.set(bhttp::field::date, "Mon, 07 Dec 2026 20:00:00 GMT");
  res.set(bhttp::field::content_length, "27");
  return res;
}

void BM_HeadWithoutSecurityHeaders(benchmark::State& state) {
  const auto res = TypicalResponse();
  std::string out;
  for (auto _ : state) {
    SerializeHead(res.base(), out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeadWithoutSecurityHeaders);

// The middleware's Before (the exchange points at the block for its connection, TLS
// here) and the head written with it.
void BM_HeadWithSecurityHeaders(benchmark::State& state) {
  const auto res = TypicalResponse();
  const vigil::http::SecurityHeaderFields fields({});
  bool secure = true;
  const vigil::http::FieldBlock* chosen = nullptr;
  std::string out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(secure);
    chosen = &fields.For(secure);
    benchmark::DoNotOptimize(chosen);
    SerializeHead(res.base(), out, *chosen);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeadWithSecurityHeaders);

// The gateway's mode on a service's answer, which carries the set already: the
// service's values are dropped for the gateway's, its Cache-Control kept.
void BM_HeadWithSecurityHeadersReplacing(benchmark::State& state) {
  auto res = TypicalResponse();
  const vigil::http::FieldBlock service_block = vigil::http::SecurityHeaders({});
  service_block.ApplyTo(res.base());
  const vigil::http::FieldBlock block = vigil::http::SecurityHeaders({.replace = true});
  std::string out;
  for (auto _ : state) {
    SerializeHead(res.base(), out, block);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeadWithSecurityHeadersReplacing);

// The same answer relayed as it is, without a block: the baseline of the gateway's case.
void BM_HeadRelayedAsIs(benchmark::State& state) {
  auto res = TypicalResponse();
  vigil::http::SecurityHeaders({}).ApplyTo(res.base());
  std::string out;
  for (auto _ : state) {
    SerializeHead(res.base(), out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeadRelayedAsIs);

// The comparison: the same nine fields set in a fresh response's field container.
void BM_HeadWithFieldsSetOneByOne(benchmark::State& state) {
  const auto typical = TypicalResponse();
  std::string out;
  for (auto _ : state) {
    auto res = typical;
    res.set(bhttp::field::strict_transport_security, "max-age=63072000; includeSubDomains");
    res.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set(bhttp::field::x_frame_options, "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.set("Permissions-Policy", "camera=(), geolocation=(), microphone=()");
    res.set("Cross-Origin-Opener-Policy", "same-origin");
    res.set("Cross-Origin-Resource-Policy", "same-origin");
    res.set(bhttp::field::cache_control, "no-store");
    SerializeHead(res.base(), out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeadWithFieldsSetOneByOne);

// The comparison's baseline: the copy of the response alone.
void BM_HeadCopyOnly(benchmark::State& state) {
  const auto typical = TypicalResponse();
  std::string out;
  for (auto _ : state) {
    auto res = typical;
    SerializeHead(res.base(), out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_HeadCopyOnly);

}  // namespace

BENCHMARK_MAIN();

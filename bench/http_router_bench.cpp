// Route lookup: what every request pays to find its handler and its `http.route`, on a
// table shaped like the platform's services. Target: well under 100 ns per Find().
#include <benchmark/benchmark.h>

#include <string_view>
#include <vigil/http/router.hpp>

namespace vh = vigil::http;

namespace {

vh::Router PlatformRouter() {
  vh::Router r;
  r.Add("POST", "/login");
  r.Add("POST", "/register");
  r.Add("POST", "/refresh");
  r.Add("POST", "/logout");
  r.Add("GET", "/me");
  r.Add("GET", "/.well-known/jwks.json");
  r.Add("GET", "/items");
  r.Add("POST", "/items");
  r.Add("GET", "/items/{id}");
  r.Add("PUT", "/items/{id}");
  r.Add("DELETE", "/items/{id}");
  r.Add("POST", "/items/{id}/reserve");
  r.Add("POST", "/items/{id}/release");
  r.Add("GET", "/orders");
  r.Add("POST", "/orders");
  r.Add("GET", "/orders/{id}");
  r.Add("POST", "/orders/{id}/cancel");
  r.Add("GET", "/healthz");
  r.Add("*", "/api/auth/*");
  r.Add("*", "/api/catalog/*");
  r.Add("*", "/api/orders/*");
  return r;
}

void RunFind(benchmark::State& state, std::string_view method, std::string_view path,
             vh::Router::Match::Result expected) {
  const vh::Router router = PlatformRouter();
  if (router.Find(method, path).result != expected) {
    state.SkipWithError("unexpected result");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(method);
    benchmark::DoNotOptimize(path);
    const vh::Router::Match m = router.Find(method, path);
    benchmark::DoNotOptimize(m.id);
    benchmark::DoNotOptimize(m.route.data());
  }
}

using Result = vh::Router::Match::Result;

void BM_FindLiteral(benchmark::State& state) {
  RunFind(state, "GET", "/.well-known/jwks.json", Result::kFound);
}
BENCHMARK(BM_FindLiteral);

void BM_FindParam(benchmark::State& state) {
  RunFind(state, "POST", "/items/8f14e45f-ceea-467f-a0e6-3c2a1b7d9e01/reserve", Result::kFound);
}
BENCHMARK(BM_FindParam);

void BM_FindPrefix(benchmark::State& state) {
  RunFind(state, "GET", "/api/catalog/items/42", Result::kFound);
}
BENCHMARK(BM_FindPrefix);

void BM_FindNotFound(benchmark::State& state) {
  RunFind(state, "GET", "/items/42/comments", Result::kNotFound);
}
BENCHMARK(BM_FindNotFound);

void BM_FindMethodNotAllowed(benchmark::State& state) {
  RunFind(state, "PATCH", "/items/42", Result::kMethodNotAllowed);
}
BENCHMARK(BM_FindMethodNotAllowed);

}  // namespace

BENCHMARK_MAIN();

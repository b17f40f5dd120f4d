// Fuzzes Router: Find() on any method and path never crashes, and what it returns is
// consistent (captures are views into the path, a 405 lists methods, a match names its
// template); Add() on any template either succeeds or throws std::invalid_argument.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vigil/http/router.hpp>

namespace {

using vigil::http::Router;

const Router& PlatformRoutes() {
  static const Router router = [] {
    Router r;
    for (const char* t : {"/login", "/register", "/refresh", "/logout", "/me",
                          "/.well-known/jwks.json"}) {
      r.Add("POST", t);
    }
    r.Add("GET", "/items");
    r.Add("POST", "/items");
    for (const char* m : {"GET", "PUT", "DELETE"}) r.Add(m, "/items/{id}");
    r.Add("POST", "/items/{id}/reserve");
    r.Add("POST", "/items/{id}/release");
    r.Add("GET", "/orders/{id}");
    r.Add("GET", "/a/{x}/b/{y}/c");
    r.Add("*", "/api/auth/*");
    r.Add("*", "/api/*");
    r.Add("GET", "/*");
    return r;
  }();
  return router;
}

void Check(const Router& router, std::string_view method, std::string_view path) {
  const Router::Match m = router.Find(method, path);
  switch (m.result) {
    case Router::Match::Result::kFound:
      if (m.route.empty() || m.route.front() != '/') __builtin_trap();
      break;
    case Router::Match::Result::kMethodNotAllowed:
      if (m.route.empty() || m.allow.empty()) __builtin_trap();
      break;
    case Router::Match::Result::kNotFound:
      if (!m.route.empty()) __builtin_trap();
      break;
  }
  if (m.param_count > Router::kMaxParams) __builtin_trap();
  for (std::size_t i = 0; i < m.param_count; ++i) {
    const auto v = m.params[i].value;
    if (v.empty() || v.data() < path.data() || v.data() + v.size() > path.data() + path.size() ||
        v.find('/') != std::string_view::npos) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // "METHOD PATH": the method is what comes before the first space.
  const std::size_t space = input.find(' ');
  const std::string_view method = space == std::string_view::npos ? "GET" : input.substr(0, space);
  const std::string_view path = space == std::string_view::npos ? input : input.substr(space + 1);
  Check(PlatformRoutes(), method, path);

  // The same bytes as a template added to a fresh router, then looked up as a path.
  Router r;
  try {
    r.Add(method == "GET" ? "GET" : "*", path);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  Check(r, "GET", path);
  return 0;
}

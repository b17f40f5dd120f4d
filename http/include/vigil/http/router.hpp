// Route templates: which handler serves a request, and under which name it is observed.
//
// A route is a method and a template. The template, never the raw path, becomes the
// `http.route` of spans, metrics and logs, so label values stay bounded whatever paths
// clients send. Templates are made of `/`-separated segments:
//   "/items"           a literal path
//   "/items/{id}"      `{name}` matches one non-empty segment and captures it
//   "/api/auth/*"      a trailing `*` matches the prefix itself and anything below it,
//                      on whole segments ("/api/auth", "/api/auth/x/y", not "/api/authx")
// When several templates match, literal segments win over `{param}`, which wins over
// `*`; among `*` routes the longest prefix wins.
//
//   Router router;
//   auto get_item = router.Add("GET", "/items/{id}");
//   Router::Match m = router.Find("GET", "/items/42");  // m.id == get_item, m.Param("id") == "42"
//
// Thread-safety: Add() is for start-up; once routes are added, Find() may be called
// from any number of threads at once.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace vigil::http {

class Router {
 public:
  // At most this many `{param}` captures per template.
  static constexpr std::size_t kMaxParams = 8;

  struct Param {
    std::string_view name;
    std::string_view value;  // the raw segment (still percent-encoded), a view into the path
  };

  struct Match {
    enum class Result { kFound, kMethodNotAllowed, kNotFound };
    Result result = Result::kNotFound;
    // For kFound: the value Add() returned. Otherwise unspecified.
    std::size_t id = 0;
    // For kFound and kMethodNotAllowed: the matched template (owned by the router, valid as
    // long as it lives). Empty for kNotFound.
    std::string_view route;
    // For kMethodNotAllowed: the template's methods for an `Allow` header, e.g.
    // "DELETE, GET, PUT" (sorted). Empty otherwise.
    std::string_view allow;
    std::array<Router::Param, kMaxParams> params{};
    std::size_t param_count = 0;

    // The captured value of `{name}`, or empty when the template has no such parameter.
    std::string_view Param(std::string_view name) const noexcept;
    bool found() const noexcept { return result == Result::kFound; }
  };

  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Adds a route and returns its id (0, 1, 2... in order of addition). `method` is an
  // upper-case token ("GET", "POST", ...) or "*" for any method. Throws
  // std::invalid_argument with a message naming the template when it is malformed (not
  // starting with '/', an empty or unterminated `{}`, `*` anywhere but as the whole last
  // segment, more than kMaxParams parameters, two parameter names at one position
  // differing from each other) or when the same method and template were added before.
  std::size_t Add(std::string_view method, std::string_view pattern);

  // The route for `method` and `path` (the request target without its query). Never
  // allocates and never throws. A path that matches templates only under other methods
  // gives kMethodNotAllowed with their `allow` list; "*" routes accept every method.
  Match Find(std::string_view method, std::string_view path) const noexcept;

 private:
  struct Tree;
  std::unique_ptr<Tree> tree_;
};

}  // namespace vigil::http

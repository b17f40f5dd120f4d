// The router is a trie of path segments. Each node holds its literal children (in one
// sorted vector: scanned when short, binary-searched when long), at most one `{param}`
// child and the templates that end there: one exact, one ending in `*`. Find() walks it depth
// first, trying literal, then parameter, then `*` at every position; the first template
// reached that accepts the method is the best-ranked one, so precedence and backtracking
// fall out of the visiting order. Each node is entered at most once per lookup (its depth
// fixes the path offset), so a lookup is linear in the size of the table however the
// path is made.
#include "vigil/http/router.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::http {

namespace {

constexpr std::size_t kNoId = std::numeric_limits<std::size_t>::max();

// One template (method-independent): everything a Match points into lives here, and an
// Endpoint is never moved once made, so those views survive later Add() calls.
struct Endpoint {
  std::string pattern;
  std::array<std::string_view, Router::kMaxParams> param_names{};
  std::size_t param_count = 0;
  struct MethodId {
    std::string method;
    std::size_t id;
  };
  std::vector<MethodId> methods;  // sorted by method
  std::size_t any_method_id = kNoId;
  std::string_view allow;  // the methods joined for an Allow header

  // The id serving `method`, or kNoId. A route for the exact method wins over "*". HEAD
  // is served wherever GET is (RFC 9110 section 9.3.2), unless it has a route of its own.
  std::size_t IdFor(std::string_view method) const noexcept {
    std::size_t get = kNoId;
    for (const MethodId& m : methods) {
      if (m.method == method) {
        return m.id;
      }
      if (m.method == "GET") {
        get = m.id;
      }
    }
    if (get != kNoId && method == "HEAD") {
      return get;
    }
    return any_method_id;
  }
};

struct Node {
  struct Literal {
    std::string segment;
    std::unique_ptr<Node> node;
  };
  std::vector<Literal> literals;  // sorted by Before()
  std::unique_ptr<Node> param;
  std::string param_name;        // the name every template uses for `param`
  Endpoint* exact = nullptr;     // the template ending at this node
  Endpoint* wildcard = nullptr;  // the template "<this node>/*"

  // Ordered by length first: most segments differ in length, so most comparisons never
  // look at the bytes.
  static bool Before(std::string_view a, std::string_view b) noexcept {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  }

  const Node* FindLiteral(std::string_view segment) const noexcept {
    // A short list is scanned: cheaper than a binary search's unpredictable branches.
    if (literals.size() <= 16) {
      for (const Literal& l : literals) {
        if (l.segment.size() == segment.size()) {
          if (std::string_view(l.segment) == segment) {
            return l.node.get();
          }
        } else if (l.segment.size() > segment.size()) {
          break;
        }
      }
      return nullptr;
    }
    const auto it =
        std::lower_bound(literals.begin(), literals.end(), segment,
                         [](const Literal& l, std::string_view s) { return Before(l.segment, s); });
    if (it != literals.end() && it->segment == segment) {
      return it->node.get();
    }
    return nullptr;
  }

  Node& LiteralChild(std::string_view segment) {
    auto it =
        std::lower_bound(literals.begin(), literals.end(), segment,
                         [](const Literal& l, std::string_view s) { return Before(l.segment, s); });
    if (it == literals.end() || it->segment != segment) {
      it = literals.insert(it, Literal{std::string(segment), std::make_unique<Node>()});
    }
    return *it->node;
  }
};

// A template split into segments; a trailing `*` is not a segment but `wildcard`.
struct ParsedTemplate {
  struct Segment {
    std::string_view text;  // the literal, or the parameter's name
    bool is_param = false;
  };
  std::vector<Segment> segments;
  bool wildcard = false;
  std::size_t param_count = 0;
};

[[noreturn]] void Reject(std::string_view method, std::string_view pattern, std::string_view why) {
  std::string message = "invalid route ";
  message.append(method).append(" \"").append(pattern).append("\": ").append(why);
  throw std::invalid_argument(message);
}

bool IsNameChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// RFC 9110 token characters, minus lower-case letters: methods are case-sensitive and
// every registered one is upper-case, so "get" is a mistake worth reporting.
bool IsMethodChar(char c) noexcept {
  if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void ValidateMethod(std::string_view method, std::string_view pattern) {
  if (method.empty()) {
    Reject(method, pattern, "empty method");
  }
  if (!std::all_of(method.begin(), method.end(), IsMethodChar)) {
    Reject(method, pattern, "method must be \"*\" or an upper-case token");
  }
}

ParsedTemplate Parse(std::string_view method, std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    Reject(method, pattern, "a template must start with '/'");
  }
  for (const char c : pattern) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '?' || c == '#' || u <= 0x20 || u == 0x7f) {
      Reject(method, pattern, "characters that cannot appear in a path ('?', '#', space, control)");
    }
  }
  ParsedTemplate parsed;
  std::size_t pos = 0;  // at the '/' that opens the next segment
  while (pos < pattern.size()) {
    const std::size_t start = pos + 1;
    std::size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) {
      end = pattern.size();
    }
    const std::string_view segment = pattern.substr(start, end - start);
    pos = end;
    if (segment == "*") {
      if (end != pattern.size()) {
        Reject(method, pattern, "'*' may only be the whole last segment");
      }
      parsed.wildcard = true;
      break;
    }
    if (segment.find('*') != std::string_view::npos) {
      Reject(method, pattern, "'*' may only be the whole last segment");
    }
    if (segment.empty() || segment.front() != '{') {
      if (segment.find_first_of("{}") != std::string_view::npos) {
        Reject(method, pattern, "a {param} must be a whole segment");
      }
      parsed.segments.push_back({segment, false});
      continue;
    }
    const std::size_t close = segment.find('}');
    if (close == std::string_view::npos) {
      Reject(method, pattern, "unterminated '{'");
    }
    if (close != segment.size() - 1) {
      Reject(method, pattern, "a {param} must be a whole segment");
    }
    const std::string_view name = segment.substr(1, segment.size() - 2);
    if (name.empty()) {
      Reject(method, pattern, "empty {} parameter name");
    }
    if (!std::all_of(name.begin(), name.end(), IsNameChar)) {
      Reject(method, pattern, "a parameter name is made of letters, digits, '_' and '-'");
    }
    if (parsed.param_count == Router::kMaxParams) {
      Reject(method, pattern, "more than 8 parameters");
    }
    for (const auto& s : parsed.segments) {
      if (s.is_param && s.text == name) {
        Reject(method, pattern, "a parameter name appears twice");
      }
    }
    parsed.segments.push_back({name, true});
    ++parsed.param_count;
  }
  return parsed;
}

// A captured segment. Lookups keep their captures in plain arrays left uninitialised:
// every entry is written before it is read, and zeroing them would cost as much as a
// short lookup.
struct Capture {
  const char* data;
  std::size_t size;
};

// One walk of the trie: what it looks for, the captures along the current branch, and the
// best template that matched the path only under other methods (the 405 answer).
struct Search {
  Search(std::string_view p, std::string_view m) noexcept : path(p), method(m) {}

  std::string_view path;
  std::string_view method;
  std::size_t id = kNoId;
  const Endpoint* other_method = nullptr;
  Capture values[Router::kMaxParams];
  Capture other_method_values[Router::kMaxParams];

  bool Accepts(const Endpoint* e) noexcept {
    if (e == nullptr) {
      return false;
    }
    id = e->IdFor(method);
    if (id != kNoId) {
      return true;
    }
    // The walk visits templates best first, so the first one seen is the one to report.
    if (other_method == nullptr && !e->methods.empty()) {
      other_method = e;
      std::copy_n(values, e->param_count, other_method_values);
    }
    return false;
  }
};

// `pos` is the end of the consumed part of the path: its size, or a '/'.
const Endpoint* Walk(const Node& node, std::size_t pos, std::size_t depth, Search& s) noexcept {
  if (pos == s.path.size()) {
    if (s.Accepts(node.exact)) {
      return node.exact;
    }
    return s.Accepts(node.wildcard) ? node.wildcard : nullptr;
  }
  const std::size_t start = pos + 1;
  std::size_t end = s.path.find('/', start);
  if (end == std::string_view::npos) {
    end = s.path.size();
  }
  const std::string_view segment = s.path.substr(start, end - start);
  if (const Node* child = node.FindLiteral(segment)) {
    if (const Endpoint* e = Walk(*child, end, depth, s)) {
      return e;
    }
  }
  // Every node lies on some template's path, so `depth` stays below kMaxParams; the
  // check keeps a lookup memory-safe even if that ever stopped being true.
  if (node.param && !segment.empty() && depth < Router::kMaxParams) {
    s.values[depth] = {segment.data(), segment.size()};
    if (const Endpoint* e = Walk(*node.param, end, depth + 1, s)) {
      return e;
    }
  }
  return s.Accepts(node.wildcard) ? node.wildcard : nullptr;
}

void FillParams(const Endpoint& e, const Capture* values, Router::Match& match) noexcept {
  match.param_count = e.param_count;
  for (std::size_t i = 0; i < e.param_count; ++i) {
    match.params[i] = {e.param_names[i], std::string_view(values[i].data, values[i].size)};
  }
}

}  // namespace

struct Router::Tree {
  Node root;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  // Every Allow list ever made: one handed out by Find() stays valid after a later Add()
  // extends that template's methods.
  std::deque<std::string> allow_lists;
  std::size_t next_id = 0;
};

std::string_view Router::Match::Param(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < param_count; ++i) {
    if (params[i].name == name) {
      return params[i].value;
    }
  }
  return {};
}

Router::Router() : tree_(std::make_unique<Tree>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

std::size_t Router::Add(std::string_view method, std::string_view pattern) {
  ValidateMethod(method, pattern);
  const ParsedTemplate parsed = Parse(method, pattern);
  if (!tree_) {
    tree_ = std::make_unique<Tree>();
  }

  // Check against the existing tree before changing anything, so a rejected template
  // leaves the router as it was.
  const Node* existing = &tree_->root;
  for (const auto& seg : parsed.segments) {
    if (seg.is_param) {
      if (existing->param && existing->param_name != seg.text) {
        Reject(method, pattern,
               "parameter {" + std::string(seg.text) + "} where another template has {" +
                   existing->param_name + "}");
      }
      existing = existing->param.get();
    } else {
      existing = existing->FindLiteral(seg.text);
    }
    if (existing == nullptr) {
      break;
    }
  }
  if (existing != nullptr) {
    const Endpoint* e = parsed.wildcard ? existing->wildcard : existing->exact;
    if (e != nullptr) {
      const bool duplicate =
          method == "*"
              ? e->any_method_id != kNoId
              : std::any_of(e->methods.begin(), e->methods.end(),
                            [&](const Endpoint::MethodId& m) { return m.method == method; });
      if (duplicate) {
        Reject(method, pattern, "added twice");
      }
    }
  }

  Node* node = &tree_->root;
  for (const auto& seg : parsed.segments) {
    if (seg.is_param) {
      if (!node->param) {
        node->param = std::make_unique<Node>();
        node->param_name = std::string(seg.text);
      }
      node = node->param.get();
    } else {
      node = &node->LiteralChild(seg.text);
    }
  }
  Endpoint*& endpoint = parsed.wildcard ? node->wildcard : node->exact;
  if (endpoint == nullptr) {
    auto made = std::make_unique<Endpoint>();
    made->pattern = std::string(pattern);
    // Views into the endpoint's own copy, found again by re-parsing it.
    const ParsedTemplate own = Parse(method, made->pattern);
    for (const auto& seg : own.segments) {
      if (seg.is_param) {
        made->param_names[made->param_count++] = seg.text;
      }
    }
    tree_->endpoints.push_back(std::move(made));
    endpoint = tree_->endpoints.back().get();
  }

  const std::size_t id = tree_->next_id;
  if (method == "*") {
    endpoint->any_method_id = id;
  } else {
    const auto at = std::lower_bound(endpoint->methods.begin(), endpoint->methods.end(), method,
                                     [](const Endpoint::MethodId& m, std::string_view s) {
                                       return std::string_view(m.method) < s;
                                     });
    // Made before the method is inserted: if allocating throws, the route is not half-added.
    std::vector<std::string_view> names;
    names.reserve(endpoint->methods.size() + 2);
    for (const Endpoint::MethodId& m : endpoint->methods) {
      names.push_back(m.method);
    }
    names.push_back(method);
    // GET implies HEAD (see IdFor).
    if (std::find(names.begin(), names.end(), "GET") != names.end() &&
        std::find(names.begin(), names.end(), "HEAD") == names.end()) {
      names.push_back("HEAD");
    }
    std::sort(names.begin(), names.end());
    std::string allow;
    for (const std::string_view name : names) {
      allow.append(allow.empty() ? "" : ", ").append(name);
    }
    tree_->allow_lists.push_back(std::move(allow));
    endpoint->methods.insert(at, Endpoint::MethodId{std::string(method), id});
    endpoint->allow = tree_->allow_lists.back();
  }
  ++tree_->next_id;
  return id;
}

Router::Match Router::Find(std::string_view method, std::string_view path) const noexcept {
  Match match;
  if (!tree_ || path.empty() || path.front() != '/') {
    return match;
  }
  Search search(path, method);
  if (const Endpoint* endpoint = Walk(tree_->root, 0, 0, search)) {
    match.result = Match::Result::kFound;
    match.id = search.id;
    match.route = endpoint->pattern;
    FillParams(*endpoint, search.values, match);
  } else if (const Endpoint* other = search.other_method) {
    match.result = Match::Result::kMethodNotAllowed;
    match.route = other->pattern;
    match.allow = other->allow;
    FillParams(*other, search.other_method_values, match);
  }
  return match;
}

}  // namespace vigil::http

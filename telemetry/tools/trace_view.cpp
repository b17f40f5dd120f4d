// vigil-trace: shows traces kept in an OTLP/JSON lines file as terminal waterfalls.
//
// The file exporter (VIGIL_TRACES_FILE) writes one ExportTraceServiceRequest per line;
// this program needs nothing else, so a newcomer can see a distributed trace without
// running a collector or Jaeger.
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace json = boost::json;

namespace {

constexpr const char* kUsage =
    R"(Usage: vigil-trace [TRACE_ID] [--file F] [--limit N] [--width N] [--no-color]

Prints the trace TRACE_ID (32 hex digits, or a unique prefix) from an OTLP/JSON lines file
as a waterfall: service, span name, start offset, duration bar, status and key attributes.
Without TRACE_ID, lists the most recent traces in the file.

The files the exporter rotated (F.1, F.2, ...) are read too, newest first, and only as far
back as the answer needs: the trace's own files (and the one before, when the trace may
have begun there), or enough files for the list.

  --file F     the traces file (default: $VIGIL_TRACES_FILE)
  --limit N    how many traces to list (default 20)
  --width N    width of the bar column (default 40)
  --no-color   plain output even on a terminal
)";

struct SpanRow {
  std::string trace_id, span_id, parent_id, name, service;
  std::uint64_t start = 0, end = 0;
  int kind = 0;
  int status = 0;
  std::string status_message;
  std::vector<std::pair<std::string, std::string>> attributes;
};

std::uint64_t ToNanos(const json::value* v) {
  if (v == nullptr) return 0;
  if (v->is_string()) return std::strtoull(v->as_string().c_str(), nullptr, 10);
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64()) return static_cast<std::uint64_t>(v->as_int64());
  return 0;
}

std::string ValueText(const json::value& any) {
  if (!any.is_object()) return "?";
  const auto& o = any.as_object();
  if (auto* s = o.if_contains("stringValue"))
    return s->is_string() ? std::string(s->as_string()) : "?";
  if (auto* i = o.if_contains("intValue")) {
    return i->is_string() ? std::string(i->as_string()) : json::serialize(*i);
  }
  if (auto* d = o.if_contains("doubleValue")) return json::serialize(*d);
  if (auto* b = o.if_contains("boolValue")) return json::serialize(*b);
  if (auto* a = o.if_contains("arrayValue")) return json::serialize(*a);
  return json::serialize(any);
}

std::string StringAttr(const json::value* attrs, std::string_view key) {
  if (attrs == nullptr || !attrs->is_array()) return {};
  for (const auto& kv : attrs->as_array()) {
    if (!kv.is_object()) continue;
    const auto* k = kv.as_object().if_contains("key");
    const auto* v = kv.as_object().if_contains("value");
    if (k && v && k->is_string() && k->as_string() == key) return ValueText(*v);
  }
  return {};
}

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Reads every span of one request line; malformed lines are skipped and counted.
void CollectSpans(const json::value& request, std::vector<SpanRow>& out) {
  const auto* rss =
      request.is_object() ? request.as_object().if_contains("resourceSpans") : nullptr;
  if (rss == nullptr || !rss->is_array()) return;
  for (const auto& rs : rss->as_array()) {
    if (!rs.is_object()) continue;
    std::string service;
    if (const auto* res = rs.as_object().if_contains("resource"); res && res->is_object()) {
      service = StringAttr(res->as_object().if_contains("attributes"), "service.name");
    }
    const auto* sss = rs.as_object().if_contains("scopeSpans");
    if (sss == nullptr || !sss->is_array()) continue;
    for (const auto& ss : sss->as_array()) {
      const auto* spans = ss.is_object() ? ss.as_object().if_contains("spans") : nullptr;
      if (spans == nullptr || !spans->is_array()) continue;
      for (const auto& sv : spans->as_array()) {
        if (!sv.is_object()) continue;
        const auto& s = sv.as_object();
        SpanRow row;
        row.trace_id = Str(s, "traceId");
        row.span_id = Str(s, "spanId");
        row.parent_id = Str(s, "parentSpanId");
        row.name = Str(s, "name");
        row.service = service.empty() ? "?" : service;
        row.start = ToNanos(s.if_contains("startTimeUnixNano"));
        row.end = ToNanos(s.if_contains("endTimeUnixNano"));
        if (auto* k = s.if_contains("kind"); k && k->is_int64())
          row.kind = static_cast<int>(k->as_int64());
        if (auto* st = s.if_contains("status"); st && st->is_object()) {
          if (auto* c = st->as_object().if_contains("code"); c && c->is_int64()) {
            row.status = static_cast<int>(c->as_int64());
          }
          row.status_message = Str(st->as_object(), "message");
        }
        static constexpr std::string_view kKeyAttributes[] = {
            "http.request.method", "http.route", "http.response.status_code",
            "server.address",      "db.system",  "db.operation.name",
            "error.type"};
        for (auto key : kKeyAttributes) {
          auto v = StringAttr(s.if_contains("attributes"), key);
          if (!v.empty()) row.attributes.emplace_back(std::string(key), v);
        }
        out.push_back(std::move(row));
      }
    }
  }
}

struct Style {
  bool color;
  const char* dim() const { return color ? "\033[2m" : ""; }
  const char* red() const { return color ? "\033[31m" : ""; }
  const char* bar() const { return color ? "\033[36m" : ""; }
  const char* bold() const { return color ? "\033[1m" : ""; }
  const char* reset() const { return color ? "\033[0m" : ""; }
};

std::string Millis(std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

const char* KindName(int kind) {
  switch (kind) {
    case 2:
      return "server";
    case 3:
      return "client";
    case 4:
      return "producer";
    case 5:
      return "consumer";
    default:
      return "internal";
  }
}

void PrintWaterfall(std::vector<SpanRow> spans, int width, const Style& st) {
  std::sort(spans.begin(), spans.end(),
            [](const SpanRow& a, const SpanRow& b) { return a.start < b.start; });
  std::uint64_t t0 = spans.front().start, t1 = spans.front().end;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    t0 = std::min(t0, spans[i].start);
    t1 = std::max(t1, spans[i].end);
    index[spans[i].span_id] = i;
  }
  const std::uint64_t total = t1 > t0 ? t1 - t0 : 1;
  std::map<std::string, std::vector<std::size_t>> children;
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (!spans[i].parent_id.empty() && index.count(spans[i].parent_id)) {
      children[spans[i].parent_id].push_back(i);
    } else {
      roots.push_back(i);
    }
  }
  std::printf("%strace %s%s  %zu spans  %s\n\n", st.bold(), spans.front().trace_id.c_str(),
              st.reset(), spans.size(), Millis(total).c_str());
  std::printf("%s%-12s %-44s %12s %12s  %-*s  %s%s\n", st.dim(), "service", "span", "start",
              "duration", width, "", "status / attributes", st.reset());

  struct Item {
    std::size_t index;
    int depth;
  };
  std::vector<Item> stack;
  for (auto it = roots.rbegin(); it != roots.rend(); ++it) stack.push_back({*it, 0});
  while (!stack.empty()) {
    auto [i, depth] = stack.back();
    stack.pop_back();
    const SpanRow& s = spans[i];
    std::string label = std::string(static_cast<std::size_t>(depth) * 2, ' ') + s.name + " (" +
                        KindName(s.kind) + ")";
    if (label.size() > 44) label = label.substr(0, 43) + "~";
    const auto offset = s.start - t0;
    const auto duration = s.end > s.start ? s.end - s.start : 0;
    auto col0 = static_cast<int>(static_cast<double>(offset) / static_cast<double>(total) * width);
    auto len = std::max(
        1, static_cast<int>(static_cast<double>(duration) / static_cast<double>(total) * width));
    col0 = std::min(col0, width - 1);
    len = std::min(len, width - col0);
    std::string bar(static_cast<std::size_t>(width), ' ');
    for (int c = col0; c < col0 + len; ++c) bar[static_cast<std::size_t>(c)] = '#';
    std::string extra =
        s.status == 2
            ? std::string("ERROR") + (s.status_message.empty() ? "" : ": " + s.status_message)
            : (s.status == 1 ? "ok" : "");
    for (const auto& [k, v] : s.attributes) extra += (extra.empty() ? "" : " ") + k + "=" + v;
    std::printf("%-12.12s %-44s %12s %12s  %s%s%s  %s%s%s\n", s.service.c_str(), label.c_str(),
                Millis(offset).c_str(), Millis(duration).c_str(), st.bar(), bar.c_str(), st.reset(),
                s.status == 2 ? st.red() : "", extra.c_str(), st.reset());
    auto kids = children.find(s.span_id);
    if (kids != children.end()) {
      auto& v = kids->second;
      std::sort(v.begin(), v.end(),
                [&](std::size_t a, std::size_t b) { return spans[a].start > spans[b].start; });
      for (auto k : v) stack.push_back({k, depth + 1});
    }
  }
}

// How long after a span ended its line may be written: the span waits for its batch
// (OTEL_BSP_SCHEDULE_DELAY, 5 s by default) and the batch's export. A file's first line
// was thus written by its spans' latest end plus this; its predecessor was finished by
// then, so it can hold spans of a trace only if the trace began before that. A trace's
// root ends last and is written last, in the newest file holding the trace, so the
// earliest start found there is the trace's own.
constexpr std::uint64_t kStraddleNanos = 60ULL * 1'000'000'000;

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

struct FileSpans {
  std::vector<SpanRow> spans;
  std::size_t bad_lines = 0;
  // The latest span end in the file's first line: about when the file was begun (that
  // line was written after its spans ended). 0 for an empty file.
  std::uint64_t first_line_end = 0;
  bool missing = false;
};

// Every span of one file, or only those of lines containing `filter` when it is not empty
// (a cheap test before parsing: a line without the id cannot hold the trace).
FileSpans ReadFile(const std::string& path, const std::string& filter) {
  FileSpans out;
  std::ifstream in(path);
  if (!in) {
    out.missing = true;
    return out;
  }
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const bool wanted = filter.empty() || line.find(filter) != std::string::npos;
    if (!wanted && !first) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec) {
      ++out.bad_lines;
      continue;
    }
    std::vector<SpanRow> rows;
    CollectSpans(v, rows);
    if (first) {
      first = false;
      for (const auto& r : rows) out.first_line_end = std::max(out.first_line_end, r.end);
    }
    if (!wanted) continue;
    out.spans.insert(out.spans.end(), std::make_move_iterator(rows.begin()),
                     std::make_move_iterator(rows.end()));
  }
  return out;
}

// The earliest start of the spans of the trace(s) `prefix` names; 0 when none was found
// yet (the next older file must then be read).
std::uint64_t EarliestStart(const std::vector<SpanRow>& spans, const std::string& prefix) {
  std::uint64_t start = 0;
  for (const auto& s : spans) {
    if (s.trace_id.rfind(prefix, 0) != 0) continue;
    if (start == 0 || s.start < start) start = s.start;
  }
  return start;
}

// The start of the oldest of the `limit` most recently started traces; 0 while fewer
// than `limit` traces are known.
std::uint64_t OldestOfNewest(const std::vector<SpanRow>& spans, std::size_t limit) {
  std::map<std::string_view, std::uint64_t> starts;
  for (const auto& s : spans) {
    auto [it, inserted] = starts.try_emplace(s.trace_id, s.start);
    if (!inserted) it->second = std::min(it->second, s.start);
  }
  if (limit == 0 || starts.size() < limit) return 0;
  std::vector<std::uint64_t> v;
  v.reserve(starts.size());
  for (const auto& [id, start] : starts) v.push_back(start);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(limit - 1), v.end(),
                   std::greater<>());
  return v[limit - 1];
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace_arg, file;
  if (const char* f = std::getenv("VIGIL_TRACES_FILE")) file = f;
  std::size_t limit = 20;
  int width = 40;
  bool color = isatty(STDOUT_FILENO) != 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto need_value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vigil-trace: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--file") {
      file = need_value("--file");
    } else if (a == "--limit") {
      limit = std::strtoul(need_value("--limit").c_str(), nullptr, 10);
    } else if (a == "--width") {
      width = std::clamp(std::atoi(need_value("--width").c_str()), 10, 200);
    } else if (a == "--no-color") {
      color = false;
    } else if (!a.empty() && a[0] != '-' && trace_arg.empty()) {
      trace_arg = a;
    } else {
      std::fprintf(stderr, "vigil-trace: unknown argument '%s'\n\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "vigil-trace: no traces file: pass --file F or set VIGIL_TRACES_FILE\n");
    return 2;
  }
  for (char& c : trace_arg) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

  // The file and its rotated predecessors, newest first: F, F.1, F.2, ...
  std::vector<std::string> files;
  for (std::size_t n = 0;; ++n) {
    std::string name = n == 0 ? file : file + "." + std::to_string(n);
    if (!FileExists(name)) break;
    files.push_back(std::move(name));
  }
  if (files.empty()) {
    std::fprintf(stderr, "vigil-trace: cannot open %s\n", file.c_str());
    return 1;
  }

  // Reads newest first and stops once the older files cannot change the answer: for one
  // trace, when a file holding it began after the trace had started plus kStraddle (so
  // nothing of it was written before); for the list, when `limit` traces are known and
  // the file read last began after the oldest of them had started.
  std::vector<SpanRow> spans;
  std::size_t bad_lines = 0;
  for (const std::string& name : files) {
    const FileSpans got = ReadFile(name, trace_arg);
    if (got.missing) continue;  // rotated away between the listing and the read
    bad_lines += got.bad_lines;
    spans.insert(spans.end(), std::make_move_iterator(got.spans.begin()),
                 std::make_move_iterator(got.spans.end()));
    if (got.first_line_end == 0) continue;  // empty: it says nothing about older files
    const std::uint64_t wanted_start =
        trace_arg.empty() ? OldestOfNewest(spans, limit) : EarliestStart(spans, trace_arg);
    if (wanted_start != 0 && wanted_start > got.first_line_end + kStraddleNanos) break;
  }
  // Reported last, after the table, so the note does not interleave with it.
  struct Note {
    std::size_t bad;
    ~Note() {
      std::fflush(stdout);
      if (bad > 0) std::fprintf(stderr, "vigil-trace: skipped %zu malformed lines\n", bad);
    }
  } note{bad_lines};
  Style st{color};

  if (trace_arg.empty()) {
    struct Summary {
      std::uint64_t start = UINT64_MAX, end = 0;
      std::size_t count = 0;
      std::string root, service;
    };
    std::map<std::string, Summary> traces;
    for (const auto& s : spans) {
      auto& t = traces[s.trace_id];
      t.count++;
      t.start = std::min(t.start, s.start);
      t.end = std::max(t.end, s.end);
      if (s.parent_id.empty() || t.root.empty()) {  // a span with no parent is the root
        t.root = s.name;
        t.service = s.service;
      }
    }
    std::vector<std::pair<std::string, Summary>> sorted(traces.begin(), traces.end());
    std::sort(sorted.begin(), sorted.end(),
              [](auto& a, auto& b) { return a.second.start > b.second.start; });
    if (sorted.empty()) {
      std::printf("no traces in %s\n", file.c_str());
      return 0;
    }
    std::printf("%s%-32s  %6s  %12s  %-12s %s%s\n", st.dim(), "trace_id", "spans", "duration",
                "service", "root span", st.reset());
    for (std::size_t i = 0; i < sorted.size() && i < limit; ++i) {
      const auto& [id, t] = sorted[i];
      std::printf("%-32s  %6zu  %12s  %-12.12s %s\n", id.c_str(), t.count,
                  Millis(t.end - t.start).c_str(), t.service.c_str(), t.root.c_str());
    }
    std::printf("\n%sshow one: vigil-trace <trace_id> --file %s%s\n", st.dim(), file.c_str(),
                st.reset());
    return 0;
  }

  std::vector<SpanRow> match;
  std::string found_id;
  for (auto& s : spans) {
    if (s.trace_id.rfind(trace_arg, 0) != 0) continue;
    if (!found_id.empty() && found_id != s.trace_id) {
      std::fprintf(stderr, "vigil-trace: '%s' matches more than one trace; give more digits\n",
                   trace_arg.c_str());
      return 2;
    }
    found_id = s.trace_id;
    match.push_back(std::move(s));
  }
  if (match.empty()) {
    std::fprintf(stderr, "vigil-trace: no span of trace %s in %s\n", trace_arg.c_str(),
                 file.c_str());
    return 1;
  }
  PrintWaterfall(std::move(match), width, st);
  return 0;
}

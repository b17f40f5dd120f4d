#include "errors/outbox.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <chrono>

namespace vigil::telemetry::internal {
namespace {

namespace json = boost::json;

// A crash's write takes milliseconds: a temporary file this old was left by one that died.
constexpr std::chrono::minutes kUnfinishedAfter{1};

std::nullopt_t Fail(std::string* error, std::string_view why) {
  if (error != nullptr) *error = std::string(why);
  return std::nullopt;
}

// "0x1f" -> 31; nullopt for anything else.
std::optional<std::uintptr_t> ParseAddress(const json::value* v) {
  if (v == nullptr || !v->is_string()) return std::nullopt;
  const std::string_view s = v->get_string();
  if (s.size() < 3 || !s.starts_with("0x")) return std::nullopt;
  std::uintptr_t out = 0;
  const auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), out, 16);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return out;
}

// The payload of the envelope's event item.
std::optional<std::string_view> EventPayload(std::string_view text, std::string* error) {
  const std::size_t header_end = text.find('\n');
  if (header_end == std::string_view::npos) return Fail(error, "no envelope header");
  const std::size_t item_end = text.find('\n', header_end + 1);
  if (item_end == std::string_view::npos) return Fail(error, "no item header");
  json::error_code ec;
  const json::value item = json::parse(text.substr(header_end + 1, item_end - header_end - 1), ec);
  const json::object* header = item.if_object();
  if (ec || header == nullptr || !header->contains("type") ||
      header->at("type") != json::value("event")) {
    return Fail(error, "the first item is not an event");
  }
  const json::value* length = header->if_contains("length");
  const std::string_view rest = text.substr(item_end + 1);
  if (length == nullptr || !length->is_int64() || length->as_int64() < 0 ||
      static_cast<std::uint64_t>(length->as_int64()) > rest.size()) {
    return Fail(error, "the event's length is missing or beyond the file");
  }
  return rest.substr(0, static_cast<std::size_t>(length->as_int64()));
}

// Each raw frame (instruction_addr, image_addr) replaced by the frames this process's
// symbols give for it: the same address, with function, file and line.
void NameFrames(json::array& frames, const json::array* images, Symbolizer& symbols) {
  json::array named;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    json::object* frame = frames[i].if_object();
    const auto address =
        frame != nullptr ? ParseAddress(frame->if_contains("instruction_addr")) : std::nullopt;
    const auto image_addr =
        frame != nullptr ? ParseAddress(frame->if_contains("image_addr")) : std::nullopt;
    std::optional<std::uintptr_t> here;
    if (address && image_addr && images != nullptr && *address >= *image_addr) {
      for (const json::value& image : *images) {
        const json::object* o = image.if_object();
        if (o == nullptr || ParseAddress(o->if_contains("image_addr")) != image_addr) continue;
        const json::value* code_id = o->if_contains("code_id");
        if (code_id != nullptr && code_id->is_string()) {
          here = symbols.Relocate(code_id->get_string(), *address - *image_addr);
        }
        break;
      }
    }
    if (!here) {
      named.push_back(std::move(frames[i]));
      continue;
    }
    // Innermost last: the last frame is where the signal came from, not a return address.
    const bool innermost = i + 1 == frames.size();
    std::vector<StackFrame> found = symbols.FramesAt(*here, !innermost);
    // FramesAt lists inlined calls innermost first; the event lists outermost first.
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
      json::object out = *frame;
      if (!it->function.empty()) out["function"] = it->function;
      if (!it->file.empty()) {
        out["filename"] = it->file;
        out["lineno"] = it->line;
      }
      out["in_app"] = it->in_app;
      named.push_back(std::move(out));
    }
  }
  frames = std::move(named);
}

}  // namespace

std::vector<std::filesystem::path> OutboxFiles(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<fs::file_time_type, fs::path>> found;
  if (!fs::exists(dir)) return {};
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::error_code ec;
    if (name.starts_with(".") && name.ends_with(".tmp")) {
      // A write a crash did not finish, unless one is under way (another process's).
      const auto time = entry.last_write_time(ec);
      if (!ec && fs::file_time_type::clock::now() - time > kUnfinishedAfter) {
        fs::remove(entry.path(), ec);
      }
      continue;
    }
    if (!entry.is_regular_file(ec) || !name.ends_with(".envelope")) continue;
    const auto time = entry.last_write_time(ec);
    if (!ec) found.emplace_back(time, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> files;
  files.reserve(found.size());
  for (auto& [time, path] : found) files.push_back(std::move(path));
  return files;
}

std::optional<OutboxEvent> ReadCrashEnvelope(std::string_view text, Symbolizer& symbols,
                                             std::string* error) {
  const auto payload = EventPayload(text, error);
  if (!payload) return std::nullopt;
  json::error_code ec;
  json::value event = json::parse(*payload, ec);
  json::object* o = event.if_object();
  if (ec || o == nullptr) return Fail(error, "the event is not a JSON object");
  OutboxEvent out;
  const json::value* id = o->if_contains("event_id");
  if (id == nullptr || !id->is_string() || id->get_string().size() != 32) {
    return Fail(error, "the event has no event_id");
  }
  out.event_id = std::string(id->get_string());
  if (const json::value* trace = o->if_contains("contexts")) {
    const json::value* t = trace->is_object() ? trace->get_object().if_contains("trace") : nullptr;
    const json::value* trace_id =
        t != nullptr && t->is_object() ? t->get_object().if_contains("trace_id") : nullptr;
    if (trace_id != nullptr && trace_id->is_string()) {
      out.trace_id = TraceId::FromHex(trace_id->get_string()).value_or(TraceId());
    }
  }
  const json::array* images = nullptr;
  if (const json::value* meta = o->if_contains("debug_meta");
      meta != nullptr && meta->is_object()) {
    if (const json::value* i = meta->get_object().if_contains("images")) images = i->if_array();
  }
  if (json::value* exception = o->if_contains("exception"); exception != nullptr) {
    json::value* values =
        exception->is_object() ? exception->get_object().if_contains("values") : nullptr;
    if (values != nullptr && values->is_array()) {
      for (json::value& value : values->get_array()) {
        json::value* stack =
            value.is_object() ? value.get_object().if_contains("stacktrace") : nullptr;
        json::value* frames = stack != nullptr && stack->is_object()
                                  ? stack->get_object().if_contains("frames")
                                  : nullptr;
        if (frames != nullptr && frames->is_array())
          NameFrames(frames->get_array(), images, symbols);
      }
    }
  }
  out.payload = json::serialize(event);
  return out;
}

}  // namespace vigil::telemetry::internal

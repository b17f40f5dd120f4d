#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <vigil/http/exchange.hpp>

#include "connection.hpp"

namespace vigil::http {

namespace bhttp = boost::beast::http;

std::string_view MethodLabel(bhttp::verb verb) noexcept {
  switch (verb) {
    case bhttp::verb::get: return "GET";
    case bhttp::verb::head: return "HEAD";
    case bhttp::verb::post: return "POST";
    case bhttp::verb::put: return "PUT";
    case bhttp::verb::delete_: return "DELETE";
    case bhttp::verb::connect: return "CONNECT";
    case bhttp::verb::options: return "OPTIONS";
    case bhttp::verb::trace: return "TRACE";
    case bhttp::verb::patch: return "PATCH";
    default: return "_OTHER";
  }
}

std::string_view StatusLabel(unsigned status, char (&out)[3]) noexcept {
  if (status == 0) return {};
  unsigned s = status % 1000;
  for (int i = 2; i >= 0; --i, s /= 10) out[i] = static_cast<char>('0' + s % 10);
  return {out, 3};
}

std::string_view ReasonPhrase(unsigned status) noexcept {
  const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  if (reason.empty() || reason == "<unknown-status>") return status >= 400 ? "Error" : "Status";
  return {reason.data(), reason.size()};
}

namespace {

void AppendJsonString(std::string& out, std::string_view text) {
  out += boost::json::serialize(boost::json::string(text));
}

}  // namespace

std::string ProblemJson(unsigned status, std::string_view detail, std::string_view type,
                        const telemetry::RequestContext& context) {
  std::string out;
  out.reserve(192 + detail.size());
  out += "{\"type\":";
  AppendJsonString(out, type.empty() ? std::string_view("about:blank") : type);
  out += ",\"title\":";
  AppendJsonString(out, ReasonPhrase(status));
  out += ",\"status\":";
  out += std::to_string(status);
  out += ",\"detail\":";
  AppendJsonString(out, detail);
  out += ",\"request_id\":";
  AppendJsonString(out, context.request_id.view());
  out += ",\"trace_id\":\"";
  if (context.span.trace_id.IsValid()) out += context.span.trace_id.ToHex();
  out += "\"}";
  return out;
}

std::string_view Exchange::method() const noexcept {
  if (request_ == nullptr) return {};
  const auto m = request_->method_string();
  return {m.data(), m.size()};
}

std::string_view Exchange::target() const noexcept {
  if (!target_.empty()) return target_;
  if (request_ == nullptr) return {};
  const auto t = request_->target();
  return {t.data(), t.size()};
}

std::string_view Exchange::header(std::string_view name) const noexcept {
  if (request_ == nullptr) return {};
  const auto it = request_->find(boost::beast::string_view(name.data(), name.size()));
  if (it == request_->end()) return {};
  return {it->value().data(), it->value().size()};
}

std::size_t Exchange::header_count(std::string_view name) const noexcept {
  if (request_ == nullptr) return 0;
  return request_->count(boost::beast::string_view(name.data(), name.size()));
}

std::string_view Exchange::header_list(std::string_view name, std::string& storage) const {
  if (request_ == nullptr) return {};
  const boost::beast::string_view wanted(name.data(), name.size());
  const auto [first, last] = request_->equal_range(wanted);
  if (first == last) return {};
  if (std::next(first) == last) return {first->value().data(), first->value().size()};
  // The range runs in arrival order from the first line of `name` to its last, and so
  // also covers the lines of other fields sent in between.
  storage.clear();
  for (auto it = first; it != last; ++it) {
    if (!boost::beast::iequals(it->name_string(), wanted)) continue;
    if (it != first) storage += ", ";
    storage.append(it->value().data(), it->value().size());
  }
  return storage;
}

void Exchange::Respond(unsigned status, std::string body, std::string_view content_type) {
  response_.result(status);
  response_.set(bhttp::field::content_type,
                boost::beast::string_view(content_type.data(), content_type.size()));
  response_.body() = std::move(body);
  responded_ = true;
}

telemetry::ErrorScope& Exchange::error_scope() {
  if (!error_scope_) error_scope_ = std::make_unique<telemetry::ErrorScope>();
  return *error_scope_;
}

void Exchange::RespondProblem(unsigned status, std::string_view detail, std::string_view type) {
  Respond(status, ProblemJson(status, detail, type, context_), "application/problem+json");
}

std::optional<std::uint64_t> Exchange::content_length() const noexcept {
  return connection_->RequestContentLength();
}

bool Exchange::has_body() const noexcept {
  if (connection_->RequestChunked()) return true;
  const auto n = connection_->RequestContentLength();
  return n && *n > 0;
}

asio::awaitable<std::size_t> Exchange::ReadSome(char* out, std::size_t size) {
  return connection_->ReadSome(*this, out, size);
}

asio::awaitable<std::string> Exchange::ReadAll() { return connection_->ReadAll(*this); }

asio::awaitable<void> Exchange::SendHead(const ResponseHeader& head,
                                         std::optional<std::uint64_t> content_length) {
  return connection_->SendHead(*this, head, content_length);
}

asio::awaitable<void> Exchange::SendBody(const char* data, std::size_t size) {
  return connection_->SendBody(*this, data, size);
}

asio::awaitable<void> Exchange::Finish() { return connection_->Finish(*this); }

}  // namespace vigil::http

#include "otlp/http_post.hpp"

#include <algorithm>
#include <mutex>
#include <new>
#include <stdexcept>

#include "otlp/retry.hpp"
#include "vigil_build_info.hpp"

namespace vigil::telemetry::otlp {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kMaxLoggedMessage = 256;
// A poll never sleeps longer than this, so a missed wake-up costs at most this much.
constexpr milliseconds kMaxPoll{1000};

}  // namespace

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    throw std::runtime_error(std::string("curl_global_init failed: ") + curl_easy_strerror(result));
  }
}

std::string PrintableExcerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxLoggedMessage)) {
    out += (c >= 0x20 && c < 0x7F) ? c : ' ';
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  if (text.size() > kMaxLoggedMessage) {
    out += "...";
  }
  return out;
}

bool IsPermanentCurlError(CURLcode code) noexcept {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
      return true;
    default:
      return false;
  }
}

HttpPost::HttpPost(const std::string& url, const std::vector<std::string>& header_lines) {
  EnsureCurlGlobalInit();
  easy_ = curl_easy_init();
  multi_ = curl_multi_init();
  if (easy_ == nullptr || multi_ == nullptr) {
    Cleanup();
    throw std::runtime_error("libcurl could not create a handle");
  }
  for (const std::string& line : header_lines) {
    curl_slist* next = curl_slist_append(headers_, line.c_str());
    if (next == nullptr) {
      Cleanup();
      throw std::bad_alloc();
    }
    headers_ = next;
  }
  const std::string user_agent = std::string("vigil-telemetry/") + build::kVersion;
  curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy_, CURLOPT_POST, 1L);
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(easy_, CURLOPT_USERAGENT, user_agent.c_str());  // curl copies it
  curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer_);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpPost::OnBody);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
}

HttpPost::~HttpPost() { Cleanup(); }

void HttpPost::Cleanup() noexcept {
  if (easy_ != nullptr) {
    curl_easy_cleanup(easy_);
  }
  if (multi_ != nullptr) {
    curl_multi_cleanup(multi_);
  }
  if (headers_ != nullptr) {
    curl_slist_free_all(headers_);
  }
  easy_ = nullptr;
  multi_ = nullptr;
  headers_ = nullptr;
}

std::size_t HttpPost::OnBody(char* data, std::size_t size, std::size_t count, void* self) {
  auto* post = static_cast<HttpPost*>(self);
  const std::size_t n = size * count;
  const std::size_t room = kMaxResponseBytes - std::min(kMaxResponseBytes, post->response_.size());
  post->response_.append(data, std::min(n, room));
  return n;  // the rest is read and discarded so the connection stays usable
}

HttpPost::Result HttpPost::Perform(std::string_view payload, Clock::time_point deadline) {
  Result a;
  response_.clear();
  error_buffer_[0] = '\0';
  const auto remaining = std::max<milliseconds::rep>(
      1, std::chrono::ceil<milliseconds>(deadline - Clock::now()).count());
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, payload.data());
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining));
  requests_.fetch_add(1, std::memory_order_relaxed);
  bytes_sent_.fetch_add(payload.size(), std::memory_order_relaxed);

  if (CURLMcode mc = curl_multi_add_handle(multi_, easy_); mc != CURLM_OK) {
    a.code = CURLE_FAILED_INIT;
    a.error = std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc);
    return a;
  }
  bool done = false;
  while (!done) {
    int running = 0;
    if (CURLMcode mc = curl_multi_perform(multi_, &running); mc != CURLM_OK) {
      a.code = CURLE_FAILED_INIT;
      a.error = std::string("curl_multi_perform: ") + curl_multi_strerror(mc);
      break;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        a.code = msg->data.result;
        done = true;
      }
    }
    if (done) {
      break;
    }
    if (running == 0) {
      a.code = CURLE_FAILED_INIT;
      a.error = "transfer ended without a result";
      break;
    }
    Clock::time_point limit = deadline;
    if (shutting_down_.load()) {
      limit = std::min(limit, ShutdownDeadline());
    }
    const auto now = Clock::now();
    if (now >= limit) {
      a.code = CURLE_OPERATION_TIMEDOUT;
      a.aborted_by_shutdown = limit < deadline;
      a.error = a.aborted_by_shutdown ? "aborted by shutdown" : "timed out";
      break;
    }
    const auto wait = std::min(kMaxPoll, std::chrono::ceil<milliseconds>(limit - now));
    curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait.count()), nullptr);
  }
  curl_multi_remove_handle(multi_, easy_);

  if (a.code == CURLE_OK) {
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &a.status);
    char* content_type = nullptr;
    if (curl_easy_getinfo(easy_, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
        content_type != nullptr) {
      a.content_type = content_type;
    }
    if (auto retry_after = ResponseHeader("Retry-After")) {
      a.retry_after = ParseRetryAfter(*retry_after, std::chrono::system_clock::now());
    }
  } else if (a.error.empty()) {
    a.error = error_buffer_[0] != '\0' ? std::string(error_buffer_) : curl_easy_strerror(a.code);
  }
  return a;
}

std::optional<std::string_view> HttpPost::ResponseHeader(const char* name) {
  curl_header* header = nullptr;
  if (curl_easy_header(easy_, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK ||
      header == nullptr) {
    return std::nullopt;
  }
  return std::string_view(header->value);
}

void HttpPost::BeginShutdown(Clock::time_point deadline) noexcept {
  const auto ticks = deadline.time_since_epoch().count();
  auto current = shutdown_deadline_.load();
  while (ticks < current && !shutdown_deadline_.compare_exchange_weak(current, ticks)) {
  }
  shutting_down_.store(true);
  curl_multi_wakeup(multi_);
}

}  // namespace vigil::telemetry::otlp

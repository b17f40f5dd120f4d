// One kept-alive HTTP POST channel on libcurl: what every exporter of the SDK that talks
// HTTP shares (OTLP/HTTP spans, Sentry envelopes).
//
// One easy handle is driven through a multi handle, so the connection is kept alive
// between requests and the wait for an answer is a curl_multi_poll() that BeginShutdown()
// can interrupt from another thread. Each Perform() lives within its own deadline and,
// once shutdown began, within the shutdown deadline too.
//
//   otlp::HttpPost post(url, {"Content-Type: application/json", "Expect:"});
//   auto result = post.Perform(body, steady_clock::now() + 10s);
//   if (result.code == CURLE_OK && result.status == 200) ...
//   auto limits = post.ResponseHeader("X-Sentry-Rate-Limits");  // valid until the next call
//
// Thread-safety: Perform() and ResponseHeader() from one thread at a time; BeginShutdown()
// and the counters from any thread, also while a Perform() runs.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::telemetry::otlp {

// curl_global_init, once per process. Throws std::runtime_error when it fails.
void EnsureCurlGlobalInit();

// Printable ASCII only, at most 256 bytes and "..." beyond: what a receiver sent, for a
// log line.
std::string PrintableExcerpt(std::string_view text);

// Transport errors that no retry can cure (a malformed URL, an unsupported scheme).
bool IsPermanentCurlError(CURLcode code) noexcept;

class HttpPost {
 public:
  using Clock = std::chrono::steady_clock;

  struct Result {
    CURLcode code = CURLE_OK;
    long status = 0;
    bool aborted_by_shutdown = false;
    std::optional<std::chrono::milliseconds> retry_after;
    // Points into the handle's storage, valid until the next Perform(): copying it would
    // allocate on every request.
    std::string_view content_type;
    std::string error;  // what went wrong when code != CURLE_OK
  };

  // The answer's body is kept up to this size; the rest is read and discarded.
  static constexpr std::size_t kMaxResponseBytes = std::size_t{64} * 1024;

  // `url` must be http:// or https:// (checked by the caller); `header_lines` are
  // "Name: value" lines sent with every request. Throws std::runtime_error when libcurl
  // cannot be initialised.
  HttpPost(const std::string& url, const std::vector<std::string>& header_lines);
  ~HttpPost();
  HttpPost(const HttpPost&) = delete;
  HttpPost& operator=(const HttpPost&) = delete;

  // POSTs `payload` and waits for the answer until `deadline` (or the shutdown deadline,
  // whichever comes first).
  Result Perform(std::string_view payload, Clock::time_point deadline);

  // The value of response header `name` of the last Perform(), valid until the next one.
  std::optional<std::string_view> ResponseHeader(const char* name);
  // The last answer's body (at most kMaxResponseBytes).
  const std::string& response_body() const noexcept { return response_; }

  // From now on, a Perform() in flight or started later ends at `deadline` at the latest
  // (the earliest of several calls counts); wakes the poll at once.
  void BeginShutdown(Clock::time_point deadline) noexcept;
  bool shutting_down() const noexcept { return shutting_down_.load(); }

  std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_sent() const noexcept { return bytes_sent_.load(std::memory_order_relaxed); }

 private:
  static std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* self);
  void Cleanup() noexcept;
  Clock::time_point ShutdownDeadline() const noexcept {
    return Clock::time_point(Clock::duration(shutdown_deadline_.load()));
  }

  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  std::string response_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<Clock::rep> shutdown_deadline_{Clock::time_point::max().time_since_epoch().count()};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
};

}  // namespace vigil::telemetry::otlp

// OTLP/HTTP span exporter on libcurl.
//
// One easy handle is driven through a multi handle, so the connection is kept alive
// between batches and the wait for an answer is a curl_multi_poll() that Shutdown() can
// interrupt with curl_multi_wakeup() from another thread. Waits between attempts are on
// a condition variable for the same reason. The whole series of attempts for one batch
// lives within options.timeout.
//
// A receiver that is down is tried with one batch at a time: once a batch has used up
// its retries, later batches are dropped at once ("export_failed") and only one attempt
// per backoff period probes whether the receiver is back. Otherwise every batch would
// hold the export thread for the whole timeout, while spans piled up in the processor's
// queue (each a full record, ~1 KiB) and the other exporters (the traces file) waited
// behind it: memory grew for minutes until the queue was full, and the file lost most
// spans to a full queue.

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/telemetry/text.hpp>

#include "otlp/gzip.hpp"
#include "otlp/report.hpp"
#include "otlp/response.hpp"
#include "otlp/retry.hpp"
#include "otlp/url.hpp"
#include "vigil_build_info.hpp"

namespace vigil::telemetry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What an error body may contribute to a log line.
constexpr std::size_t kMaxResponseBytes = std::size_t{64} * 1024;
constexpr std::size_t kMaxLoggedMessage = 256;
// A poll never sleeps longer than this, so a missed wake-up costs at most this much.
constexpr milliseconds kMaxPoll{1000};

constexpr std::string_view kRejected = "rejected";
constexpr std::string_view kExportFailed = "export_failed";
constexpr std::string_view kShutdown = "shutdown";

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    throw std::runtime_error(std::string("curl_global_init failed: ") + curl_easy_strerror(result));
  }
}

// Printable ASCII only, shortened: what a receiver sent may be anything.
std::string Printable(std::string_view text) {
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

// Transport errors that no retry can cure.
bool IsPermanentCurlError(CURLcode code) {
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

std::string Seconds(Clock::duration d) {
  const auto tenths = std::chrono::duration_cast<milliseconds>(d).count() / 100;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}

}  // namespace

struct OtlpHttpExporter::State {
  struct Attempt {
    CURLcode code = CURLE_OK;
    long status = 0;
    bool aborted_by_shutdown = false;
    std::optional<milliseconds> retry_after;
    // Points into the handle's storage, valid until the next transfer: copying it would
    // allocate on every request.
    std::string_view content_type;
    std::string error;  // for the log line when this attempt is the last
  };

  OtlpHttpExporterOptions options;
  Resource resource;
  InstrumentationScope scope;
  std::string log_endpoint;

  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // Reused between batches: in steady state Export() does not grow the heap.
  std::string body;
  std::string compressed;
  std::string response;
  std::optional<otlp::GzipCompressor> gzip;

  std::mutex mu;
  std::condition_variable cv;
  bool shutdown = false;  // guarded by mu; mirrored in shutting_down for lock-free reads
  std::atomic<bool> shutting_down{false};
  std::atomic<Clock::rep> shutdown_deadline{std::numeric_limits<Clock::rep>::max()};

  std::atomic<std::uint64_t> requests{0}, retries{0}, spans_exported{0}, spans_rejected{0},
      spans_failed{0}, bytes_sent{0}, batches_skipped{0};

  // The receiver is taken as down after a batch used up its retries on retryable errors
  // (the exporting thread only reads and writes these): until `next_probe` batches are
  // dropped without a request; then one attempt, no retries, decides.
  unsigned down_probes = 0;  // 0: up; else failed probes so far, for the backoff
  Clock::time_point next_probe{};
  std::uint64_t spans_skipped_unlogged = 0;

  State(OtlpHttpExporterOptions o, Resource r, InstrumentationScope s)
      : options(std::move(o)), resource(std::move(r)), scope(std::move(s)) {
    if (!otlp::IsHttpUrl(options.endpoint)) {
      throw std::invalid_argument("OTLP endpoint \"" + options.endpoint +
                                  "\" is not an http:// or https:// URL");
    }
    log_endpoint = otlp::RedactedUrl(options.endpoint);
    if (options.compression == OtlpCompression::kGzip) {
      gzip.emplace();
    }
    EnsureCurlGlobalInit();
    easy = curl_easy_init();
    multi = curl_multi_init();
    if (easy == nullptr || multi == nullptr) {
      Cleanup();
      throw std::runtime_error("libcurl could not create a handle");
    }
    try {
      BuildHeaders();
    } catch (...) {
      Cleanup();
      throw;
    }
    const std::string user_agent = std::string("vigil-telemetry/") + build::kVersion;
    curl_easy_setopt(easy, CURLOPT_URL, options.endpoint.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, user_agent.c_str());  // curl copies it
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &State::OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
  }

  ~State() { Cleanup(); }

  void Cleanup() noexcept {
    if (easy != nullptr) {
      curl_easy_cleanup(easy);
    }
    if (multi != nullptr) {
      curl_multi_cleanup(multi);
    }
    if (headers != nullptr) {
      curl_slist_free_all(headers);
    }
    easy = nullptr;
    multi = nullptr;
    headers = nullptr;
  }

  void AppendHeader(const std::string& line) {
    curl_slist* next = curl_slist_append(headers, line.c_str());
    if (next == nullptr) {
      throw std::bad_alloc();
    }
    headers = next;
  }

  void BuildHeaders() {
    AppendHeader(options.protocol == OtlpProtocol::kHttpJson
                     ? "Content-Type: application/json"
                     : "Content-Type: application/x-protobuf");
    if (gzip) {
      AppendHeader("Content-Encoding: gzip");
    }
    // No "Expect: 100-continue" round trip before large bodies.
    AppendHeader("Expect:");
    for (const auto& [key, value] : options.headers) {
      const std::string lower = text::AsciiLowercase(key);
      // These describe the body the exporter writes; a configured value would corrupt it.
      if (lower == "content-type" || lower == "content-encoding" || lower == "content-length" ||
          lower == "transfer-encoding") {
        continue;
      }
      // curl sends "Name;" as a header with an empty value ("Name:" would remove it).
      std::string line = key;
      if (value.empty()) {
        line += ';';
      } else {
        line += ": ";
        line += value;
      }
      AppendHeader(line);
    }
  }

  static std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* self) {
    auto* state = static_cast<State*>(self);
    const std::size_t n = size * count;
    const std::size_t room =
        kMaxResponseBytes - std::min(kMaxResponseBytes, state->response.size());
    state->response.append(data, std::min(n, room));
    return n;  // the rest is read and discarded so the connection stays usable
  }

  void Report(const std::string& message) noexcept { otlp::Report(options.on_error, message); }

  Clock::time_point ShutdownDeadline() const noexcept {
    return Clock::time_point(Clock::duration(shutdown_deadline.load()));
  }

  // Sleeps until `until` or Shutdown(); false when woken by Shutdown().
  bool WaitUntil(Clock::time_point until) {
    std::unique_lock lock(mu);
    return !cv.wait_until(lock, until, [&] { return shutdown; });
  }

  Attempt Perform(std::string_view payload, Clock::time_point deadline) {
    Attempt a;
    response.clear();
    error_buffer[0] = '\0';
    const auto remaining = std::max<milliseconds::rep>(
        1, std::chrono::ceil<milliseconds>(deadline - Clock::now()).count());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining));
    requests.fetch_add(1, std::memory_order_relaxed);
    bytes_sent.fetch_add(payload.size(), std::memory_order_relaxed);

    if (CURLMcode mc = curl_multi_add_handle(multi, easy); mc != CURLM_OK) {
      a.code = CURLE_FAILED_INIT;
      a.error = std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc);
      return a;
    }
    bool done = false;
    while (!done) {
      int running = 0;
      if (CURLMcode mc = curl_multi_perform(multi, &running); mc != CURLM_OK) {
        a.code = CURLE_FAILED_INIT;
        a.error = std::string("curl_multi_perform: ") + curl_multi_strerror(mc);
        break;
      }
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
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
      if (shutting_down.load()) {
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
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
    curl_multi_remove_handle(multi, easy);

    if (a.code == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &a.status);
      char* content_type = nullptr;
      if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
          content_type != nullptr) {
        a.content_type = content_type;
      }
      curl_header* retry_after = nullptr;
      if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &retry_after) == CURLHE_OK) {
        a.retry_after = otlp::ParseRetryAfter(retry_after->value, std::chrono::system_clock::now());
      }
    } else if (a.error.empty()) {
      a.error = error_buffer[0] != '\0' ? std::string(error_buffer) : curl_easy_strerror(a.code);
    }
    return a;
  }

  bool ResponseIsJson(const Attempt& a) const {
    if (otlp::IsJsonContentType(a.content_type)) {
      return true;
    }
    if (otlp::IsProtobufContentType(a.content_type)) {
      return false;
    }
    return options.protocol == OtlpProtocol::kHttpJson;
  }

  std::string Describe(const Attempt& a) const {
    if (a.code != CURLE_OK) {
      return Printable(a.error);
    }
    std::string text = "HTTP " + std::to_string(a.status);
    std::string message;
    if (otlp::IsJsonContentType(a.content_type) || otlp::IsProtobufContentType(a.content_type)) {
      message = otlp::ParseStatusMessage(response, ResponseIsJson(a));
    } else if (a.content_type.starts_with("text/")) {
      message = response;
    }
    if (message = Printable(message); !message.empty()) {
      text += ": " + message;
    }
    return text;
  }

  ExportOutcome Drop(std::size_t n, std::string_view reason, const std::string& why) {
    (reason == kRejected ? spans_rejected : spans_failed).fetch_add(n, std::memory_order_relaxed);
    Report(why + "; dropped " + std::to_string(n) + (n == 1 ? " span" : " spans"));
    return ExportOutcome{0, n, reason};
  }

  ExportOutcome Accepted(const Attempt& a, std::size_t n) {
    auto partial = otlp::ParseExportResponse(response, ResponseIsJson(a));
    std::size_t rejected = 0;
    if (partial && partial->rejected_spans > 0) {
      rejected = std::min(n, static_cast<std::size_t>(partial->rejected_spans));
    }
    spans_exported.fetch_add(n - rejected, std::memory_order_relaxed);
    spans_rejected.fetch_add(rejected, std::memory_order_relaxed);
    if (partial && (rejected > 0 || !partial->error_message.empty())) {
      std::string line = "OTLP receiver " + log_endpoint + " accepted " +
                         std::to_string(n - rejected) + " of " + std::to_string(n) +
                         " spans, rejected " + std::to_string(rejected);
      if (std::string msg = Printable(partial->error_message); !msg.empty()) {
        line += ": " + msg;
      }
      Report(line);
    }
    return ExportOutcome{n - rejected, rejected, rejected > 0 ? kRejected : std::string_view{}};
  }

  // Drops a batch without a request while the receiver is down and no probe is due.
  std::optional<ExportOutcome> SkipWhileDown(std::size_t n) {
    if (down_probes == 0 || Clock::now() >= next_probe) {
      return std::nullopt;
    }
    // Counted now, logged with the next attempt: at full load a line per skipped batch
    // would be several warn lines a second for as long as the outage lasts.
    batches_skipped.fetch_add(1, std::memory_order_relaxed);
    spans_failed.fetch_add(n, std::memory_order_relaxed);
    spans_skipped_unlogged += n;
    return ExportOutcome{0, n, kExportFailed};
  }

  // " (and N spans dropped unsent while the receiver was down)", once per attempt.
  std::string SkippedNote() {
    if (spans_skipped_unlogged == 0) {
      return {};
    }
    std::string note = " (and " + std::to_string(spans_skipped_unlogged) +
                       " spans dropped unsent while the receiver was down)";
    spans_skipped_unlogged = 0;
    return note;
  }

  // After a failed probe or a batch whose retries ran out: wait longer before the next
  // probe (the backoff of the failed probes so far, or the receiver's Retry-After).
  void MarkDown(std::optional<milliseconds> retry_after) {
    const milliseconds wait = retry_after.value_or(
        otlp::BackoffDelay(down_probes, options.initial_backoff, options.max_backoff, RandomU64()));
    ++down_probes;
    next_probe = Clock::now() + wait;
  }

  ExportOutcome Deliver(std::string_view payload, std::size_t n) {
    const auto start = Clock::now();
    const auto deadline = start + options.timeout;
    const bool probe = down_probes > 0;
    for (unsigned attempt = 0;; ++attempt) {
      if (attempt > 0) {
        retries.fetch_add(1, std::memory_order_relaxed);
      }
      Attempt a = Perform(payload, deadline);
      if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) {
        down_probes = 0;
        if (std::string note = SkippedNote(); !note.empty()) {
          Report("OTLP receiver " + log_endpoint + " answers again" + note);
        }
        return Accepted(a, n);
      }

      if (a.aborted_by_shutdown || shutting_down.load()) {
        return StoppedByShutdown(n, attempt, a);
      }
      const bool retryable =
          a.code == CURLE_OK ? otlp::IsRetryableStatus(a.status) : !IsPermanentCurlError(a.code);
      if (!retryable) {
        // The receiver answered: it is up, whatever it thought of this batch.
        down_probes = 0;
        const bool client_error = a.code == CURLE_OK && a.status >= 400 && a.status < 500;
        return Drop(n, client_error ? kRejected : kExportFailed,
                    FailureLine("failed", a) + SkippedNote());
      }
      if (probe) {
        MarkDown(a.retry_after);
        return Drop(n, kExportFailed,
                    FailureLine("failed (receiver still down, next attempt in " +
                                    Seconds(next_probe - Clock::now()) + ")",
                                a) +
                        SkippedNote());
      }
      const milliseconds wait = a.retry_after.value_or(
          otlp::BackoffDelay(attempt, options.initial_backoff, options.max_backoff, RandomU64()));
      const auto now = Clock::now();
      if (now >= deadline || wait >= deadline - now) {
        MarkDown(a.retry_after);
        return GaveUp(n, attempt, a, now - start, wait);
      }
      // Shutdown() may come while this thread is between the wait and the next attempt.
      if (!WaitUntil(now + wait) || shutting_down.load()) {
        return StoppedByShutdown(n, attempt, a);
      }
    }
  }

  // The failure log lines, built only when a batch is lost: a delivered batch allocates
  // no strings here.

  static std::string Attempts(unsigned attempt) {
    std::string text = std::to_string(attempt + 1);
    text += attempt == 0 ? " attempt" : " attempts";
    return text;
  }

  // "OTLP trace export to <endpoint> <how>: <what the last attempt got>"
  std::string FailureLine(std::string_view how, const Attempt& a) const {
    std::string line = "OTLP trace export to ";
    line += log_endpoint;
    line += ' ';
    line += how;
    line += ": ";
    line += Describe(a);
    return line;
  }

  ExportOutcome StoppedByShutdown(std::size_t n, unsigned attempt, const Attempt& a) {
    return Drop(n, kShutdown, FailureLine("stopped by shutdown after " + Attempts(attempt), a));
  }

  ExportOutcome GaveUp(std::size_t n, unsigned attempt, const Attempt& a, Clock::duration spent,
                       milliseconds wait) {
    std::string how = "gave up after ";
    how += Attempts(attempt);
    how += " in ";
    how += Seconds(spent);
    how += " (timeout ";
    how += Seconds(options.timeout);
    how += ")";
    std::string line = FailureLine(how, a);
    if (a.retry_after) {
      line += " (Retry-After ";
      line += Seconds(wait);
      line += ")";
    }
    return Drop(n, kExportFailed, line);
  }
};

OtlpHttpExporter::OtlpHttpExporter(OtlpHttpExporterOptions options, Resource resource,
                                   InstrumentationScope scope)
    : state_(std::make_unique<State>(std::move(options), std::move(resource), std::move(scope))) {}

OtlpHttpExporter::~OtlpHttpExporter() = default;

ExportOutcome OtlpHttpExporter::Export(std::span<const SpanData* const> batch) noexcept {
  State& s = *state_;
  const std::size_t n = batch.size();
  if (s.shutting_down.load()) {
    s.spans_failed.fetch_add(n, std::memory_order_relaxed);
    return ExportOutcome{0, n, kShutdown};
  }
  if (n == 0) {
    return ExportOutcome{};
  }
  if (auto skipped = s.SkipWhileDown(n)) {
    return *skipped;
  }
  try {
    s.body.clear();
    if (s.options.protocol == OtlpProtocol::kHttpJson) {
      EncodeTracesJson(s.resource, s.scope, batch, s.body);
    } else {
      EncodeTracesProtobuf(s.resource, s.scope, batch, s.body);
    }
    std::string_view payload = s.body;
    if (s.gzip) {
      s.gzip->Compress(s.body, s.compressed);
      payload = s.compressed;
    }
    return s.Deliver(payload, n);
  } catch (const std::exception& e) {
    return s.Drop(n, kExportFailed,
                  "OTLP trace export to " + s.log_endpoint + " failed: " + e.what());
  } catch (...) {
    return ExportOutcome{0, n, kExportFailed};
  }
}

void OtlpHttpExporter::Shutdown(std::chrono::steady_clock::time_point deadline) noexcept {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    s.shutdown = true;
    // Keep the earliest deadline when called more than once.
    const auto ticks = deadline.time_since_epoch().count();
    if (ticks < s.shutdown_deadline.load()) {
      s.shutdown_deadline.store(ticks);
    }
    s.shutting_down.store(true);
  }
  s.cv.notify_all();
  curl_multi_wakeup(s.multi);
}

OtlpExporterStats OtlpHttpExporter::stats() const noexcept {
  const State& s = *state_;
  OtlpExporterStats out;
  out.requests = s.requests.load(std::memory_order_relaxed);
  out.retries = s.retries.load(std::memory_order_relaxed);
  out.spans_exported = s.spans_exported.load(std::memory_order_relaxed);
  out.spans_rejected = s.spans_rejected.load(std::memory_order_relaxed);
  out.spans_failed = s.spans_failed.load(std::memory_order_relaxed);
  out.bytes_sent = s.bytes_sent.load(std::memory_order_relaxed);
  out.batches_skipped = s.batches_skipped.load(std::memory_order_relaxed);
  return out;
}

}  // namespace vigil::telemetry

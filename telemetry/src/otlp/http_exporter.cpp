// OTLP/HTTP span exporter on libcurl.
//
// The requests go through one otlp::HttpPost (http_post.hpp): a kept-alive connection
// whose wait for an answer Shutdown() can interrupt from another thread. Waits between
// attempts are on a condition variable for the same reason. The whole series of attempts
// for one batch lives within options.timeout.
//
// A receiver that is down is tried with one batch at a time: once a batch has used up
// its retries, later batches are dropped at once ("export_failed") and only one attempt
// per backoff period probes whether the receiver is back. Otherwise every batch would
// hold the export thread for the whole timeout, while spans piled up in the processor's
// queue (each a full record, ~1 KiB) and the other exporters (the traces file) waited
// behind it: memory grew for minutes until the queue was full, and the file lost most
// spans to a full queue.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vigil/telemetry/otlp.hpp>
#include <vigil/telemetry/text.hpp>

#include "otlp/gzip.hpp"
#include "otlp/http_post.hpp"
#include "otlp/report.hpp"
#include "otlp/response.hpp"
#include "otlp/retry.hpp"
#include "otlp/url.hpp"

namespace vigil::telemetry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kRejected = "rejected";
constexpr std::string_view kExportFailed = "export_failed";
constexpr std::string_view kShutdown = "shutdown";

std::string Seconds(Clock::duration d) {
  const auto tenths = std::chrono::duration_cast<milliseconds>(d).count() / 100;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}

// The request header lines: the body's type and encoding, then the configured ones.
std::vector<std::string> HeaderLines(const OtlpHttpExporterOptions& options) {
  std::vector<std::string> lines;
  lines.emplace_back(options.protocol == OtlpProtocol::kHttpJson
                         ? "Content-Type: application/json"
                         : "Content-Type: application/x-protobuf");
  if (options.compression == OtlpCompression::kGzip) {
    lines.emplace_back("Content-Encoding: gzip");
  }
  // No "Expect: 100-continue" round trip before large bodies.
  lines.emplace_back("Expect:");
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
    lines.push_back(std::move(line));
  }
  return lines;
}

const std::string& CheckedEndpoint(const std::string& endpoint) {
  if (!otlp::IsHttpUrl(endpoint)) {
    throw std::invalid_argument("OTLP endpoint \"" + endpoint +
                                "\" is not an http:// or https:// URL");
  }
  return endpoint;
}

}  // namespace

struct OtlpHttpExporter::State {
  using Attempt = otlp::HttpPost::Result;

  OtlpHttpExporterOptions options;
  Resource resource;
  InstrumentationScope scope;
  std::string log_endpoint;
  otlp::HttpPost post;

  // Reused between batches: in steady state Export() does not grow the heap.
  std::string body;
  std::string compressed;
  std::optional<otlp::GzipCompressor> gzip;

  std::mutex mu;
  std::condition_variable cv;
  bool shutdown = false;  // guarded by mu; the transport has its own flag for lock-free reads

  std::atomic<std::uint64_t> retries{0}, spans_exported{0}, spans_rejected{0}, spans_failed{0},
      batches_skipped{0};

  // The receiver is taken as down after a batch used up its retries on retryable errors
  // (the exporting thread only reads and writes these): until `next_probe` batches are
  // dropped without a request; then one attempt, no retries, decides.
  unsigned down_probes = 0;  // 0: up; else failed probes so far, for the backoff
  Clock::time_point next_probe{};
  std::uint64_t spans_skipped_unlogged = 0;

  State(OtlpHttpExporterOptions o, Resource r, InstrumentationScope s)
      : options(std::move(o)),
        resource(std::move(r)),
        scope(std::move(s)),
        log_endpoint(otlp::RedactedUrl(CheckedEndpoint(options.endpoint))),
        post(options.endpoint, HeaderLines(options)) {
    if (options.compression == OtlpCompression::kGzip) {
      gzip.emplace();
    }
  }

  void Report(const std::string& message) noexcept { otlp::Report(options.on_error, message); }

  // Sleeps until `until` or Shutdown(); false when woken by Shutdown().
  bool WaitUntil(Clock::time_point until) {
    std::unique_lock lock(mu);
    return !cv.wait_until(lock, until, [&] { return shutdown; });
  }

  Attempt Perform(std::string_view payload, Clock::time_point deadline) {
    return post.Perform(payload, deadline);
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
      return otlp::PrintableExcerpt(a.error);
    }
    std::string text = "HTTP " + std::to_string(a.status);
    std::string message;
    if (otlp::IsJsonContentType(a.content_type) || otlp::IsProtobufContentType(a.content_type)) {
      message = otlp::ParseStatusMessage(post.response_body(), ResponseIsJson(a));
    } else if (a.content_type.starts_with("text/")) {
      message = post.response_body();
    }
    if (message = otlp::PrintableExcerpt(message); !message.empty()) {
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
    auto partial = otlp::ParseExportResponse(post.response_body(), ResponseIsJson(a));
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
      if (std::string msg = otlp::PrintableExcerpt(partial->error_message); !msg.empty()) {
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

      if (a.aborted_by_shutdown || post.shutting_down()) {
        return StoppedByShutdown(n, attempt, a);
      }
      const bool retryable = a.code == CURLE_OK ? otlp::IsRetryableStatus(a.status)
                                                : !otlp::IsPermanentCurlError(a.code);
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
      if (!WaitUntil(now + wait) || post.shutting_down()) {
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
  if (s.post.shutting_down()) {
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
    s.post.BeginShutdown(deadline);
  }
  s.cv.notify_all();
}

OtlpExporterStats OtlpHttpExporter::stats() const noexcept {
  const State& s = *state_;
  OtlpExporterStats out;
  out.requests = s.post.requests();
  out.retries = s.retries.load(std::memory_order_relaxed);
  out.spans_exported = s.spans_exported.load(std::memory_order_relaxed);
  out.spans_rejected = s.spans_rejected.load(std::memory_order_relaxed);
  out.spans_failed = s.spans_failed.load(std::memory_order_relaxed);
  out.bytes_sent = s.post.bytes_sent();
  out.batches_skipped = s.batches_skipped.load(std::memory_order_relaxed);
  return out;
}

}  // namespace vigil::telemetry

// The reporter: captures on the callers' threads, one sender thread for everything else.
//
// A capture checks the switches that make it pointless (disabled, sampled out, the
// category rate limited, shut down), copies what only the caller has (the message, the
// raw stack) into the event and queues it; a full queue drops it. The sender thread takes
// queued events, completes them (type name, symbols, debug images, breadcrumbs, scrubbing,
// the default fingerprint), runs before_send, and sends each as one envelope, with a
// client report riding along when something was discarded. Every flush interval (and on
// Flush or Shutdown) it also sends the session aggregates and the counted failures; a
// client report that found no envelope to ride on for client_report_delay goes alone.
//
// Nothing is retried: an envelope the network lost is counted (network_error), as one
// the receiver refused (send_error, or nothing for a 429, which the receiver counts
// itself). So a receiver that is down or slow costs the sender one timeout per envelope,
// the queue bounds the memory, and request threads never wait.

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/text.hpp>

#include "errors/crash.hpp"
#include "errors/envelope.hpp"
#include "errors/outbox.hpp"
#include "errors/outcomes.hpp"
#include "errors/rate_limits.hpp"
#include "errors/recent_lines.hpp"
#include "errors/scrub.hpp"
#include "errors/session_aggregates.hpp"
#include "errors/symbolize.hpp"
#include "errors/throw_stack.hpp"
#include "log/clock.hpp"
#include "otlp/gzip.hpp"
#include "otlp/http_post.hpp"
#include "vigil_build_info.hpp"

namespace vigil::telemetry {
namespace {

using Clock = std::chrono::steady_clock;
using internal::Category;
using std::chrono::milliseconds;

constexpr std::size_t kMaxMessage = 8192;
constexpr std::size_t kMaxBreadcrumbs = 50;
constexpr std::size_t kMaxFailureKeys = 64;
// The sender looks at pending client reports at least this often.
constexpr milliseconds kMaxIdleWait{5000};
// Warnings about failed sends, at most one per this period (every one with debug).
constexpr std::chrono::seconds kWarnEvery{60};
// Crash reports kept in the outbox while they cannot be sent; beyond, the oldest go.
constexpr std::size_t kMaxOutboxFiles = 16;

std::string Cut(std::string_view s, std::size_t max) {
  return std::string(text::Utf8Prefix(s, max));
}

std::string NewEventId() {
  // A UUID v4 without dashes, as Sentry writes event ids.
  std::array<std::uint8_t, 16> bytes;
  const std::uint64_t a = RandomU64();
  const std::uint64_t b = RandomU64();
  std::memcpy(bytes.data(), &a, 8);
  std::memcpy(bytes.data() + 8, &b, 8);
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x40);
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);
  return TraceId(bytes).ToHex();
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

std::int64_t WallNanos() { return internal::RealtimeNanos(); }

bool HasKey(const StringPairs& pairs, std::string_view key) {
  return std::any_of(pairs.begin(), pairs.end(), [key](const auto& p) { return p.first == key; });
}

// Lines that are not events of their own (ErrorReportingOptions::log_events). The
// reporter's own lines carry sentry.* fields, which keeps them from reporting themselves.
bool Ignored(const LogLineView& line, const std::vector<std::string>& messages) {
  return std::find(messages.begin(), messages.end(), line.msg) != messages.end() ||
         std::any_of(line.fields.begin(), line.fields.end(),
                     [](const Field& f) { return f.key().starts_with("sentry."); });
}

std::vector<std::string> HeaderLines(const ErrorReportingOptions& o) {
  std::string auth = "X-Sentry-Auth: Sentry sentry_version=7, sentry_client=";
  auth += internal::kSdkName;
  auth += '/';
  auth += build::kVersion;
  auth += ", sentry_key=";
  auth += o.dsn->public_key;
  if (!o.dsn->secret_key.empty()) {
    auth += ", sentry_secret=";
    auth += o.dsn->secret_key;
  }
  std::vector<std::string> lines = {"Content-Type: application/x-sentry-envelope",
                                    "Expect:", std::move(auth)};
  if (o.compress) lines.emplace_back("Content-Encoding: gzip");
  return lines;
}

}  // namespace

class ErrorReporter::Impl final : public LogObserver {
 public:
  Impl(const ErrorReportingOptions& options, Logger* log)
      : options_(options),
        log_(log),
        dsn_(options.dsn->ToPublicString()),
        server_name_(HostName()),
        post_(options.dsn->EnvelopeUrl(), HeaderLines(options)) {
    if (options_.compress) gzip_.emplace();
    if (!options_.crash_outbox.empty()) {
      try {
        crash_.emplace(options_.crash_outbox,
                       internal::CrashAttributes{
                           NewEventId(), dsn_, options_.release, options_.environment, server_name_,
                           std::string(build::kVersion), options_.service, options_.version});
      } catch (const std::exception& e) {
        // Errors are still reported; crashes are not.
        Warn("no crash reports", e.what());
      }
    }
    internal::EnableThrowStacks();
    thread_ = std::thread([this] { Run(); });
    pthread_setname_np(thread_.native_handle(), "vigil-errors");  // for top -H, perf, gdb
  }

  ~Impl() override {
    Shutdown(Clock::now());
    internal::DisableThrowStacks();
  }

  // ---- the callers' side

  // Whether a caller's event of `category` is worth building: counts the discard when
  // not. After Shutdown() began nothing is.
  bool Admit(Category category) noexcept {
    return !shutting_down_.load(std::memory_order_relaxed) && Passes(category);
  }

  // Sampling and rate limits.
  bool Passes(Category category) noexcept {
    if (options_.sample_rate < 1.0 &&
        static_cast<double>(RandomU64() >> 11) * 0x1.0p-53 >= options_.sample_rate) {
      outcomes_.Add(DiscardReason::kSampleRate, category);
      return false;
    }
    if (limits_.IsLimited(category, Clock::now())) {
      outcomes_.Add(DiscardReason::kRateLimitBackoff, category);
      return false;
    }
    return true;
  }

  std::string Enqueue(ErrorEvent&& event) {
    if (event.event_id.empty()) event.event_id = NewEventId();
    if (event.time_unix_nano == 0) event.time_unix_nano = WallNanos();
    std::string id = event.event_id;
    auto owned = std::make_unique<ErrorEvent>(std::move(event));
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (stop_ || queue_.size() >= options_.queue_size) {
        outcomes_.Add(DiscardReason::kQueueOverflow, Category::kError);
        return {};
      }
      queue_.push_back(std::move(owned));
      wake = sender_waiting_;
    }
    if (wake) cv_.notify_one();
    return id;
  }

  void OnLine(const LogLineView& line) noexcept override {
    try {
      lines_.Add(line);
      if (!options_.log_events || line.level < *options_.log_events ||
          Ignored(line, options_.log_events_ignored)) {
        return;
      }
      if (!Admit(Category::kError)) return;
      ErrorEvent event;
      event.time_unix_nano = line.time_unix_nano;
      event.level = ErrorLevelOf(line.level);
      event.logger = "vigil.log";
      event.message = Cut(line.msg, kMaxMessage);
      if (line.has_context) {
        event.trace_id = line.trace_id;
        event.span_id = line.span_id;
        event.request_id = std::string(line.request_id);
      }
      for (const Field& f : line.fields) {
        event.extra.emplace_back(std::string(f.key()), internal::FieldText(f));
      }
      event.fingerprint = {"log", event.message};
      Enqueue(std::move(event));
    } catch (...) {
      // Out of memory: this line is not reported.
    }
  }

  void CountFailure(std::string_view source, std::string_view kind, const RequestContext& ctx) {
    std::lock_guard lock(failures_mu_);
    auto key = std::make_pair(std::string(source), std::string(kind));
    auto it = failures_.find(key);
    if (it == failures_.end()) {
      if (failures_.size() >= kMaxFailureKeys) key.first = "other";
      it = failures_.try_emplace(std::move(key)).first;
    }
    Failure& f = it->second;
    ++f.count;
    f.trace_id = ctx.span.trace_id;
    f.span_id = ctx.span.span_id;
    f.request_id = std::string(ctx.request_id.view());
  }

  void RecordRequest(RequestOutcome outcome) noexcept {
    RecordRequestAt(outcome, WallNanos() / 1'000'000'000);
  }
  void RecordRequestAt(RequestOutcome outcome, std::int64_t unix_seconds) noexcept {
    if (options_.sessions) sessions_.Record(outcome, unix_seconds);
  }

  bool Flush(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (!thread_.joinable() || stop_) return false;
    const std::uint64_t ticket = ++flush_requested_;
    cv_.notify_one();
    return done_cv_.wait_until(lock, deadline, [&] { return flush_done_ >= ticket; });
  }

  void Shutdown(Clock::time_point deadline) {
    if (shutting_down_.exchange(true)) {
      if (thread_.joinable()) thread_.join();
      return;
    }
    // Captures from now on are refused; what is queued still goes, within the deadline.
    Flush(deadline);
    post_.BeginShutdown(deadline);
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  ErrorReporterStats Stats() const noexcept {
    ErrorReporterStats s;
    s.events_sent = events_sent_.load(std::memory_order_relaxed);
    s.sessions_sent = sessions_sent_.load(std::memory_order_relaxed);
    s.crashes_sent = crashes_sent_.load(std::memory_order_relaxed);
    s.envelopes = post_.requests();
    for (std::size_t r = 0; r < s.events_dropped.size(); ++r) {
      s.events_dropped[r] = outcomes_.Total(static_cast<DiscardReason>(r));
    }
    return s;
  }

 private:
  struct Failure {
    std::uint64_t count = 0;
    TraceId trace_id;
    SpanId span_id;
    std::string request_id;
  };

  // The event item of an envelope: an event to write, or one written already (a crash
  // report from the outbox).
  struct EventItem {
    std::string_view event_id;
    TraceId trace_id;
    const ErrorEvent* event = nullptr;
    std::string_view payload;
  };

  // What became of an envelope.
  enum class Delivery { kNothing, kSent, kRefused, kLost, kLimited };

  // ---- the sender thread

  void Run() noexcept {
    DeliverOutbox();
    auto next_periodic = Clock::now() + options_.flush_interval;
    // When the pending client report goes alone; max() while nothing is pending.
    auto report_due = Clock::time_point::max();
    for (;;) {
      std::uint64_t ticket;
      bool stopping;
      {
        std::unique_lock lock(mu_);
        auto until = std::min({next_periodic, report_due, Clock::now() + kMaxIdleWait});
        sender_waiting_ = true;
        cv_.wait_until(lock, until,
                       [&] { return !queue_.empty() || stop_ || flush_requested_ != flush_done_; });
        sender_waiting_ = false;
        ticket = flush_requested_;
        stopping = stop_;
      }
      // One event at a time, so that the queue's bound is the memory's: the queue plus
      // the one being sent.
      while (std::unique_ptr<ErrorEvent> event = Pop()) Process(*event);

      const auto now = Clock::now();
      const bool flushing = ticket != flush_done_ || stopping;
      if (flushing || now >= next_periodic) {
        SendFailures();
        SendSessions(/*all=*/flushing);
        next_periodic = now + options_.flush_interval;
      }
      if (outcomes_.HasPending()) {
        if (report_due == Clock::time_point::max()) report_due = now + options_.client_report_delay;
        if (flushing || now >= report_due) SendEnvelope({}, {});
      }
      if (!outcomes_.HasPending()) report_due = Clock::time_point::max();
      if (ticket != flush_done_) {
        std::lock_guard lock(mu_);
        flush_done_ = ticket;
        done_cv_.notify_all();
      }
      if (stopping) {
        std::lock_guard lock(mu_);
        if (queue_.empty()) return;
      }
    }
  }

  std::unique_ptr<ErrorEvent> Pop() {
    std::lock_guard lock(mu_);
    if (queue_.empty()) return nullptr;
    std::unique_ptr<ErrorEvent> event = std::move(queue_.front());
    queue_.pop_front();
    return event;
  }

  void Process(ErrorEvent& event) noexcept {
    try {
      Complete(event);
      if (options_.before_send && !options_.before_send(event)) {
        outcomes_.Add(DiscardReason::kBeforeSend, Category::kError);
        Debug("error report dropped by before_send", event.event_id);
        return;
      }
      if (limits_.IsLimited(Category::kError, Clock::now())) {
        outcomes_.Add(DiscardReason::kRateLimitBackoff, Category::kError);
        return;
      }
      SendEnvelope(EventItem{event.event_id, event.trace_id, &event, {}}, {});
    } catch (const std::exception& e) {
      outcomes_.Add(DiscardReason::kSendError, Category::kError);
      Warn("error report not sent", e.what());
    }
  }

  // What the sender adds to a captured event before anyone sees it.
  void Complete(ErrorEvent& event) {
    if (event.exception) {
      ExceptionInfo& ex = *event.exception;
      if (ex.type.empty() && event.exception_type != nullptr) {
        ex.type = internal::Demangle(event.exception_type->name());
      }
      if (ex.frames.empty() && event.raw_stack.size > 0) {
        ex.frames = internal::Symbolizer::Instance().Frames(event.raw_stack);
        ex.frames_at_throw = event.raw_stack.at_throw;
      }
      if (event.images.empty()) event.images = internal::Symbolizer::Instance().Images();
    }
    for (const auto& [key, value] :
         {std::pair<std::string_view, std::string_view>{"service", options_.service},
          {"version", options_.version},
          {"env", options_.environment}}) {
      if (!value.empty() && !HasKey(event.tags, key)) event.SetTag(key, value);
    }
    if (!event.request_id.empty() && !HasKey(event.tags, "request_id")) {
      event.SetTag("request_id", event.request_id);
    }
    AddLogBreadcrumbs(event);
    Scrub(event);
    if (event.fingerprint.empty()) event.fingerprint = DefaultFingerprint(event);
  }

  void AddLogBreadcrumbs(ErrorEvent& event) {
    if (log_ == nullptr || (event.request_id.empty() && !event.trace_id.IsValid())) return;
    // Lines logged before the capture may still be in the logger's queues.
    log_->Flush();
    auto crumbs =
        lines_.Of(event.request_id, event.trace_id, event.time_unix_nano, kMaxBreadcrumbs);
    // The lines a log event came from are the event itself.
    if (event.logger == "vigil.log" && !crumbs.empty() && crumbs.back().message == event.message) {
      crumbs.pop_back();
    }
    event.breadcrumbs.insert(event.breadcrumbs.begin(), std::make_move_iterator(crumbs.begin()),
                             std::make_move_iterator(crumbs.end()));
    for (Breadcrumb& b : event.breadcrumbs) {
      if (b.time_unix_nano == 0) b.time_unix_nano = event.time_unix_nano;
    }
  }

  // Whatever the capture or a handler put in, secrets never leave.
  void Scrub(ErrorEvent& event) const {
    const auto filter = [this](StringPairs& pairs) {
      for (auto& [key, value] : pairs) {
        if (internal::IsSensitiveName(key, options_.sensitive_headers)) {
          value = std::string(internal::kFiltered);
        }
      }
    };
    if (event.request) {
      filter(event.request->headers);
      event.request->query_string = internal::FilterQuery(event.request->query_string);
      // A query left in the URL is filtered the same way.
      if (const auto q = event.request->url.find('?'); q != std::string::npos) {
        event.request->url = event.request->url.substr(0, q + 1) +
                             internal::FilterQuery(event.request->url.substr(q + 1));
      }
    }
    filter(event.extra);
    filter(event.tags);
    for (auto& [name, values] : event.contexts) filter(values);
    for (Breadcrumb& b : event.breadcrumbs) filter(b.data);
  }

  static std::vector<std::string> DefaultFingerprint(const ErrorEvent& event) {
    if (!event.exception) return {event.logger.empty() ? "message" : event.logger, event.message};
    // One failure: the same type thrown at the same place of the same route.
    std::vector<std::string> parts = {event.exception->type};
    const auto& frames = event.exception->frames;
    const auto thrower =
        std::find_if(frames.begin(), frames.end(), [](const StackFrame& f) { return f.in_app; });
    if (thrower != frames.end()) parts.push_back(thrower->function);
    for (const auto& [key, value] : event.tags) {
      if (key == "http.route") parts.push_back(value);
    }
    return parts;
  }

  void SendFailures() {
    std::map<std::pair<std::string, std::string>, Failure> failures;
    {
      std::lock_guard lock(failures_mu_);
      failures.swap(failures_);
    }
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options_.flush_interval);
    for (auto& [key, f] : failures) {
      if (!Passes(Category::kError)) continue;
      const auto& [source, kind] = key;
      ErrorEvent event;
      event.logger = "vigil.failures";
      event.message = kind + " from " + source + ": " + std::to_string(f.count) + " in " +
                      std::to_string(seconds.count()) + " s";
      event.trace_id = f.trace_id;
      event.span_id = f.span_id;
      event.request_id = std::move(f.request_id);
      event.SetTag("failure.source", source);
      event.SetTag("failure.kind", kind);
      event.extra = {{"count", std::to_string(f.count)},
                     {"interval_seconds", std::to_string(seconds.count())}};
      event.fingerprint = {"failures", source, kind};
      event.event_id = NewEventId();
      event.time_unix_nano = WallNanos();
      Process(event);
    }
  }

  // The crash reports earlier runs left: each sent once the receiver has it (or refused
  // it: it would refuse it again); kept while the network or a rate limit stands in the
  // way, up to kMaxOutboxFiles.
  void DeliverOutbox() noexcept {
    if (options_.crash_outbox.empty()) return;
    try {
      std::vector<std::filesystem::path> files = internal::OutboxFiles(options_.crash_outbox);
      std::string own;
      if (crash_ && crash_->installed()) own = crash_->path();
      std::erase(files, std::filesystem::path(own));
      while (files.size() > kMaxOutboxFiles) {
        std::filesystem::remove(files.front());
        files.erase(files.begin());
        outcomes_.Add(DiscardReason::kQueueOverflow, Category::kError);
      }
      for (const std::filesystem::path& file : files) {
        // Held back, not dropped: the next start tries again.
        if (limits_.IsLimited(Category::kError, Clock::now())) return;
        std::string error;
        const auto crash = ReadOutboxFile(file, &error);
        if (!crash) {
          Warn("crash report in the outbox not readable, removed", error + ": " + file.string());
          outcomes_.Add(DiscardReason::kSendError, Category::kError);
          std::filesystem::remove(file);
          continue;
        }
        const Delivery delivery =
            SendEnvelope(EventItem{crash->event_id, crash->trace_id, nullptr, crash->payload}, {});
        if (delivery == Delivery::kLost || delivery == Delivery::kLimited) return;
        if (delivery == Delivery::kSent) crashes_sent_.fetch_add(1, std::memory_order_relaxed);
        // A crash while serving a request is that request's session, crashed (release
        // health), in the minute it happened: when its file was written.
        if (crash->trace_id.IsValid()) {
          const auto written = std::chrono::file_clock::to_sys(std::filesystem::last_write_time(file));
          RecordRequestAt(RequestOutcome::kCrashed,
                          std::chrono::duration_cast<std::chrono::seconds>(
                              written.time_since_epoch()).count());
        }
        std::filesystem::remove(file);
      }
    } catch (const std::exception& e) {
      Warn("crash outbox not read", e.what());
    }
  }

  static std::optional<internal::OutboxEvent> ReadOutboxFile(const std::filesystem::path& file,
                                                             std::string* error) {
    if (std::filesystem::file_size(file) > internal::kMaxOutboxFile) {
      *error = "larger than a crash report";
      return std::nullopt;
    }
    std::ifstream in(file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return internal::ReadCrashEnvelope(text, internal::Symbolizer::Instance(), error);
  }

  void SendSessions(bool all) {
    if (!options_.sessions) return;
    auto minutes = sessions_.Take(WallNanos() / 1'000'000'000, all);
    if (minutes.empty()) return;
    if (limits_.IsLimited(Category::kSession, Clock::now())) {
      outcomes_.Add(DiscardReason::kRateLimitBackoff, Category::kSession);
      return;
    }
    SendEnvelope({}, minutes);
  }

  // One envelope: the event (if any), the session aggregates (if any), and the client
  // report when something was discarded since the last one.
  Delivery SendEnvelope(const EventItem& item,
                        std::span<const internal::SessionAggregates::Minute> sessions) noexcept {
    const bool has_event = !item.event_id.empty();
    std::vector<internal::Outcomes::Pending> report;
    try {
      report = outcomes_.TakePending();
      if (!has_event && sessions.empty() && report.empty()) return Delivery::kNothing;
      body_.clear();
      internal::JsonBuffer out(body_);
      internal::EnvelopeHeader header;
      header.dsn = dsn_;
      header.sent_at_unix_nano = WallNanos();
      header.sdk_version = build::kVersion;
      if (has_event) {
        header.event_id = item.event_id;
        header.trace_id = item.trace_id;
        header.public_key = options_.dsn->public_key;
        header.release = options_.release;
        header.environment = options_.environment;
      }
      internal::EnvelopeWriter envelope(out, header);
      if (item.event != nullptr) {
        internal::WriteEvent(
            envelope.BeginItem("event"), *item.event,
            {options_.release, options_.environment, server_name_, build::kVersion});
        envelope.EndItem();
      } else if (has_event) {
        envelope.BeginItem("event").Raw(item.payload);
        envelope.EndItem();
      }
      if (!sessions.empty()) {
        internal::WriteSessions(envelope.BeginItem("sessions"), sessions, options_.release,
                                options_.environment);
        envelope.EndItem();
      }
      if (!report.empty()) {
        internal::WriteClientReport(envelope.BeginItem("client_report"), WallNanos(), report);
        envelope.EndItem();
      }
      std::string_view payload = body_;
      if (gzip_) {
        gzip_->Compress(body_, compressed_);
        payload = compressed_;
      }
      return Deliver(payload, item.event_id, sessions.size(), report);
    } catch (const std::exception& e) {
      if (has_event) outcomes_.Add(DiscardReason::kSendError, Category::kError);
      outcomes_.Restore(report);
      Warn("error report not sent", e.what());
      return Delivery::kRefused;
    }
  }

  Delivery Deliver(std::string_view payload, std::string_view id, std::size_t session_items,
                   const std::vector<internal::Outcomes::Pending>& report) {
    const auto result = post_.Perform(payload, Clock::now() + options_.timeout);
    const auto lose = [&](DiscardReason reason) {
      if (!id.empty()) outcomes_.Add(reason, Category::kError);
      if (session_items != 0) outcomes_.Add(reason, Category::kSession, session_items);
    };
    if (result.code != CURLE_OK) {
      lose(DiscardReason::kNetworkError);
      outcomes_.Restore(report);  // the report itself may go with the next envelope
      Warn("error report not sent", otlp::PrintableExcerpt(result.error), id);
      return Delivery::kLost;
    }
    const auto rate_limits = post_.ResponseHeader("X-Sentry-Rate-Limits");
    limits_.Update(result.status, rate_limits, result.retry_after, Clock::now());
    if (result.status >= 200 && result.status < 300) {
      if (!id.empty()) events_sent_.fetch_add(1, std::memory_order_relaxed);
      sessions_sent_.fetch_add(session_items, std::memory_order_relaxed);
      Debug("error report sent", id);
      return Delivery::kSent;
    }
    if (result.status == 429) {
      // The receiver counts what it refused; the limits now hold back what follows.
      Warn("error reports rate limited by the receiver",
           rate_limits ? otlp::PrintableExcerpt(*rate_limits) : std::string("Retry-After"), id);
      return Delivery::kLimited;
    }
    lose(DiscardReason::kSendError);
    Warn("error report refused by the receiver",
         "HTTP " + std::to_string(result.status) + " " +
             otlp::PrintableExcerpt(post_.response_body()),
         id);
    return Delivery::kRefused;
  }

  void Warn(std::string_view msg, std::string_view detail, std::string_view event_id = {}) {
    if (log_ == nullptr) return;
    const auto now = Clock::now();
    if (!options_.debug && now < next_warn_) return;
    next_warn_ = now + kWarnEvery;
    log_->Warn(msg, {{"sentry.detail", detail}, {"sentry.event_id", event_id}});
  }

  void Debug(std::string_view msg, std::string_view event_id) {
    if (log_ != nullptr && options_.debug) log_->Info(msg, {"sentry.event_id", event_id});
  }

  const ErrorReportingOptions& options_;
  Logger* const log_;
  const std::string dsn_;
  const std::string server_name_;
  otlp::HttpPost post_;
  std::optional<otlp::GzipCompressor> gzip_;
  std::string body_;
  std::string compressed_;
  Clock::time_point next_warn_{};

  internal::RateLimits limits_;
  internal::Outcomes outcomes_;
  internal::SessionAggregates sessions_;
  internal::RecentLines lines_;
  std::atomic<std::uint64_t> events_sent_{0};
  std::atomic<std::uint64_t> sessions_sent_{0};
  std::atomic<std::uint64_t> crashes_sent_{0};
  std::optional<internal::CrashHandler> crash_;

  std::mutex failures_mu_;
  std::map<std::pair<std::string, std::string>, Failure> failures_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::deque<std::unique_ptr<ErrorEvent>> queue_;
  bool sender_waiting_ = false;
  bool stop_ = false;
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_done_ = 0;
  std::atomic<bool> shutting_down_{false};
  std::thread thread_;
};

ErrorReporter::ErrorReporter(ErrorReportingOptions options, Logger* log)
    : options_(std::move(options)) {
  if (!options_.dsn) return;
  if (options_.release.empty()) options_.release = options_.service + "@" + options_.version;
  impl_ = std::make_unique<Impl>(options_, log);
  enabled_ = true;
}

ErrorReporter::~ErrorReporter() = default;

std::string ErrorReporter::CaptureException(const std::exception& e, ErrorEvent event) {
  if (!enabled_ || !impl_->Admit(Category::kError)) return {};
  const std::type_info& type = typeid(e);
  event.exception_type = &type;
  if (!internal::TakeThrowStack(dynamic_cast<const void*>(&e), &type, event.raw_stack)) {
    // Thrown on another thread (or before the hook was on): the caller's stack will do.
    internal::CaptureStack(event.raw_stack, 1);
  }
  if (!event.exception) event.exception.emplace();
  event.exception->value = Cut(e.what(), kMaxMessage);
  return impl_->Enqueue(std::move(event));
}

std::string ErrorReporter::CaptureEvent(ErrorEvent event) {
  if (!enabled_ || !impl_->Admit(Category::kError)) return {};
  return impl_->Enqueue(std::move(event));
}

void ErrorReporter::CountFailure(std::string_view source, std::string_view kind,
                                 const RequestContext& ctx) {
  if (enabled_) impl_->CountFailure(source, kind, ctx);
}

void ErrorReporter::RecordRequest(RequestOutcome outcome) noexcept {
  if (enabled_) impl_->RecordRequest(outcome);
}

LogObserver* ErrorReporter::log_observer() noexcept { return impl_.get(); }

bool ErrorReporter::Flush(std::chrono::steady_clock::time_point deadline) noexcept {
  try {
    return !enabled_ || impl_->Flush(deadline);
  } catch (...) {
    return false;
  }
}

void ErrorReporter::Shutdown(std::chrono::steady_clock::time_point deadline) noexcept {
  try {
    if (enabled_) impl_->Shutdown(deadline);
  } catch (...) {
    // A failing join or lock at shutdown leaves nothing else to do.
  }
}

ErrorReporterStats ErrorReporter::stats() const noexcept {
  return enabled_ ? impl_->Stats() : ErrorReporterStats{};
}

}  // namespace vigil::telemetry

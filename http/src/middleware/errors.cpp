#include <boost/asio/error.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <typeinfo>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/http/server.hpp>

namespace vigil::http {

namespace tel = vigil::telemetry;

namespace {

// "std::out_of_range" rather than "St12out_of_range".
std::string TypeName(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

constexpr std::string_view kInternalError =
    "The server failed to handle the request; the error is logged under this request_id.";

// The exception the admin test endpoint raises: its own type, so that Sentry shows it as
// an issue of its own.
class SentryTestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The caller's span, from the traceparent the tracing middleware read (one field line).
tel::SpanId ParentSpan(const Exchange& ex) {
  if (ex.header_count("traceparent") != 1) return {};
  const auto parent = tel::ParseTraceparent(ex.header("traceparent"));
  if (!parent || parent.value->trace_id != ex.context().span.trace_id) return {};
  return parent.value->span_id;
}

}  // namespace

tel::ErrorEvent ErrorEventOf(const Exchange& ex, const tel::ErrorReporter& reporter) {
  tel::ErrorEvent event = tel::ErrorEvent::ForRequest(ex.context());
  event.parent_span_id = ParentSpan(ex);
  event.logger = "vigil.http";
  event.SetTag("http.route", ex.route().empty() ? std::string_view("unmatched") : ex.route());
  if (ex.status() != 0) event.SetTag("http.response.status_code", std::to_string(ex.status()));
  tel::RequestInfo& request = event.request.emplace();
  request.method = std::string(ex.method());
  request.SetUrl(ex.secure() ? "https" : "http", ex.header("host"), ex.target());
  const auto& sensitive = reporter.options().sensitive_headers;
  for (const auto& field : ex.request()) {
    request.AddHeader(field.name_string(), field.value(), sensitive);
  }
  if (const tel::ErrorScope* scope = ex.existing_error_scope()) scope->ApplyTo(event);
  return event;
}

std::string ErrorMiddleware::Report(Exchange& ex, const std::exception* error) noexcept {
  try {
    if (reporter_ == nullptr || !reporter_->enabled()) return {};
    tel::ErrorEvent event = ErrorEventOf(ex, *reporter_);
    if (event.user_id.empty() && user_) event.user_id = user_(ex);
    tel::ExceptionInfo& info = event.exception.emplace();
    info.mechanism = "vigil.http";
    info.handled = false;
    if (error != nullptr) return reporter_->CaptureException(*error, std::move(event));
    // Not a std::exception: its type is all there is.
    const std::type_info* type = abi::__cxa_current_exception_type();
    info.type = type != nullptr ? TypeName(*type) : "unknown";
    return reporter_->CaptureEvent(std::move(event));
  } catch (...) {
    return {};  // the user lookup or an allocation failed: no report
  }
}

void ErrorMiddleware::LogUnhandled(Exchange& ex, std::string_view type, std::string_view message,
                                   std::string_view event_id) noexcept {
  // The status keeps the line from being reported again as a log event; the event id
  // leads from the line to the report.
  tel::Field fields[] = {{"error.type", type},
                         {"error.message", message},
                         {"http.response.status_code", ex.status()},
                         {"sentry.event_id", event_id}};
  std::size_t n = std::size(fields) - (event_id.empty() ? 1 : 0);
  if (message.empty()) {
    fields[1] = fields[2];
    fields[2] = fields[3];
    --n;
  }
  log_.LogFields(tel::LogLevel::kError, ex.context(), "unhandled exception", std::span(fields, n));
}

void ErrorMiddleware::Before(Exchange& ex) {
  if (reporter_ != nullptr && reporter_->enabled()) tel::SetCrashRequest(ex.context());
}

void ErrorMiddleware::After(Exchange& ex) noexcept {
  if (reporter_ != nullptr) tel::ClearCrashRequest();
  tel::RequestOutcome outcome = tel::RequestOutcome::kOk;
  try {
    if (const std::exception_ptr error = ex.error()) {
      try {
        std::rethrow_exception(error);
      } catch (const HttpError& e) {
        if (!e.error_type().empty()) ex.set_error_type(e.error_type());
        if (!ex.head_sent()) ex.RespondProblem(e.status(), e.what(), e.type());
        if (e.status() >= 500) {
          if (ex.error_type().empty()) ex.set_error_type(ReasonPhrase(e.status()));
          log_.Error(ex.context(), "request failed",
                     {{"http.response.status_code", e.status()}, {"error.message", e.what()}});
        }
      } catch (const std::exception& e) {
        const auto* system = dynamic_cast<const boost::system::system_error*>(&e);
        if (system != nullptr && system->code() == boost::asio::error::operation_aborted) {
          // Cancelled at the shutdown deadline: the request was cut, not failed.
          ex.set_error_type("shutdown");
          log_.Warn(ex.context(), "request cut off by shutdown");
          if (!ex.head_sent()) {
            ex.RespondProblem(503, "The server is shutting down; retry the request.");
          }
          ex.CloseAfterResponse();
          if (reporter_ != nullptr) reporter_->RecordRequest(tel::RequestOutcome::kErrored);
          return;
        }
        if (ex.error_type().empty()) ex.set_error_type("exception");
        outcome = tel::RequestOutcome::kCrashed;
        if (!ex.head_sent()) {
          ex.RespondProblem(500, kInternalError);
        } else {
          ex.CloseAfterResponse();
        }
        const std::string type = TypeName(typeid(e));
        LogUnhandled(ex, type, e.what(), Report(ex, &e));
        ex.span().AddEvent("exception", {{"exception.type", std::string_view(type)},
                                         {"exception.message", std::string_view(e.what())}});
      } catch (...) {
        if (ex.error_type().empty()) ex.set_error_type("exception");
        outcome = tel::RequestOutcome::kCrashed;
        if (!ex.head_sent()) {
          ex.RespondProblem(500, kInternalError);
        } else {
          ex.CloseAfterResponse();
        }
        LogUnhandled(ex, "unknown", {}, Report(ex, nullptr));
      }
    } else if (!ex.head_sent() && ex.responded() && ex.status() >= 400 &&
               ex.response().body().empty()) {
      // An error status answered without a body gets the problem document it deserves.
      ex.RespondProblem(ex.status(), ReasonPhrase(ex.status()));
    }
  } catch (...) {
    // Formatting failed (out of memory): the server's own fallback answers 500.
  }
  if (reporter_ != nullptr) {
    if (outcome == tel::RequestOutcome::kOk && ex.status() >= 500) {
      outcome = tel::RequestOutcome::kErrored;
    }
    reporter_->RecordRequest(outcome);
  }
}

Handler SentryTestHandler(tel::Telemetry& telemetry) {
  return [&telemetry](Exchange& ex) -> asio::awaitable<void> {
    tel::ErrorReporter& reporter = telemetry.errors();
    if (!reporter.enabled()) {
      ex.RespondProblem(503, "Error reporting is off: SENTRY_DSN is not set.");
      co_return;
    }
    // The admin listener does no tracing: a traceparent sent with the call is honoured,
    // so that the test event can be found by a trace id of the caller's choosing.
    const auto parent = tel::ParseTraceparent(ex.header("traceparent"));
    ex.context().span = parent ? tel::RequestContext::ChildOf(*parent.value).span
                               : tel::RequestContext::NewRoot().span;
    std::string event_id;
    try {
      throw SentryTestError("This is a test error from " + telemetry.service().name +
                            " (POST /debug/sentry-test): error reporting works.");
    } catch (const SentryTestError& e) {
      tel::ErrorEvent event = ErrorEventOf(ex, reporter);
      event.logger = "vigil.test";
      event.parent_span_id = parent ? parent.value->span_id : tel::SpanId();
      event.exception.emplace().mechanism = "vigil.test";
      event_id = reporter.CaptureException(e, std::move(event));
    }
    if (event_id.empty()) {
      ex.RespondProblem(503, "The test error was not queued (rate limited or queue full).");
      co_return;
    }
    telemetry.log().Info(ex.context(), "sentry test error reported", {"sentry.event_id", event_id});
    ex.RespondJson(202, boost::json::serialize(boost::json::object{{"event_id", event_id}}));
    co_return;
  };
}

}  // namespace vigil::http

#include <boost/system/system_error.hpp>

#include <typeinfo>
#include <vigil/http/middleware/errors.hpp>

namespace vigil::http {

namespace tel = vigil::telemetry;

void ErrorMiddleware::After(Exchange& ex) noexcept {
  try {
    if (const std::exception_ptr error = ex.error()) {
      try {
        std::rethrow_exception(error);
      } catch (const HttpError& e) {
        if (!ex.head_sent()) ex.RespondProblem(e.status(), e.what(), e.type());
        if (e.status() >= 500) {
          if (ex.error_type().empty()) ex.set_error_type(ReasonPhrase(e.status()));
          log_.Error(ex.context(), "request failed",
                     {{"http.response.status_code", e.status()}, {"error.message", e.what()}});
        }
      } catch (const std::exception& e) {
        if (ex.error_type().empty()) ex.set_error_type("exception");
        log_.Error(ex.context(), "unhandled exception",
                   {{"error.type", typeid(e).name()}, {"error.message", e.what()}});
        ex.span().AddEvent("exception", {{"exception.type", std::string_view(typeid(e).name())},
                                         {"exception.message", std::string_view(e.what())}});
        if (!ex.head_sent()) {
          ex.RespondProblem(500, "The server failed to handle the request; the error is logged "
                                 "under this request_id.");
        } else {
          ex.CloseAfterResponse();
        }
      } catch (...) {
        if (ex.error_type().empty()) ex.set_error_type("exception");
        log_.Error(ex.context(), "unhandled exception", {"error.type", "unknown"});
        if (!ex.head_sent()) {
          ex.RespondProblem(500, "The server failed to handle the request; the error is logged "
                                 "under this request_id.");
        } else {
          ex.CloseAfterResponse();
        }
      }
      return;
    }
    // An error status answered without a body gets the problem document it deserves.
    if (!ex.head_sent() && ex.responded() && ex.status() >= 400 && ex.response().body().empty()) {
      ex.RespondProblem(ex.status(), ReasonPhrase(ex.status()));
    }
  } catch (...) {
    // Formatting failed (out of memory): the server's own fallback answers 500.
  }
}

}  // namespace vigil::http

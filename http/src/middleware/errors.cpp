#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>
#include <vigil/http/middleware/errors.hpp>

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

}  // namespace

void ErrorMiddleware::After(Exchange& ex) noexcept {
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
          return;
        }
        if (ex.error_type().empty()) ex.set_error_type("exception");
        const std::string type = TypeName(typeid(e));
        log_.Error(ex.context(), "unhandled exception",
                   {{"error.type", type}, {"error.message", e.what()}});
        ex.span().AddEvent("exception", {{"exception.type", std::string_view(type)},
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

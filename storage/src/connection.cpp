#include "connection.hpp"

#include <chrono>
#include <exception>

namespace vigil::storage {

namespace tel = vigil::telemetry;

Result Connection::Query(const Statement& statement, std::span<const Param> params) {
  tel::Span span = tracer_.StartSpan(statement.span_name(), parent_, tel::SpanKind::kClient);
  if (span.IsRecording()) {
    span.SetAttribute("db.system.name", system_name());
    span.SetAttribute("db.operation.name", statement.operation());
    if (!statement.table().empty()) span.SetAttribute("db.collection.name", statement.table());
    span.SetAttribute("db.query.text", std::string_view(statement.sql()));
  }
  const auto start = std::chrono::steady_clock::now();
  auto observe = [&] {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The label set is bounded: statements are static and their operations few.
    try {
      instruments_.duration->WithLabels({system_name(), statement.operation()})
          .Observe(seconds, span.context());
    } catch (...) {
    }
  };
  try {
    Result result = Execute(statement, params);
    observe();
    return result;
  } catch (const std::exception& e) {
    observe();
    const std::string_view code = last_error_code_;
    if (!code.empty()) span.SetAttribute("db.response.status_code", code);
    span.SetAttribute("error.type", code.empty() ? std::string_view("_OTHER") : code);
    span.SetStatus(tel::StatusCode::kError, e.what());
    throw;
  }
}

}  // namespace vigil::storage

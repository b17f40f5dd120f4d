#include <vigil/http/middleware/request_id.hpp>

namespace vigil::http {

void RequestIdMiddleware::Before(Exchange& ex) {
  auto& id = ex.context().request_id;
  if (auto sent = telemetry::RequestId::FromString(ex.header("x-request-id"))) {
    id = *sent;
  } else {
    id = telemetry::RequestId::Generate();
  }
  const auto v = id.view();
  ex.response().set("X-Request-Id", boost::beast::string_view(v.data(), v.size()));
}

}  // namespace vigil::http

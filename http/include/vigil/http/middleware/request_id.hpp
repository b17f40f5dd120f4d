// Request ids: every request gets one and every response echoes it.
//
// A well-formed `X-Request-Id` from the client (1 to 64 of [A-Za-z0-9._:-]) is kept, so
// a caller's id follows the request through every hop; anything else is replaced by a
// new ULID. The id goes into the exchange's context (log lines carry it) and into the
// response's `X-Request-Id`.
//
//   pipeline.Add<http::RequestIdMiddleware>();
//
// Thread-safety: stateless; safe from every worker.
#pragma once

#include <vigil/http/middleware.hpp>

namespace vigil::http {

class RequestIdMiddleware final : public Middleware {
 public:
  void Before(Exchange& exchange) override;
  void After(Exchange&) noexcept override {}
};

}  // namespace vigil::http

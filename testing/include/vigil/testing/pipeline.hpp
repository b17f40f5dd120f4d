// Test support: the middleware every Vigil program's main() puts in front of its public
// routes, in their order: request id, tracing, RED metrics, the access log, compression
// (not in the gateway, which streams bodies), errors. The mains name theirs top to bottom
// (services/*/main.cpp); a test that serves as a program does takes this list instead of
// assembling a part of it.
//
//   RunningServer gateway(make_proxy, test_support::PlatformPipeline(telemetry, false), {}, 1);
//
// Thread-safety: build on one thread; the pipeline is then the server's.
#pragma once

#include <vigil/http/middleware.hpp>
#include <vigil/telemetry/telemetry.hpp>

namespace vigil::test_support {

// The platform's middleware on `telemetry`, with the settings a program starts with by
// default (access log on; with `compress`, compression for clients that ask, at the
// default threshold). A service with a database adds service::DatabaseOutageMiddleware
// after them.
http::Pipeline PlatformPipeline(telemetry::Telemetry& telemetry, bool compress = true);

}  // namespace vigil::test_support

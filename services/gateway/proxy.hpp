// The gateway's proxy: forwards a request to its route's upstream and streams the
// answer back, observing both hops.
//
// For each configured prefix it adds a streamed route "<prefix>/*" whose handler
//   - identifies the caller (auth.hpp) when the gateway authenticates;
//   - rewrites the target (strip_prefix, the path of the upstream URL);
//   - applies the gateway's header policy: X-Forwarded-For, X-Forwarded-Proto,
//     X-Vigil-Identity and X-Vigil-Client are the gateway's alone (a client's own are
//     dropped); X-Vigil-Client vouches for the client address (the peer, or what a
//     trusted proxy forwarded), signed, so that services can limit by it;
//   - and leaves the rest to http::Client::Forward: hop-by-hop headers dropped,
//     X-Request-Id and the W3C trace context of a CLIENT span (child of the request's
//     server span), small bodies sent in one write and large or chunked ones streamed
//     both ways (a 1 GiB upload never sits in memory), pooled keep-alive connections with
//     one retry on a fresh connection when a reused one turns out closed, and 502
//     (refused, reset, invalid response) or 504 (no response within the route's timeout)
//     as problem+json, counted and traced.
//
//   gateway::Proxy proxy(runtime, config, telemetry, http::PoolOptions::FromEnv(),
//                        host.identity(), limiter);
//   proxy.AddRoutes(routes);
//
// Thread-safety: AddRoutes at start-up; the handlers run on every worker concurrently.
#pragma once

#include <memory>
#include <optional>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/http/server.hpp>
#include <vigil/ratelimit/limiter.hpp>
#include <vigil/service/identity.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "config.hpp"

namespace vigil::gateway {

class Authenticator;

namespace asio = boost::asio;

class Proxy {
 public:
  // `identity` signs X-Vigil-Client; `limiter`'s limits name the trusted proxies. `auth`,
  // when given, identifies the caller of every request (see auth.hpp) before it is
  // forwarded. All three must outlive the proxy.
  Proxy(http::Runtime& runtime, const GatewayConfig& config, telemetry::Telemetry& telemetry,
        http::PoolOptions pool, const service::IdentitySigner& identity,
        const ratelimit::Limiter& limiter, Authenticator* auth = nullptr);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  void AddRoutes(http::Routes& routes);

  // One route: its configuration, its upstream, and the client that forwards to it.
  struct Target {
    Target(http::Runtime& runtime, const RouteConfig& route, const http::PoolOptions& pool,
           telemetry::Telemetry& telemetry, http::ClientInstruments& instruments,
           const http::SecurityHeadersOptions& headers);
    RouteConfig config;
    http::Upstream upstream;
    http::Client client;
    // The route's own security headers (its page policy, or the upstream's values kept);
    // none: the pipeline's.
    std::optional<http::SecurityHeaderFields> fields;
  };

 private:
  asio::awaitable<void> Forward(http::Exchange& ex, Target& target);

  http::ClientInstruments instruments_;
  // Upstream 5xx answers and failures, counted per upstream and kind: one error report
  // each per interval, never one per request.
  telemetry::ErrorReporter& errors_;
  const service::IdentitySigner& identity_;
  const ratelimit::Limiter& limiter_;
  Authenticator* auth_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace vigil::gateway

// The gateway's proxy: forwards a request to its route's upstream and streams the
// answer back, observing both hops.
//
// For each configured prefix it adds a streamed route "<prefix>/*" whose handler
//   - rewrites the target (strip_prefix), drops hop-by-hop headers, sets
//     X-Forwarded-For / X-Forwarded-Proto, X-Request-Id and the W3C trace context of a
//     CLIENT span that is the child of the request's server span;
//   - sends small bodies in one write and streams large or chunked ones (a 1 GiB
//     upload never sits in memory), and the same for responses;
//   - reuses pooled keep-alive connections, retrying once on a fresh connection when a
//     reused one turns out closed before any response byte (idempotent methods only);
//   - answers 502 (refused, reset, invalid response) or 504 (no response within the
//     route's timeout) as problem+json, counted and traced.
//
//   gateway::Proxy proxy(runtime, config, telemetry, http::PoolOptions::FromEnv());
//   proxy.AddRoutes(routes);
//
// Thread-safety: AddRoutes at start-up; the handlers run on every worker concurrently.
#pragma once

#include <memory>
#include <vector>
#include <vigil/http/client.hpp>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "config.hpp"

namespace vigil::gateway {

class Authenticator;

namespace asio = boost::asio;

class Proxy {
 public:
  // `auth`, when given, identifies the caller of every request (see auth.hpp) before it
  // is forwarded; it must outlive the proxy.
  Proxy(http::Runtime& runtime, const GatewayConfig& config, telemetry::Telemetry& telemetry,
        http::PoolOptions pool, Authenticator* auth = nullptr);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  void AddRoutes(http::Routes& routes);

  struct Target {
    RouteConfig config;
    std::unique_ptr<http::Upstream> upstream;
  };

 private:
  asio::awaitable<void> Forward(http::Exchange& ex, const Target& target);

  telemetry::Tracer tracer_;
  http::ClientInstruments instruments_;
  Authenticator* auth_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace vigil::gateway

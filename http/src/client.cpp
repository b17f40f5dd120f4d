#include <boost/asio/ip/address_v6.hpp>
#include <boost/beast/http/parser.hpp>

#include <charconv>
#include <optional>
#include <stdexcept>
#include <vigil/http/client.hpp>
#include <vigil/http/exchange.hpp>
#include <vigil/http/server.hpp>
#include <vigil/telemetry/env.hpp>

#include "client_call.hpp"
#include "pool.hpp"
#include "send.hpp"
#include "write.hpp"

namespace vigil::http {

namespace tel = vigil::telemetry;
namespace bhttp = boost::beast::http;
using internal::Answer;
using internal::ClientCall;
using internal::ConnectionPool;
using internal::Outgoing;
using internal::ReadUntil;

// ---------------------------------------------------------------------------- address

UpstreamAddress UpstreamAddress::Parse(std::string_view url) {
  auto fail = [&](const char* why) {
    throw std::invalid_argument("upstream \"" + std::string(url) + "\" is not valid: " + why);
  };
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) fail("expected http://host[:port]");
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) fail("the host is missing");
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    fail("expected only http://host[:port], without path, query or credentials");
  }
  UpstreamAddress a;
  std::string_view port_text;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) fail("unterminated IPv6 literal");
    a.host = std::string(rest.substr(1, close - 1));
    boost::system::error_code ec;
    (void)asio::ip::make_address_v6(a.host, ec);
    if (ec || a.host.find('%') != std::string::npos) fail("expected an IPv6 address in brackets");
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') fail("expected ':' after the IPv6 literal");
      port_text = rest.substr(1);
    }
  } else {
    const auto colon = rest.find(':');
    a.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
    // A name or an IPv4 address: it goes out as the Host field and is resolved as is.
    if (a.host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789-._~") != std::string::npos) {
      fail("the host must be a name, an IPv4 address or an IPv6 address in brackets");
    }
  }
  if (a.host.empty()) fail("the host is missing");
  if (!port_text.empty() || rest.find(':') != std::string_view::npos) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      fail("the port must be from 1 to 65535");
    }
    a.port = static_cast<std::uint16_t>(port);
  }
  const bool v6 = url[kScheme.size()] == '[';
  a.authority = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
  return a;
}

PoolOptions PoolOptions::FromEnv() {
  PoolOptions o;
  o.max_idle =
      static_cast<std::size_t>(tel::env::Integer("VIGIL_UPSTREAM_MAX_IDLE", 64, 0, 100000));
  o.idle_timeout = tel::env::Millis("VIGIL_UPSTREAM_IDLE_TIMEOUT", o.idle_timeout);
  o.connect_timeout = tel::env::Millis("VIGIL_UPSTREAM_CONNECT_TIMEOUT", o.connect_timeout);
  if (o.connect_timeout.count() == 0) {
    throw tel::ConfigError("VIGIL_UPSTREAM_CONNECT_TIMEOUT",
                           "0 is not valid: expected a timeout of at least 1 ms");
  }
  return o;
}

// ---------------------------------------------------------------------------- upstream

Upstream::Upstream(Runtime& runtime, UpstreamAddress address, PoolOptions options,
                   tel::Registry& registry)
    : address_(std::move(address)) {
  auto& family = registry.GaugeFamily(
      "http_client_open_connections",
      "Connections to upstreams held by the client pools, by state (active or idle).",
      {"http_connection_state", "server_address"});
  internal::PoolGauges gauges{&family.WithLabels({"idle", address_.authority}),
                              &family.WithLabels({"active", address_.authority})};
  for (std::size_t i = 0; i < runtime.size(); ++i) {
    pools_.push_back(
        std::make_unique<ConnectionPool>(runtime.context(i), address_, options, gauges));
  }
}

Upstream::~Upstream() = default;

// ---------------------------------------------------------------------------- telemetry

ClientInstruments::ClientInstruments(tel::Registry& registry)
    : duration(registry.HistogramFamily(
          "http_client_request_duration_seconds", "Duration of HTTP client requests.",
          {"http_request_method", "server_address", "http_response_status_code"})) {}

// ---------------------------------------------------------------------------- client

Client::Client(Upstream& upstream, tel::Tracer tracer, ClientInstruments& instruments,
               std::chrono::milliseconds timeout, std::uint64_t max_response_bytes) noexcept
    : upstream_(upstream),
      tracer_(std::move(tracer)),
      instruments_(instruments),
      timeout_(timeout),
      max_response_bytes_(max_response_bytes) {}

namespace {

// A request whose head and body are in memory, its response read whole.
class InMemory final : public Outgoing {
 public:
  InMemory(const Client::Request& request, std::uint64_t max_response_bytes) noexcept
      : Outgoing(request.method(), request.body()),
        request_(request),
        max_response_bytes_(max_response_bytes) {}

  void LayOutHead(std::string& out) const override {
    internal::SerializeHead(request_.base(), out);
  }
  bhttp::basic_parser<false>& NewParser() override {
    parser.emplace();
    parser->body_limit(max_response_bytes_);
    return *parser;
  }

  std::optional<bhttp::response_parser<bhttp::string_body>> parser;

 private:
  const Client::Request& request_;
  std::uint64_t max_response_bytes_;
};

}  // namespace

asio::awaitable<Client::Response> Client::Send(std::size_t worker,
                                               const tel::RequestContext& context,
                                               Request request) {
  ConnectionPool& pool = upstream_.pool(worker);
  const std::string target(request.target());
  ClientCall call(tracer_, instruments_, context, MethodLabel(request.method()),
                  upstream_.address(), target);
  call.Inject(request);
  request.version(11);
  if (request.find(bhttp::field::host) == request.end()) {
    request.set(bhttp::field::host, upstream_.address().authority);
  }
  request.prepare_payload();

  InMemory message(request, max_response_bytes_);
  Answer answer =
      co_await internal::SendRequest(pool, call, timeout_, message, ReadUntil::kMessage);
  Response response = message.parser->release();
  // After an early answer the rest of the request is still unsent.
  if (!answer.early && response.keep_alive()) {
    pool.Release(std::move(answer.connection), response);
  } else {
    pool.Discard(std::move(answer.connection));
  }
  call.Finish(response.result_int());
  co_return response;
}

}  // namespace vigil::http

// DatabaseOutageMiddleware: a storage::Unavailable from a handler answers 503
// db_unavailable; any other failure still answers 500.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vigil/http/middleware/errors.hpp>
#include <vigil/service/database.hpp>
#include <vigil/testing/server.hpp>
#include <vigil/testing/telemetry.hpp>

namespace vigil::service {
namespace {

namespace asio = boost::asio;
using test_support::RawClient;
using test_support::RunningServer;

class OutageTest : public ::testing::Test {
 protected:
  OutageTest() : telemetry_(test_support::QuietTelemetry()) {}

  RunningServer Start(bool with_outage_middleware) {
    http::Routes routes;
    routes.Add("GET", "/down", [](http::Exchange&) -> asio::awaitable<void> {
      throw storage::Unavailable("the pool and its waiting line are full");
      co_return;
    });
    routes.Add("GET", "/broken", [](http::Exchange&) -> asio::awaitable<void> {
      throw std::runtime_error("a bug");
      co_return;
    });
    http::Pipeline pipeline;
    pipeline.Add<http::ErrorMiddleware>(telemetry_.log());
    if (with_outage_middleware) pipeline.Add<DatabaseOutageMiddleware>();
    return RunningServer(std::move(routes), std::move(pipeline));
  }

  telemetry::Telemetry telemetry_;
};

constexpr std::string_view kGetDown = "GET /down HTTP/1.1\r\nHost: t\r\n\r\n";
constexpr std::string_view kGetBroken = "GET /broken HTTP/1.1\r\nHost: t\r\n\r\n";

TEST_F(OutageTest, UnavailableDatabaseAnswers503) {
  RunningServer server = Start(true);
  RawClient client(server.port());
  const auto res = client.RoundTrip(kGetDown);
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/problem+json");
  EXPECT_NE(res.body().find("database is unavailable"), std::string::npos) << res.body();
}

TEST_F(OutageTest, OtherFailuresStay500) {
  RunningServer server = Start(true);
  RawClient client(server.port());
  EXPECT_EQ(client.RoundTrip(kGetBroken).result_int(), 500u);
}

TEST_F(OutageTest, WithoutTheMiddlewareAnOutageIsA500) {
  RunningServer server = Start(false);
  RawClient client(server.port());
  EXPECT_EQ(client.RoundTrip(kGetDown).result_int(), 500u);
}

}  // namespace
}  // namespace vigil::service

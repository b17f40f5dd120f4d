// Test support: telemetry for a test program. Quiet options (lines discarded or in a file
// of the test's, no signal handlers of the logger's, which would fight GoogleTest's and
// the sanitizers'), and TestTelemetry, whose log lines and metrics a test reads back.
//
//   vigil::test_support::TestTelemetry telemetry("orders");
//   OrdersApi api(db, client, signer, *telemetry);
//   ...
//   EXPECT_TRUE(Has(telemetry.Logs(), "\"msg\":\"order created\""));
//   EXPECT_TRUE(Has(telemetry.Metrics(), "vigil_orders_created_total 1\n"));
//
// Thread-safety: TestTelemetry is as safe as the Telemetry it holds; Logs() and Metrics()
// may be called while other threads log and count.
#pragma once

#include <functional>
#include <string>
#include <vigil/telemetry/log.hpp>
#include <vigil/telemetry/telemetry.hpp>

#include "vigil/testing/files.hpp"

namespace vigil::test_support {

// A logger's options for a test: lines to `file` ("/dev/null": discarded), no signal
// handlers.
telemetry::LoggerOptions QuietLog(std::string file = "/dev/null");

// Telemetry options for a test: service `service`, logs as QuietLog(log_file), spans
// recorded but exported nowhere.
telemetry::TelemetryOptions QuietTelemetry(std::string service = "test",
                                           std::string log_file = "/dev/null");

// A Telemetry (QuietTelemetry) whose log lines go to a file in a temporary directory of its
// own. Throws what TempDir and Telemetry throw.
class TestTelemetry {
 public:
  explicit TestTelemetry(std::string service = "test");
  // With QuietTelemetry's options changed by `adjust` first (an error reporter's DSN...).
  TestTelemetry(std::string service,
                const std::function<void(telemetry::TelemetryOptions&)>& adjust);

  telemetry::Telemetry& operator*() { return telemetry_; }
  telemetry::Telemetry* operator->() { return &telemetry_; }

  // Every line logged so far (the logger is flushed first).
  std::string Logs();
  // The registry in the Prometheus text format.
  std::string Metrics();

 private:
  TempDir dir_;
  telemetry::Telemetry telemetry_;
};

}  // namespace vigil::test_support

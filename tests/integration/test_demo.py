"""An SDK-instrumented program end to end: one JSON access line per request carrying
the caller's trace, request-id handling, start-up errors naming the variable, and a
clean SIGTERM that flushes the log."""

import json
import signal
import subprocess
import unittest

from harness import Sandbox, binary, free_port, http_get, start_demo, wait_for

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
FIXED_KEYS = ["time", "level", "msg", "service", "version", "env"]


def json_lines(proc):
    return [json.loads(line) for line in proc.lines() if line.startswith("{")]


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()

    def tearDown(self):
        self.sandbox.close()

    def test_access_log_carries_trace_and_request_id(self):
        demo, public, _ = start_demo(self.sandbox)
        status, headers, body = http_get(public + "/work",
                                         {"traceparent": PARENT, "X-Request-Id": "req-42"})
        self.assertEqual(status, 200)
        answer = json.loads(body)
        self.assertEqual(answer["trace_id"], TRACE_ID)
        self.assertEqual(headers["X-Request-Id"], "req-42")
        self.assertTrue(headers["traceparent"].startswith(f"00-{TRACE_ID}-"))

        status, headers, _ = http_get(public + "/work",
                                      {"traceparent": "00-garbage", "X-Request-Id": "bad id!"})
        self.assertEqual(status, 200, "an invalid traceparent must never fail the request")
        generated = headers["X-Request-Id"]
        self.assertEqual(len(generated), 26)

        status, _, _ = http_get(public + "/nope")
        self.assertEqual(status, 404)

        def access_lines():
            lines = [l for l in json_lines(demo) if l["msg"] == "request completed"]
            return lines if len(lines) == 3 else None
        ok, bad_parent, missing = wait_for(access_lines, what="three access-log lines")

        self.assertEqual(list(ok.keys())[:9], FIXED_KEYS + ["trace_id", "span_id", "request_id"])
        self.assertEqual(ok["level"], "info")
        self.assertEqual(ok["service"], "vigil-demo")
        self.assertEqual(ok["trace_id"], TRACE_ID)
        self.assertEqual(ok["span_id"], answer["span_id"])
        self.assertEqual(ok["request_id"], "req-42")
        self.assertEqual(ok["http.route"], "/work")
        self.assertEqual(ok["http.response.status_code"], 200)
        self.assertIsInstance(ok["duration_ms"], (int, float))
        self.assertRegex(ok["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

        self.assertNotEqual(bad_parent["trace_id"], TRACE_ID)
        self.assertEqual(bad_parent["request_id"], generated)
        self.assertEqual(missing["level"], "warn")
        self.assertEqual(missing["http.route"], "unmatched")

    def test_bad_log_level_stops_start_naming_the_variable(self):
        run = subprocess.run([binary("telemetry/examples/vigil-demo"), "--port", str(free_port()),
                              "--admin-port", str(free_port())],
                             env={"VIGIL_LOG_LEVEL": "loud"}, capture_output=True, timeout=10)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(b"VIGIL_LOG_LEVEL", run.stderr)
        self.assertIn(b"loud", run.stderr)

    def test_help(self):
        run = subprocess.run([binary("telemetry/examples/vigil-demo"), "--help"],
                             capture_output=True, timeout=10)
        self.assertEqual(run.returncode, 0)
        self.assertIn(b"Usage: vigil-demo", run.stdout)

    def test_log_level_filters(self):
        demo, public, _ = start_demo(self.sandbox, env={"VIGIL_LOG_LEVEL": "warn"})
        http_get(public + "/work")
        http_get(public + "/missing")
        wait_for(lambda: any(l["msg"] == "request completed" for l in json_lines(demo)),
                 what="the warn line")
        levels = {l["level"] for l in json_lines(demo)}
        self.assertEqual(levels, {"warn"})

    def test_sigterm_exits_cleanly_and_flushes(self):
        demo, public, _ = start_demo(self.sandbox)
        for _ in range(50):
            http_get(public + "/work")
        self.assertEqual(demo.stop(signal.SIGTERM), 0)
        lines = json_lines(demo)
        self.assertEqual(sum(l["msg"] == "request completed" for l in lines), 50)
        self.assertEqual(lines[-1]["msg"], "shutting down")


if __name__ == "__main__":
    unittest.main()

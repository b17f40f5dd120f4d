"""A real Prometheus scrapes an SDK-instrumented program: promtool accepts the text
exposition, and exemplars recorded under a sampled trace come back from Prometheus'
own exemplar API."""

import json
import subprocess
import time
import unittest
import urllib.parse

from harness import Sandbox, http_get, start_demo, start_prometheus, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


class PrometheusScrapeTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.demo, self.public, self.admin = start_demo(self.sandbox)

    def tearDown(self):
        self.sandbox.close()

    def test_promtool_accepts_text_exposition(self):
        http_get(self.public + "/work")  # so the request histogram has a series
        status, headers, body = http_get(self.admin + "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        for name in ("http_server_request_duration_seconds_bucket", "process_cpu_seconds_total",
                     "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                     "process_start_time_seconds", "vigil_build_info",
                     'vigil_telemetry_dropped_total{signal="logs"'):
            self.assertIn(name, text)
        check = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())

    def test_openmetrics_negotiated_for_prometheus(self):
        http_get(self.public + "/work",
                 {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
        status, headers, body = http_get(self.admin + "/metrics", {"Accept": PROMETHEUS_ACCEPT})
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("application/openmetrics-text"))
        text = body.decode()
        self.assertTrue(text.endswith("# EOF\n"), text[-200:])
        self.assertIn(f'# {{trace_id="{TRACE_ID}"', text)

    def test_prometheus_returns_exemplars(self):
        prom = start_prometheus(self.sandbox, [self.admin.removeprefix("http://")])
        start = time.time() - 60
        span_ids = set()
        for _ in range(5):
            status, _, body = http_get(self.public + "/work",
                                       {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
            self.assertEqual(status, 200)
            span_ids.add(json.loads(body)["span_id"])

        def exemplars():
            q = urllib.parse.urlencode({
                "query": "http_server_request_duration_seconds_bucket",
                "start": f"{start:.3f}", "end": f"{time.time() + 60:.3f}"})
            status, _, body = http_get(f"{prom}/api/v1/query_exemplars?{q}")
            if status != 200:
                return None
            found = [e["labels"] for series in json.loads(body)["data"]
                     for e in series["exemplars"]]
            return found or None

        found = wait_for(exemplars, timeout=30, interval=0.5, what="exemplars in Prometheus")
        self.assertTrue(all(e["trace_id"] == TRACE_ID for e in found), found)
        # The exemplar is the server span of one of our requests, not the caller's span.
        self.assertTrue({e["span_id"] for e in found} <= span_ids, (found, span_ids))

        # The scrape itself is healthy and the job label names the service.
        def up():
            q = urllib.parse.urlencode({"query": "up"})
            _, _, body = http_get(f"{prom}/api/v1/query?{q}")
            result = json.loads(body)["data"]["result"]
            return result and result[0]["value"][1] == "1"
        wait_for(up, timeout=15, interval=0.5, what="up == 1")


if __name__ == "__main__":
    unittest.main()

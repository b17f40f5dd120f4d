"""Error reports to Sentry from real programs, read back with Sentry's own envelope parser:
every service's admin test endpoint, an error line linked to the request's trace and to
the service's server span, the gateway's upstream failures counted into one report per
upstream and kind, Sentry's rate limits per category with the client report that counts
what they held back, release-health sessions, and a receiver that hangs or is gone while
the service keeps serving in bounded memory."""

import signal
import time
import unittest
import urllib.request
import uuid

from harness import (HANG, INTERNAL_SECRET, Platform, Receiver, Sandbox, SentryReceiver,
                     assert_memory_below, binary, call_json, free_port, http_get, proc_status,
                     start_echo, start_gateway, start_http_program, traces_file_spans,
                     wait_for)
from harness.tokens import identity_header

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"


def sentry_test(server, headers=None):
    """POST /debug/sentry-test on the admin port: (status, parsed body)."""
    status, _, body = call_json(server.admin + "/debug/sentry-test", "POST", raw=b"",
                                headers=headers)
    return status, body


class SentrySuite(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def receiver(self, script=(), **kwargs):
        receiver = SentryReceiver(script, **kwargs)
        self.addCleanup(receiver.close)
        return receiver


class PlatformTestErrorTest(SentrySuite):
    def test_every_service_reports_its_test_error_with_its_tags_and_build_ids(self):
        receiver = self.receiver()
        platform = Platform(self.sandbox, {"SENTRY_DSN": receiver.dsn, "VIGIL_ENV": "it"})
        ids = {}
        for name, server in platform.services.items():
            status, body = sentry_test(server, {"traceparent": TRACEPARENT})
            self.assertEqual(status, 202, f"{name}: {body}")
            ids[body["event_id"]] = name
        events = wait_for(lambda: (lambda e: e if len(e) >= len(ids) else None)(
            receiver.items("event")), what="a test event from every service")
        self.assertEqual({e["event_id"] for e in events}, set(ids))
        for request in receiver.requests:
            self.assertEqual(request["path"], receiver.path)
            self.assertEqual(request["headers"]["content-type"], "application/x-sentry-envelope")
            auth = request["headers"]["x-sentry-auth"]
            self.assertIn("sentry_version=7", auth)
            self.assertIn("sentry_key=" + receiver.dsn.split("//")[1].split("@")[0], auth)
        for event in events:
            name = ids[event["event_id"]]
            with self.subTest(service=name):
                exception = event["exception"]["values"][0]
                self.assertIn("SentryTestError", exception["type"])
                self.assertIn(name, exception["value"])
                self.assertEqual(exception["mechanism"]["data"]["stack"], "where it was thrown")
                functions = [f.get("function", "") for f in exception["stacktrace"]["frames"]]
                self.assertTrue(any("SentryTestHandler" in f for f in functions), functions)
                self.assertEqual(event["tags"]["service"], name)
                self.assertEqual(event["tags"]["env"], "it")
                self.assertEqual(event["environment"], "it")
                self.assertEqual(event["release"], f"{name}@{event['tags']['version']}")
                self.assertEqual(event["contexts"]["trace"]["trace_id"], TRACE_ID)
                self.assertEqual(event["contexts"]["trace"]["parent_span_id"], PARENT_SPAN)
                images = event["debug_meta"]["images"]
                program = [i for i in images if i["code_file"].endswith(f"vigil-{name}")]
                self.assertEqual(len(program), 1, [i["code_file"] for i in images])
                self.assertRegex(program[0]["code_id"], r"^[0-9a-f]{40}$")
                self.assertRegex(program[0]["debug_id"], r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


class TraceLinkTest(SentrySuite):
    def test_an_error_line_is_an_event_linked_to_the_request_and_its_server_span(self):
        """orders, whose catalog answers 500: its error line about it is reported with the
        trace the client sent and the span orders' server made for that request."""
        receiver = self.receiver()
        catalog = Receiver(default=(500, {"Content-Type": "text/plain"}, b"broken"))
        self.addCleanup(catalog.close)
        traces = self.sandbox.dir / "orders-traces.jsonl"
        orders = start_http_program(self.sandbox, [binary("services/orders/vigil-orders")],
                                    "orders", {
                                        "SENTRY_DSN": receiver.dsn,
                                        "VIGIL_INTERNAL_SECRET": INTERNAL_SECRET,
                                        "VIGIL_DATA_DIR": str(self.sandbox.dir / "data"),
                                        "VIGIL_CATALOG_URL": catalog.url,
                                        "VIGIL_TRACES_FILE": str(traces),
                                        "OTEL_BSP_SCHEDULE_DELAY": "100"})
        request_id = "sentry-it-" + uuid.uuid4().hex[:12]
        status, _, answer = call_json(orders.url + "/orders", "POST", {
            "lines": [{"item_id": "0" * 28, "quantity": 1}]}, headers={
                "traceparent": TRACEPARENT, "X-Request-Id": request_id,
                "Idempotency-Key": "k-" + uuid.uuid4().hex,
                "X-Vigil-Identity": identity_header("user:alice", INTERNAL_SECRET)})
        self.assertEqual(status, 502, answer)

        events = wait_for(lambda: [e for e in receiver.items("event")
                                   if e.get("message", {}).get("formatted")
                                   == "catalog refused a reservation"] or None,
                          what="the error line's event")
        self.assertEqual(len(events), 1)
        event = events[0]
        self.assertEqual(event["logger"], "vigil.log")
        self.assertEqual(event["tags"]["request_id"], request_id)
        self.assertEqual(event["extra"]["http.response.status_code"], "500")
        trace = event["contexts"]["trace"]
        self.assertEqual(trace["trace_id"], TRACE_ID)
        server_spans = wait_for(lambda: [s for s in traces_file_spans(traces)
                                         if s["kind"] == 2 and s["traceId"] == TRACE_ID] or None,
                                what="orders' server span in its traces file")
        self.assertEqual(len(server_spans), 1)
        self.assertEqual(trace["span_id"], server_spans[0]["spanId"])
        self.assertEqual(server_spans[0]["parentSpanId"], PARENT_SPAN)
        # The error lines are events; the pipeline's own lines (the 502's access log line,
        # the error middleware's) are not. (The stub refuses the release of the reservation
        # too, which orders reports as well.)
        orders.proc.stop()
        messages = sorted(e["message"]["formatted"] for e in receiver.items("event"))
        self.assertEqual(messages, ["catalog refused a reservation",
                                    "releasing the reservation of a failed order failed"])
        sessions = receiver.items("sessions")
        self.assertTrue(sessions, "release health sent at shutdown")
        counts = {k: sum(a.get(k, 0) for s in sessions for a in s["aggregates"])
                  for k in ("exited", "errored", "crashed")}
        self.assertEqual(counts, {"exited": 0, "errored": 1, "crashed": 0})
        self.assertTrue(all(s["attrs"]["release"].startswith("orders@") for s in sessions))


class GatewayFailuresTest(SentrySuite):
    def test_upstream_failures_are_one_report_per_upstream_and_kind_with_a_count(self):
        receiver = self.receiver()
        echo = start_echo(self.sandbox)
        down = f"127.0.0.1:{free_port()}"
        gateway = start_gateway(self.sandbox, [
            {"prefix": "/e", "upstream": echo.url, "strip_prefix": True},
            {"prefix": "/down", "upstream": "http://" + down, "strip_prefix": True}],
            {"SENTRY_DSN": receiver.dsn})
        for _ in range(5):
            self.assertEqual(http_get(gateway.url + "/e/status/503")[0], 503)
        for _ in range(3):
            self.assertEqual(http_get(gateway.url + "/down/x")[0], 502)
        self.assertEqual(http_get(gateway.url + "/e/status/200")[0], 200)
        self.assertEqual(gateway.proc.stop(), 0)  # the counts go at shutdown
        events = receiver.items("event")
        kinds = {(e["tags"]["failure.source"], e["tags"]["failure.kind"]): e for e in events}
        upstream = echo.url.removeprefix("http://")
        self.assertEqual(set(kinds), {(upstream, "http_503"), (down, "connection_refused")},
                         [e.get("message") for e in events])
        self.assertEqual(kinds[(upstream, "http_503")]["extra"]["count"], "5")
        self.assertEqual(kinds[(down, "connection_refused")]["extra"]["count"], "3")
        self.assertEqual(kinds[(down, "connection_refused")]["fingerprint"],
                         ["failures", down, "connection_refused"])


class CrashTest(SentrySuite):
    def crash(self, echo, how):
        """POST /crash?how=...: the program dies while serving it; returns its exit code."""
        request = urllib.request.Request(echo.url + f"/crash?how={how}", data=b"", method="POST",
                                         headers={"traceparent": TRACEPARENT})
        with self.assertRaises(OSError):  # the connection ends without an answer
            urllib.request.urlopen(request, timeout=10)
        return echo.proc.proc.wait(timeout=10)

    def test_a_crash_leaves_a_report_that_the_next_start_delivers_with_named_frames(self):
        receiver = self.receiver()
        outbox = self.sandbox.dir / "outbox"
        env = {"SENTRY_DSN": receiver.dsn, "VIGIL_SENTRY_OUTBOX": str(outbox)}
        for how, sig in (("segv", signal.SIGSEGV), ("abort", signal.SIGABRT)):
            with self.subTest(how=how):
                sent_before = len(receiver.items("event"))
                echo = start_echo(self.sandbox, env, name=f"echo-{how}")
                # The process ends as the signal ends it (a supervisor sees the crash).
                self.assertEqual(self.crash(echo, how), -sig)
                files = list(outbox.glob("*.envelope"))
                self.assertEqual(len(files), 1, list(outbox.iterdir()))
                from sentry_sdk.envelope import Envelope  # pylint: disable=import-outside-toplevel
                written = Envelope.deserialize(files[0].read_bytes()).get_event()
                self.assertEqual(written["level"], "fatal")
                self.assertFalse(any("function" in f for f in
                                     written["exception"]["values"][0]["stacktrace"]["frames"]),
                                 "the handler writes raw frames")
                self.assertEqual(len(receiver.items("event")), sent_before,
                                 "nothing sent while crashing")

                # The next start sends it, its frames named, and empties the outbox.
                echo = start_echo(self.sandbox, env, name=f"echo-{how}-again")
                event = wait_for(lambda: next((e for e in receiver.items("event")
                                               if e["event_id"] == written["event_id"]), None),
                                 what="the crash report, delivered by the next start")
                wait_for(lambda: not list(outbox.glob("*.envelope")), what="an empty outbox")
                exception = event["exception"]["values"][0]
                self.assertEqual(exception["type"], signal.Signals(sig).name)
                self.assertFalse(exception["mechanism"]["handled"])
                self.assertEqual(exception["mechanism"]["meta"]["signal"]["number"], sig)
                frames = exception["stacktrace"]["frames"]
                names = [f.get("function", "") for f in frames]
                self.assertTrue(any("CrashOnPurpose" in n for n in names), names)
                if how == "segv":
                    self.assertIn("CrashOnPurpose", names[-1], "the faulting function innermost")
                    self.assertIn("SEGV_MAPERR", exception["value"])
                # The request the thread was serving, and the service.
                self.assertEqual(event["contexts"]["trace"]["trace_id"], TRACE_ID)
                self.assertEqual(event["tags"]["service"], "vigil-echo")
                images = event["debug_meta"]["images"]
                self.assertTrue(any(i["code_file"].endswith("vigil-echo") for i in images))
                self.assertEqual(echo.proc.stop(), 0)


class RateLimitTest(SentrySuite):
    def test_a_429_pauses_exactly_its_category_and_the_client_report_counts_the_drops(self):
        receiver = self.receiver([(429, {"X-Sentry-Rate-Limits": "60:error:key:over_quota",
                                         "Content-Length": "0"}, b"")])
        echo = start_echo(self.sandbox, {"SENTRY_DSN": receiver.dsn})
        status, _ = sentry_test(echo)
        self.assertEqual(status, 202)
        wait_for(lambda: len(receiver.requests) == 1, what="the first event, answered 429")
        for _ in range(3):
            status, body = sentry_test(echo)
            self.assertEqual(status, 503, body)
            self.assertIn("rate limited", body["detail"])
        for _ in range(4):
            self.assertEqual(http_get(echo.url + "/status/204")[0], 204)
        self.assertEqual(http_get(echo.url + "/status/500")[0], 500)
        # SIGTERM flushes the sessions and the client report.
        self.assertEqual(echo.proc.stop(), 0)
        self.assertEqual(len(receiver.items("event")), 1, "nothing of the category after the 429")
        self.assertEqual(receiver.discarded(), {("ratelimit_backoff", "error"): 3})
        sessions = receiver.items("sessions")
        self.assertEqual(sum(a.get("exited", 0) for s in sessions for a in s["aggregates"]), 4,
                         "sessions are another category: they still go")
        self.assertEqual(sum(a.get("errored", 0) for s in sessions for a in s["aggregates"]), 1)


class ReceiverTroubleTest(SentrySuite):
    def serve_through(self, echo, seconds):
        """Public requests and test errors for `seconds`: every public one answered in time."""
        deadline = time.monotonic() + seconds
        served = 0
        while time.monotonic() < deadline:
            start = time.monotonic()
            self.assertEqual(http_get(echo.url + "/status/200", timeout=2)[0], 200)
            self.assertLess(time.monotonic() - start, 1.0)
            sentry_test(echo)
            served += 1
        return served

    def test_a_receiver_that_hangs_or_is_gone_never_stops_the_service(self):
        receiver = self.receiver(default=HANG)
        echo = start_echo(self.sandbox, {"SENTRY_DSN": receiver.dsn,
                                         "VIGIL_SENTRY_QUEUE_SIZE": "20"})
        self.assertGreater(self.serve_through(echo, 3), 50)
        rss_hanging = proc_status(echo.pid, "VmRSS")
        self.assertGreater(self.serve_through(echo, 3), 50)
        rss_later = proc_status(echo.pid, "VmRSS")
        assert_memory_below(self, rss_later - rss_hanging, 8 * 1024,
                            "memory grows while the receiver hangs")
        wait_for(lambda: len(receiver.requests) >= 1, what="the hanging request")
        receiver.close()  # gone: connections refused from now on
        self.assertGreater(self.serve_through(echo, 2), 50)
        metrics = http_get(echo.admin + "/metrics")[2].decode()
        self.assertRegex(metrics, r'vigil_telemetry_dropped_total\{signal="errors",'
                                  r'reason="queue_overflow",exporter="sentry"\} [1-9]')
        start = time.monotonic()
        self.assertEqual(echo.proc.stop(), 0)
        self.assertLess(time.monotonic() - start, 9, "shutdown keeps its deadline")


if __name__ == "__main__":
    unittest.main()

"""Traces from an SDK-instrumented program: the file exporter feeds `vigil-trace`, the
OTLP/HTTP exporter's bodies decode with OpenTelemetry's own decoder and carry the same ids
as the log lines, and a receiver that is down for a minute costs counted drops, bounded
memory and nothing else: requests keep succeeding and export resumes when it returns."""

import json
import re
import subprocess
import time
import unittest

from harness import (Receiver, Sandbox, assert_memory_below, binary, free_port, http_get,
                     metric_sum, node_decode, start_demo, wait_for)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


def access_lines(proc):
    return [json.loads(l) for l in proc.lines()
            if l.startswith("{") and '"request completed"' in l]


def metric(admin_url, name, labels):
    """The value of one sample from the text exposition (None when absent)."""
    _, _, body = http_get(admin_url + "/metrics")
    pattern = re.escape(name) + r"\{([^}]*)\} (\S+)"
    for match in re.finditer(pattern, body.decode()):
        got = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    plain = re.search(r"^" + re.escape(name) + r" (\S+)$", body.decode(), re.M)
    return float(plain.group(1)) if plain and not labels else None


def rss_bytes(pid):
    """The process' resident set size right now (VmRSS), in bytes."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def spans_in(receiver):
    """Every span the receiver got, decoded by OpenTelemetry's decoder, with its service."""
    spans = []
    for i, request in enumerate(list(receiver.requests)):
        if "decoded" not in request:
            path = receiver.dump_dir / f"body-{i}.bin"
            path.write_bytes(request["body"])
            request["decoded"] = node_decode(path)["request"]
        decoded = request["decoded"]
        for rs in decoded.get("resourceSpans", []):
            service = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}["service.name"]
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    spans.append((service["stringValue"], span))
    return spans


class TracesTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()

    def tearDown(self):
        self.sandbox.close()

    def receiver(self, port=0):
        r = Receiver(port=port)
        r.dump_dir = self.sandbox.dir
        self.addCleanup(r.close)
        return r

    def test_file_exporter_feeds_vigil_trace(self):
        traces = self.sandbox.dir / "traces.jsonl"
        demo, public, _ = start_demo(self.sandbox,
                                     env={"VIGIL_TRACES_FILE": str(traces), **FAST_EXPORT})
        status, _, body = http_get(public + "/work?ms=2", TRACEPARENT)
        self.assertEqual(status, 200)
        span_id = json.loads(body)["span_id"]
        wait_for(lambda: traces.exists() and TRACE_ID in traces.read_text(),
                 what="the span in the traces file")

        line = json.loads(traces.read_text().splitlines()[0])
        span = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        self.assertEqual(span["traceId"], TRACE_ID)
        self.assertEqual(span["spanId"], span_id)
        self.assertEqual(span["parentSpanId"], PARENT_SPAN)
        self.assertEqual(span["name"], "GET /work")
        self.assertEqual(span["kind"], 2)

        view = subprocess.run([binary("telemetry/tools/vigil-trace"), TRACE_ID[:8], "--file",
                               str(traces), "--no-color"], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(view.returncode, 0, view.stderr)
        self.assertIn(f"trace {TRACE_ID}", view.stdout)
        self.assertRegex(view.stdout, r"vigil-demo\s+GET /work \(server\)\s+0\.000 ms\s+[0-9.]+ ms")
        self.assertIn("http.response.status_code=200", view.stdout)

        listing = subprocess.run([binary("telemetry/tools/vigil-trace"), "--file", str(traces)],
                                 capture_output=True, text=True, timeout=30)
        self.assertIn(TRACE_ID, listing.stdout)
        missing = subprocess.run([binary("telemetry/tools/vigil-trace"), "ffff", "--file",
                                  str(traces)], capture_output=True, text=True, timeout=30)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no span of trace", missing.stderr)

    def test_otlp_spans_decode_and_match_the_log_lines(self):
        receiver = self.receiver()
        demo, public, _ = start_demo(self.sandbox, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **FAST_EXPORT})
        for _ in range(5):
            self.assertEqual(http_get(public + "/work", TRACEPARENT)[0], 200)
        spans = wait_for(lambda: (lambda s: s if len(s) >= 5 else None)(spans_in(receiver)),
                         what="five spans at the receiver")
        self.assertTrue(all(r["path"] == "/v1/traces" for r in receiver.requests))
        self.assertEqual(receiver.requests[0]["headers"]["content-type"], "application/x-protobuf")
        logged = {l["span_id"]: l for l in wait_for(
            lambda: (lambda a: a if len(a) >= 5 else None)(access_lines(demo)), what="log lines")}
        for service, span in spans:
            self.assertEqual(service, "vigil-demo")
            self.assertEqual(span["traceId"], TRACE_ID)
            self.assertEqual(span["parentSpanId"], PARENT_SPAN)
            self.assertIn(span["spanId"], logged, "a span whose id no log line carries")
            self.assertEqual(logged[span["spanId"]]["trace_id"], span["traceId"])

    def test_memory_stops_growing_while_the_receiver_is_down(self):
        """Steady load with the collector down: after the first batch has used up its
        retries the process must reach a steady state, not pile spans up behind the
        exporter (which grew memory for minutes and starved the traces file)."""
        traces = self.sandbox.dir / "traces.jsonl"
        demo, public, admin = start_demo(self.sandbox, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
            "OTEL_EXPORTER_OTLP_TIMEOUT": "3000", "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
            # A queue that would take minutes to fill at this rate, so that spans piling
            # up show as growth rather than as a plateau at the bound.
            "OTEL_BSP_MAX_QUEUE_SIZE": "8192",
            # Each log thread's ring is touched page by page until it wraps; a small ring
            # wraps within seconds, so its warm-up does not read as growth.
            "VIGIL_LOG_QUEUE_BYTES": "65536",
            "VIGIL_TRACES_FILE": str(traces)})
        rate, start = 100, time.monotonic()
        samples, sent = {}, 0
        while time.monotonic() - start < 40:
            status, _, _ = http_get(public + "/work")
            self.assertEqual(status, 200, "a request failed while the receiver was down")
            sent += 1
            for mark in (20, 40):
                if mark not in samples and time.monotonic() - start >= mark - 0.5:
                    samples[mark] = rss_bytes(demo.proc.pid)
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the load, not waiting for anything
        grown = samples[40] - samples[20]
        print(f"\nRSS {samples[20] / 2**20:.2f} MiB at 20 s, {samples[40] / 2**20:.2f} MiB "
              f"at 40 s, {sent} requests")
        assert_memory_below(self, grown, 512 * 1024,
                            f"RSS grew by {grown} bytes from 20 s to 40 s under steady load")

        # What the receiver missed is counted under its own name, and the traces file got
        # (nearly) every span: the collector's outage no longer holds the other exporter up.
        def file_caught_up():
            return metric_sum(admin, "vigil_telemetry_exported_total",
                              {"signal": "spans", "exporter": "file"}) >= 0.95 * sent
        wait_for(file_caught_up, timeout=10, what="the traces file to have the spans")
        self.assertGreater(metric_sum(admin, "vigil_telemetry_dropped_total",
                                      {"signal": "spans", "reason": "export_failed",
                                       "exporter": "otlp"}), 0.5 * sent)
        self.assertEqual(metric_sum(admin, "vigil_telemetry_exported_total",
                                    {"signal": "spans", "exporter": "otlp"}), 0)

    def test_receiver_down_for_a_minute(self):
        port = free_port()
        receiver = self.receiver(port)
        demo, public, admin = start_demo(self.sandbox, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2000", **FAST_EXPORT})
        http_get(public + "/work")
        wait_for(lambda: receiver.requests, what="the first export")
        receiver.close()

        rss_start = metric(admin, "process_resident_memory_bytes", {})
        rss_peak, requests, deadline = rss_start, 0, time.monotonic() + 60
        while time.monotonic() < deadline:
            for _ in range(50):
                status, _, _ = http_get(public + "/work")
                self.assertEqual(status, 200, "a request failed while the receiver was down")
                requests += 1
            rss_peak = max(rss_peak, metric(admin, "process_resident_memory_bytes", {}))
        dropped = metric(admin, "vigil_telemetry_dropped_total",
                         {"signal": "spans", "reason": "export_failed", "exporter": "otlp"})
        self.assertGreater(dropped, 0, "lost spans must be counted")
        assert_memory_below(self, rss_peak - rss_start, 32 * 2**20,
                            f"memory grew from {rss_start} to {rss_peak} over {requests} requests")

        # The queue is full of spans from the outage; once they are out, new ones follow.
        back = self.receiver(port)
        sent = set()

        def resumed():
            status, _, body = http_get(public + "/work", TRACEPARENT)
            self.assertEqual(status, 200)
            sent.add(json.loads(body)["span_id"])
            return any(s["spanId"] in sent for _, s in spans_in(back))
        wait_for(resumed, timeout=60, interval=0.5,
                 what="export to resume after the receiver came back")


def otlp_line(*spans, service="svc"):
    """One traces-file line (an OTLP/JSON export request) holding `spans`, each given as
    (trace_id, span_id, parent_span_id, name, start_s, end_s) in seconds past a base."""
    base = 1_700_000_000 * 10**9
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "vigil"}, "spans": [
            {"traceId": t, "spanId": sid, "parentSpanId": parent, "name": name, "kind": 2,
             "startTimeUnixNano": str(base + int(start * 1e9)),
             "endTimeUnixNano": str(base + int(end * 1e9))}
            for t, sid, parent, name, start, end in spans]}]}]}) + "\n"


class TraceViewRotationTest(unittest.TestCase):
    """vigil-trace on a file the exporter rotated: newest file first, older files only
    when the answer may lie there, and a trace that straddles a rotation shown whole."""

    A, B, C, D = ("a" * 32), ("b" * 32), ("c" * 32), ("d" * 32)

    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)
        self.path = self.sandbox.dir / "traces.jsonl"
        # Oldest to newest. B's child ended (and was written) before the rotation, its root
        # after. traces.jsonl.2 ends with a malformed line naming every trace: vigil-trace
        # reports it exactly when it reads that file.
        (self.sandbox.dir / "traces.jsonl.2").write_text(
            otlp_line((self.A, "a1", "", "GET /a", 1000, 1001))
            + "{not json " + self.A + self.B + self.C + self.D + "\n")
        (self.sandbox.dir / "traces.jsonl.1").write_text(
            otlp_line((self.D, "d1", "", "GET /d", 2000, 2001))
            + otlp_line((self.B, "b2", "b1", "SELECT items", 3000.1, 3000.2)))
        self.path.write_text(otlp_line((self.B, "b1", "", "GET /b", 3000, 3003))
                             + otlp_line((self.C, "c1", "", "GET /c", 4000, 4001)))

    def view(self, *args):
        return subprocess.run([binary("telemetry/tools/vigil-trace"), *args, "--file",
                               str(self.path), "--no-color"], capture_output=True, text=True,
                              timeout=30)

    def test_a_trace_straddling_a_rotation_is_shown_whole(self):
        out = self.view(self.B)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"trace {self.B}  2 spans", out.stdout)
        self.assertIn("SELECT items", out.stdout)
        self.assertNotIn("malformed", out.stderr, "read a file older than the trace")

    def test_the_newest_trace_needs_only_the_newest_file(self):
        out = self.view(self.C[:8])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"trace {self.C}  1 spans", out.stdout)
        self.assertNotIn("malformed", out.stderr)

    def test_an_old_trace_is_found_in_the_oldest_file(self):
        out = self.view(self.A)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"trace {self.A}", out.stdout)
        self.assertIn("skipped 1 malformed lines", out.stderr)

    def test_the_list_reads_as_far_back_as_its_length_needs(self):
        short = self.view("--limit", "2")
        self.assertEqual(short.returncode, 0, short.stderr)
        rows = [l.split() for l in short.stdout.splitlines() if re.match(r"^[0-9a-f]{32} ", l)]
        self.assertEqual([(r[0], r[1]) for r in rows], [(self.C, "1"), (self.B, "2")])
        self.assertNotIn("malformed", short.stderr)

        full = self.view("--limit", "10")
        ids = [l.split()[0] for l in full.stdout.splitlines() if re.match(r"^[0-9a-f]{32} ", l)]
        self.assertEqual(ids, [self.C, self.B, self.D, self.A])
        self.assertIn("skipped 1 malformed lines", full.stderr)


if __name__ == "__main__":
    unittest.main()

"""The OTLP/HTTP exporter against a local receiver (http.server on 127.0.0.1) that answers
from a script: retries only on 429/502/503/504 and transport errors, Retry-After honoured
in seconds and as an HTTP date, the export timeout bounding the whole series, 4xx dropping
the batch with one error line, partial success counted (protobuf and JSON), gzip bodies,
configured headers, endpoint rules, keep-alive, and a prompt Shutdown()."""

import email.utils
import gzip
import json
import os
import subprocess
import time
import unittest

from harness import HANG, Receiver, Sandbox, binary, free_port

SPAN_IDS = ["00f067aa0ba902b7", "1111111111111111", "3333333333333333",
            "4444444444444444", "5555555555555555"]


# ---------------------------------------------------------------------------- protobuf

def _varint(buf, pos):
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf):
    """Yields (field number, wire type, value) of one protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, value


def span_ids(body):
    """The span ids in an ExportTraceServiceRequest, in order."""
    ids = []
    for f, _, resource_spans in _fields(body):
        if f != 1:
            continue
        for f2, _, scope_spans in _fields(resource_spans):
            if f2 != 2:
                continue
            for f3, _, span in _fields(scope_spans):
                if f3 == 2:
                    ids += [v.hex() for f4, _, v in _fields(span) if f4 == 2]
    return ids


def partial_success_protobuf(rejected, message):
    """ExportTraceServiceResponse{1: ExportTracePartialSuccess{1: rejected, 2: message}}."""
    def varint(v):
        out = bytearray()
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)
    text = message.encode()
    inner = b"\x08" + varint(rejected) + b"\x12" + varint(len(text)) + text
    return b"\x0a" + varint(len(inner)) + inner


# ---------------------------------------------------------------------------- receiver

def run_send(env, *args, mode="http", timeout=60):
    """Runs otlp_send; returns (exit code, events by kind, stderr, wall seconds)."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("OTEL_") and k != "VIGIL_TRACES_FILE"}
    full_env.update(env)
    start = time.monotonic()
    result = subprocess.run([binary("telemetry/examples/otlp_send"), mode, *args],
                            env=full_env, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - start
    events = {"outcome": [], "error": [], "stats": []}
    for line in result.stdout.splitlines():
        event = json.loads(line)
        events[event["event"]].append(event)
    return result.returncode, events, result.stderr, wall


def encoded_bodies(sandbox):
    """The protobuf and JSON bodies of otlp_send's fixed batch, as `encode` writes them."""
    pb, js = sandbox.dir / "expected.bin", sandbox.dir / "expected.json"
    subprocess.run([binary("telemetry/examples/otlp_send"), "encode", "--protobuf", str(pb),
                    "--json", str(js)], check=True, timeout=30)
    return pb.read_bytes(), js.read_text(encoding="utf-8")


class OtlpHttpExportTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.receivers = []

    def tearDown(self):
        for r in self.receivers:
            r.close()
        self.sandbox.close()

    def receiver(self, script=(), default=(200, {}, b"")):
        r = Receiver(script, default)
        self.receivers.append(r)
        return r

    def assert_outcome(self, events, exported, dropped, reason):
        self.assertEqual(len(events["outcome"]), 1, events)
        outcome = events["outcome"][0]
        self.assertEqual((outcome["exported"], outcome["dropped"], outcome["reason"]),
                         (exported, dropped, reason), events)
        return outcome

    # ------------------------------------------------------------------ retries

    def test_503_then_429_with_retry_after_then_200_loses_nothing(self):
        r = self.receiver([(503, {}, b""), (429, {"Retry-After": "2"}, b""), (200, {}, b"")])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url},
                                           "--initial-backoff-ms", "100")
        self.assertEqual(code, 0, stderr)
        outcome = self.assert_outcome(events, 5, 0, "")
        self.assertEqual(events["error"], [], "a batch delivered in the end logs nothing")
        self.assertEqual(len(r.requests), 3)
        self.assertEqual(len({q["body"] for q in r.requests}), 1, "the same batch each time")
        self.assertEqual(span_ids(r.requests[2]["body"]), SPAN_IDS)
        after_503 = r.requests[1]["time"] - r.requests[0]["time"]
        after_429 = r.requests[2]["time"] - r.requests[1]["time"]
        self.assertGreaterEqual(after_503, 0.05, "backoff waits at least half its base")
        self.assertLess(after_503, 1.0)
        self.assertGreaterEqual(after_429, 2.0, "Retry-After: 2 is honoured")
        self.assertLess(after_429, 3.0)
        self.assertLess(outcome["elapsed_ms"], 4000)
        self.assertEqual(events["stats"][0]["retries"], 2)

    def test_retry_after_as_http_date(self):
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        r = self.receiver([(503, {"Retry-After": when}, b""), (200, {}, b"")])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url},
                                           "--initial-backoff-ms", "10")
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 5, 0, "")
        self.assertEqual(len(r.requests), 2)
        self.assertGreaterEqual(r.requests[1]["time"] - r.requests[0]["time"], 1.8)

    def test_every_retryable_status_is_retried(self):
        r = self.receiver([(429, {}, b""), (502, {}, b""), (503, {}, b""), (504, {}, b""),
                           (200, {}, b"")])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url},
                                           "--initial-backoff-ms", "20",
                                           "--max-backoff-ms", "40")
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 5, 0, "")
        self.assertEqual(len(r.requests), 5)

    def test_timeout_bounds_the_whole_series(self):
        r = self.receiver(default=(503, {}, b""))
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                            "OTEL_EXPORTER_OTLP_TIMEOUT": "1500"},
                                           "--initial-backoff-ms", "100",
                                           "--max-backoff-ms", "200")
        self.assertEqual(code, 0, stderr)
        outcome = self.assert_outcome(events, 0, 5, "export_failed")
        self.assertLessEqual(outcome["elapsed_ms"], 1500 + 300)
        self.assertGreaterEqual(len(r.requests), 4)
        self.assertEqual(len(events["error"]), 1)
        self.assertIn("gave up", events["error"][0]["message"])
        self.assertIn("HTTP 503", events["error"][0]["message"])

    def test_retry_after_beyond_the_timeout_gives_up_at_once(self):
        r = self.receiver(default=(503, {"Retry-After": "30"}, b""))
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                            "OTEL_EXPORTER_OTLP_TIMEOUT": "5000"})
        self.assertEqual(code, 0, stderr)
        outcome = self.assert_outcome(events, 0, 5, "export_failed")
        self.assertLess(outcome["elapsed_ms"], 1000)
        self.assertEqual(len(r.requests), 1)
        self.assertEqual(len(events["error"]), 1)

    def test_receiver_down_is_retried_within_the_timeout(self):
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": url,
                                            "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"},
                                           "--initial-backoff-ms", "50",
                                           "--max-backoff-ms", "100")
        self.assertEqual(code, 0, stderr)
        outcome = self.assert_outcome(events, 0, 5, "export_failed")
        self.assertLessEqual(outcome["elapsed_ms"], 1300)
        self.assertGreaterEqual(events["stats"][0]["requests"], 3)
        self.assertEqual(len(events["error"]), 1)

    # ------------------------------------------------------------------ rejections

    def test_400_drops_the_batch_with_one_error_line(self):
        r = self.receiver([(400, {"Content-Type": "application/json"},
                            b'{"code":3,"message":"bad trace id"}')])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url})
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 0, 5, "rejected")
        self.assertEqual(len(r.requests), 1, "a 4xx is never retried")
        self.assertEqual(len(events["error"]), 1)
        message = events["error"][0]["message"]
        self.assertIn("HTTP 400", message)
        self.assertIn("bad trace id", message)
        self.assertIn("dropped 5 spans", message)
        self.assertEqual(events["stats"][0]["spans_rejected"], 5)

    def test_500_is_not_retried(self):
        r = self.receiver([(500, {"Content-Type": "text/plain"}, b"internal trouble")])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url})
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 0, 5, "export_failed")
        self.assertEqual(len(r.requests), 1)
        self.assertIn("internal trouble", events["error"][0]["message"])

    def test_partial_success_in_protobuf_is_counted(self):
        body = partial_success_protobuf(2, "2 spans too old")
        r = self.receiver([(200, {"Content-Type": "application/x-protobuf"}, body)])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url})
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 3, 2, "rejected")
        self.assertEqual(len(r.requests), 1, "a partial success is not retried")
        self.assertEqual(len(events["error"]), 1)
        self.assertIn("2 spans too old", events["error"][0]["message"])
        self.assertEqual(events["stats"][0]["spans_exported"], 3)
        self.assertEqual(events["stats"][0]["spans_rejected"], 2)

    def test_http_json_protocol_and_json_partial_success(self):
        _, expected_json = encoded_bodies(self.sandbox)
        answer = b'{"partialSuccess":{"rejectedSpans":"1","errorMessage":"one bad span"}}'
        r = self.receiver([(200, {"Content-Type": "application/json"}, answer)])
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 4, 1, "rejected")
        request = r.requests[0]
        self.assertEqual(request["headers"]["content-type"], "application/json")
        self.assertEqual(json.loads(request["body"]), json.loads(expected_json))
        self.assertIn("one bad span", events["error"][0]["message"])

    # ------------------------------------------------------------------ request shape

    def test_gzip_body_decompresses_to_the_encoded_batch(self):
        expected_pb, _ = encoded_bodies(self.sandbox)
        r = self.receiver()
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"},
                                           "--repeat", "20")
        self.assertEqual(code, 0, stderr)
        self.assert_outcome(events, 100, 0, "")
        request = r.requests[0]
        self.assertEqual(request["headers"]["content-encoding"], "gzip")
        body = gzip.decompress(request["body"])
        self.assertEqual(span_ids(body), SPAN_IDS * 20)
        self.assertLess(len(request["body"]), len(body) // 4, "repeated spans compress")
        # One span set alone encodes to exactly what `encode` writes.
        code, _, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                       "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
        self.assertEqual(code, 0, stderr)
        self.assertEqual(gzip.decompress(r.requests[1]["body"]), expected_pb)

    def test_configured_headers_arrive_decoded(self):
        r = self.receiver()
        code, events, stderr, _ = run_send({
            "OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret%20value%2C1 , x-tenant=acme",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=override,x-extra=%3D"})
        self.assertEqual(code, 0, stderr)
        headers = r.requests[0]["headers"]
        self.assertEqual(headers["api-key"], "secret value,1")
        self.assertEqual(headers["x-tenant"], "override")
        self.assertEqual(headers["x-extra"], "=")
        self.assertEqual(headers["content-type"], "application/x-protobuf")
        self.assertTrue(headers["user-agent"].startswith("vigil-telemetry/"))
        self.assertNotIn("expect", headers)

    def test_endpoint_rules(self):
        r = self.receiver()
        run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url + "/base/"})
        run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url + "/base"})
        run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url + "/ignored",
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": r.url + "/custom/ingest"})
        self.assertEqual([q["path"] for q in r.requests],
                         ["/base/v1/traces", "/base/v1/traces", "/custom/ingest"])

    def test_one_connection_is_kept_alive(self):
        r = self.receiver()
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url},
                                           "--batches", "4")
        self.assertEqual(code, 0, stderr)
        self.assertEqual([o["exported"] for o in events["outcome"]], [5, 5, 5, 5])
        self.assertEqual(len({q["client_port"] for q in r.requests}), 1)

    # ------------------------------------------------------------------ shutdown

    def test_shutdown_ends_a_backoff_wait_at_once(self):
        r = self.receiver(default=(503, {"Retry-After": "20"}, b""))
        code, events, stderr, wall = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                               "OTEL_EXPORTER_OTLP_TIMEOUT": "60000"},
                                              "--shutdown-after-ms", "300")
        self.assertEqual(code, 0, stderr)
        outcome = self.assert_outcome(events, 0, 5, "shutdown")
        self.assertLess(outcome["elapsed_ms"], 1500)
        self.assertEqual(len(r.requests), 1)
        self.assertEqual(len(events["error"]), 1)
        self.assertIn("shutdown", events["error"][0]["message"])
        self.assertLess(wall, 5)

    def test_shutdown_aborts_a_hanging_request_at_its_deadline(self):
        r = self.receiver(default=HANG)
        code, events, stderr, _ = run_send({"OTEL_EXPORTER_OTLP_ENDPOINT": r.url,
                                            "OTEL_EXPORTER_OTLP_TIMEOUT": "60000"},
                                           "--shutdown-after-ms", "300",
                                           "--shutdown-grace-ms", "400")
        self.assertEqual(code, 0, stderr)
        outcome = self.assert_outcome(events, 0, 5, "shutdown")
        self.assertGreaterEqual(outcome["elapsed_ms"], 550, "the grace period is granted")
        self.assertLess(outcome["elapsed_ms"], 1700)

    # ------------------------------------------------------------------ configuration

    def test_malformed_variables_are_named(self):
        cases = {
            "OTEL_EXPORTER_OTLP_TIMEOUT": "soon",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "-5",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "brotli",
            "OTEL_EXPORTER_OTLP_HEADERS": "novalue",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=%zz",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector/v1/traces",
        }
        for variable, value in cases.items():
            with self.subTest(variable=variable):
                code, events, stderr, _ = run_send({variable: value})
                self.assertEqual(code, 2)
                self.assertIn(variable, stderr)
                self.assertEqual(events["outcome"], [])


class OtlpFileExportTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()

    def tearDown(self):
        self.sandbox.close()

    def test_each_batch_is_one_otlp_json_line(self):
        _, expected_json = encoded_bodies(self.sandbox)
        path = self.sandbox.dir / "traces.jsonl"
        path.write_text("", encoding="utf-8")
        code, events, stderr, _ = run_send({"VIGIL_TRACES_FILE": str(path)},
                                           "--batches", "3", mode="file")
        self.assertEqual(code, 0, stderr)
        self.assertEqual([o["exported"] for o in events["outcome"]], [5, 5, 5])
        lines = path.read_text(encoding="utf-8").split("\n")
        self.assertEqual(lines[-1], "", "every line ends with a newline")
        self.assertEqual(len(lines), 4)
        for line in lines[:-1]:
            self.assertEqual(json.loads(line), json.loads(expected_json))
        # A second run appends.
        run_send({"VIGIL_TRACES_FILE": str(path)}, mode="file")
        self.assertEqual(len(path.read_text(encoding="utf-8").splitlines()), 4)

    def test_unwritable_path_fails_at_start(self):
        code, _, stderr, _ = run_send(
            {"VIGIL_TRACES_FILE": str(self.sandbox.dir / "missing-dir" / "t.jsonl")},
            mode="file")
        self.assertEqual(code, 1)
        self.assertIn("missing-dir", stderr)


if __name__ == "__main__":
    unittest.main()

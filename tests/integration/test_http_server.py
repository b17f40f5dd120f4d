"""The HTTP runtime as a real process: vigil-echo (built on libvigil_http) on loopback,
driven by hand-written HTTP/1.1 over raw sockets. Bodies arrive intact whatever their
framing, connections are kept alive, request ids are kept or replaced, every limit and
timeout answers with its status as problem+json and leaves the server serving, the admin
port exposes metrics Prometheus' own tools accept, each request is one access-log line,
and SIGTERM drains in-flight requests and flushes their spans."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (ECHO_BINARY, GENERATED_ID_RE, PatternChecker, PeerClosed, build_request,
                     RawConnection, REQUEST_ID_RE, Sandbox, SparseBody, access_records,
                     assert_memory_below, assert_problem, binary, fnv1a64_hex, free_port, http_get,
                     metric_samples, metric_sum, read_peak_rss, start_echo,
                     traces_file_spans, wait_for)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
EMPTY_FNV = "cbf29ce484222325"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"
MiB = 1 << 20
# Streamed through vigil-echo directly; its peak RSS must stay below STREAM_RSS_BOUND.
STREAM_BYTES = 256 * MiB
STREAM_RSS_BOUND = 64 * MiB


def one(port, method, target, headers=None, body=None, chunked=False, timeout=10.0):
    """One request on a fresh connection; returns the Response."""
    with RawConnection(port, timeout=timeout) as c:
        return c.exchange(method, target, headers, body, chunked)


def echo_json(test, response):
    test.assertEqual(response.status, 200, response)
    test.assertTrue((response.header("Content-Type") or "").startswith("application/json"),
                    response)
    return response.json()


class ServerTestCase(unittest.TestCase):
    """One vigil-echo per class, started with ENV."""

    ENV = {}

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        cls.addClassCleanup(cls.sandbox.close)
        cls.echo = start_echo(cls.sandbox, env=cls.ENV)

    def assert_serves(self):
        """The server is alive and answers a normal request on a new connection."""
        self.assertTrue(self.echo.alive(), f"vigil-echo died:\n{self.echo.proc.output()[-3000:]}")
        r = one(self.echo.port, "POST", "/echo/after", {"X-Request-Id": "after-1"}, b"ok")
        answer = echo_json(self, r)
        self.assertEqual(answer["body_bytes"], 2)
        self.assertEqual(answer["body_fnv1a"], fnv1a64_hex(b"ok"))


class EchoBasicsTest(ServerTestCase):
    ENV = {"VIGIL_HTTP_MAX_BODY_BYTES": str(1 << 30)}

    def test_get_echoes_method_target_and_headers(self):
        r = one(self.echo.port, "GET", "/echo/a/b?x=1&y=%20z",
                {"X-Custom": "Value 1", "Accept": "*/*"})
        answer = echo_json(self, r)
        self.assertEqual(answer["method"], "GET")
        self.assertEqual(answer["target"], "/echo/a/b?x=1&y=%20z")
        self.assertEqual(answer["headers"].get("x-custom"), "Value 1")
        self.assertEqual(answer["body_bytes"], 0)
        self.assertEqual(answer["body_fnv1a"], EMPTY_FNV)

    def test_post_with_content_length(self):
        body = os.urandom(100_000) + b"\r\n\r\n0\r\n\x00"
        answer = echo_json(self, one(self.echo.port, "POST", "/echo/upload", body=body))
        self.assertEqual(answer["method"], "POST")
        self.assertEqual(answer["body_bytes"], len(body))
        self.assertEqual(answer["body_fnv1a"], fnv1a64_hex(body))

    def test_post_chunked(self):
        chunks = [os.urandom(n) for n in (1, 10, 4096, 65536, 3, 70_000)]
        r = one(self.echo.port, "POST", "/echo/chunked", body=chunks, chunked=True)
        answer = echo_json(self, r)
        whole = b"".join(chunks)
        self.assertEqual(answer["body_bytes"], len(whole))
        self.assertEqual(answer["body_fnv1a"], fnv1a64_hex(whole))

    def test_empty_bodies(self):
        for chunked in (False, True):
            r = one(self.echo.port, "PUT", "/echo/empty", body=b"" if not chunked else [],
                    chunked=chunked)
            answer = echo_json(self, r)
            self.assertEqual((answer["method"], answer["body_bytes"], answer["body_fnv1a"]),
                             ("PUT", 0, EMPTY_FNV), f"chunked={chunked}")

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        body = os.urandom(5000)
        with RawConnection(self.echo.port) as c:
            local = c.sock.getsockname()
            answers = [
                echo_json(self, c.exchange("GET", "/echo/1")),
                echo_json(self, c.exchange("POST", "/echo/2", body=body)),
                echo_json(self, c.exchange("POST", "/echo/3", body=[body[:100], body[100:]],
                                           chunked=True)),
            ]
            miss = c.exchange("GET", "/status/404")
            assert_problem(self, miss, 404)
            answers.append(echo_json(self, c.exchange("DELETE", "/echo/5")))
            self.assertEqual(c.sock.getsockname(), local)
        self.assertEqual([a["target"] for a in answers],
                         ["/echo/1", "/echo/2", "/echo/3", "/echo/5"])
        self.assertEqual(answers[1]["body_fnv1a"], fnv1a64_hex(body))
        self.assertEqual(answers[2]["body_fnv1a"], fnv1a64_hex(body))

    def test_pipelined_requests_are_answered_in_order(self):
        body = b"pipelined body"
        with RawConnection(self.echo.port) as c:
            c.send(build_request("GET", "/echo/p1") + build_request("POST", "/echo/p2", body=body)
                   + build_request("GET", "/echo/p3"))
            got = [echo_json(self, c.read_response()) for _ in range(3)]
        self.assertEqual([a["target"] for a in got], ["/echo/p1", "/echo/p2", "/echo/p3"])
        self.assertEqual(got[1]["body_fnv1a"], fnv1a64_hex(body))

    def test_connection_close_is_honoured(self):
        with RawConnection(self.echo.port) as c:
            r = c.exchange("GET", "/echo/bye", {"Connection": "close"})
            echo_json(self, r)
            closed, extra = c.wait_closed(5)
            self.assertTrue(closed, "the server kept a Connection: close connection open")
            self.assertEqual(extra, b"")

    def test_request_id_kept_when_well_formed(self):
        for rid in ("req-42", "A.b:c-9", "x" * 64):
            r = one(self.echo.port, "GET", "/echo/id", {"X-Request-Id": rid})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header_all("X-Request-Id"), [rid])

    def test_request_id_replaced_when_malformed_or_missing(self):
        seen = set()
        for rid in ("x" * 65, "y" * 200, "has spaces in it", "semi;colon", "ünïcode", None):
            headers = {"X-Request-Id": rid} if rid is not None else {}
            r = one(self.echo.port, "GET", "/echo/id", headers)
            self.assertEqual(r.status, 200, r)
            got = r.header_all("X-Request-Id")
            self.assertEqual(len(got), 1, f"{rid!r}: {r.headers}")
            self.assertNotEqual(got[0], rid)
            self.assertRegex(got[0], GENERATED_ID_RE, f"sent {rid!r}")
            seen.add(got[0])
        self.assertEqual(len(seen), 6, "generated ids must differ")

    def test_every_response_has_a_request_id(self):
        cases = [("GET", "/status/404", None), ("GET", "/status/503", None),
                 ("POST", "/slow", None), ("GET", "/no/such/route", None),
                 ("BREW", "/echo/pot", None), ("GET", "/bytes/10", None)]
        for method, target, _ in cases:
            r = one(self.echo.port, method, target)
            rid = r.header("X-Request-Id")
            self.assertIsNotNone(rid, f"{method} {target}: {r}")
            self.assertRegex(rid, REQUEST_ID_RE)
        with RawConnection(self.echo.port) as c:
            c.send(b"NOT A REQUEST\r\n\r\n")
            r = c.read_response()
            self.assertRegex(r.header("X-Request-Id") or "", REQUEST_ID_RE, r)

    def test_status_endpoint(self):
        for code in (400, 404, 418, 500, 503):
            assert_problem(self, one(self.echo.port, "GET", f"/status/{code}"), code)
        self.assertEqual(one(self.echo.port, "GET", "/status/201").status, 201)
        for code in (204, 304):  # answers without a body
            with self.subTest(status=code):
                try:
                    r = one(self.echo.port, "GET", f"/status/{code}")
                except PeerClosed:
                    self.fail(f"GET /status/{code}: the connection was closed without a response")
                self.assertEqual((r.status, r.body), (code, b""), r)

    def test_unknown_path_is_404_problem(self):
        assert_problem(self, one(self.echo.port, "GET", "/nowhere/at/all"), 404)

    def test_bytes_is_streamed_chunked_with_the_pattern(self):
        checker = PatternChecker()
        with RawConnection(self.echo.port) as c:
            r = c.exchange("GET", "/bytes/100000", sink=checker)
        self.assertEqual(r.status, 200)
        self.assertIn("chunked", (r.header("Transfer-Encoding") or "").lower(), r.headers)
        self.assertEqual(checker.count, 100000)
        self.assertIsNone(checker.first_mismatch)
        zero = one(self.echo.port, "GET", "/bytes/0")
        self.assertEqual((zero.status, zero.body), (200, b""))

    def test_close_endpoint_closes_without_answering(self):
        with RawConnection(self.echo.port) as c:
            c.request("GET", "/close")
            closed, seen = c.wait_closed(5)
        self.assertTrue(closed, "/close left the connection open")
        self.assertEqual(seen, b"", "/close must not answer")
        self.assert_serves()

    def test_slow_endpoint(self):
        r = one(self.echo.port, "GET", "/slow?ms=200")
        answer = echo_json(self, r)
        self.assertEqual(answer, {"slept_ms": 200})
        self.assertGreaterEqual(r.elapsed, 0.19)

    def test_large_body_streams_through_echo_in_bounded_memory(self):
        body = SparseBody(STREAM_BYTES)
        with RawConnection(self.echo.port, timeout=60) as c:
            c.send(f"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Length: {body.size}\r\n\r\n"
                   .encode())
            for chunk in body.chunks():
                c.send(chunk)
            answer = echo_json(self, c.read_response())
            self.assertEqual(answer["body_bytes"], body.size)
            self.assertEqual(answer["body_fnv1a"], body.fnv1a_hex())
            checker = PatternChecker()
            r = c.exchange("GET", f"/bytes/{STREAM_BYTES}", sink=checker)
            self.assertEqual(r.status, 200)
            self.assertEqual(checker.count, STREAM_BYTES)
            self.assertIsNone(checker.first_mismatch)
        peak = read_peak_rss(self.echo.pid)
        assert_memory_below(self, peak, STREAM_RSS_BOUND,
                            f"vigil-echo peaked at {peak / MiB:.1f} MiB "
                            f"for 2 x {STREAM_BYTES // MiB} MiB")


class AdminPortTest(ServerTestCase):
    def test_health_and_readiness(self):
        self.assertEqual(http_get(self.echo.admin + "/healthz")[0], 200)
        self.assertEqual(http_get(self.echo.admin + "/readyz")[0], 200)

    def test_public_port_does_not_serve_admin_paths(self):
        for path in ("/metrics", "/healthz", "/readyz"):
            r = one(self.echo.port, "GET", path)
            assert_problem(self, r, 404)
            self.assertNotIn(b"http_server_request_duration_seconds", r.body)

    def test_metrics_text_passes_promtool_and_uses_route_templates(self):
        for target in ("/echo/raw/path/123", "/echo/raw/path/456", "/status/503",
                       "/status/404", "/bytes/5"):
            one(self.echo.port, "GET", target)
        one(self.echo.port, "BREW", "/echo/pot")
        status, headers, body = http_get(self.echo.admin + "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"),
                        headers["Content-Type"])
        check = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())

        text = body.decode()
        samples = metric_samples(text, "http_server_request_duration_seconds_count")
        series = {(l.get("http_request_method"), l.get("http_route"),
                   l.get("http_response_status_code")): v for l, v in samples}
        self.assertGreaterEqual(series.get(("GET", "/echo/*", "200"), 0), 2, series)
        self.assertGreaterEqual(series.get(("GET", "/status/{code}", "503"), 0), 1, series)
        self.assertGreaterEqual(series.get(("GET", "/status/{code}", "404"), 0), 1, series)
        self.assertGreaterEqual(series.get(("GET", "/bytes/{n}", "200"), 0), 1, series)
        for method, route, _ in series:
            self.assertNotIn("raw/path", route or "", "a raw path became a label value")
            self.assertNotIn("/status/503", route or "")
            self.assertNotEqual(method, "BREW", "unknown methods must be labelled _OTHER")
        buckets = metric_samples(text, "http_server_request_duration_seconds_bucket")
        les = sorted({l["le"] for l, _ in buckets}, key=lambda x: float(x))
        self.assertEqual(les, ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5",
                               "0.75", "1", "2.5", "5", "7.5", "10", "+Inf"])
        self.assertIn("http_server_active_requests", text)

    def test_openmetrics_by_accept_with_exemplars(self):
        one(self.echo.port, "GET", "/echo/traced", {"traceparent": TRACEPARENT})
        status, headers, body = http_get(self.echo.admin + "/metrics", {"Accept": OPENMETRICS})
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("application/openmetrics-text"),
                        headers["Content-Type"])
        text = body.decode()
        self.assertTrue(text.endswith("# EOF\n"), text[-200:])
        self.assertIn(f'# {{trace_id="{TRACE_ID}"', text)


class StartupTest(unittest.TestCase):
    def test_help(self):
        run = subprocess.run([binary(ECHO_BINARY), "--help"], capture_output=True, timeout=10)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn(b"Usage", run.stdout)
        self.assertIn(b"vigil-echo", run.stdout)

    def test_bad_variable_exits_2_naming_it(self):
        cases = {"VIGIL_HTTP_MAX_BODY_BYTES": "lots", "VIGIL_PORT": "70000",
                 "VIGIL_HTTP_HEADER_TIMEOUT": "-5", "VIGIL_HTTP_MAX_CONNECTIONS": "many",
                 "VIGIL_ACCESS_LOG": "perhaps"}
        for name, value in cases.items():
            env = {"PATH": os.environ["PATH"], "VIGIL_PORT": str(free_port()),
                   "VIGIL_ADMIN_PORT": str(free_port()), name: value}
            run = subprocess.run([binary(ECHO_BINARY)], env=env, capture_output=True, timeout=10)
            self.assertEqual(run.returncode, 2, f"{name}={value}: {run.stderr!r}")
            self.assertIn(name.encode(), run.stderr, f"{name}={value}")

    def test_port_in_use_fails_start(self):
        # Not in the spec: an SRE expects a non-zero exit that names the port, not a
        # process that runs without listening.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = {"PATH": os.environ["PATH"], "VIGIL_PORT": str(port),
                   "VIGIL_ADMIN_PORT": str(free_port())}
            run = subprocess.run([binary(ECHO_BINARY)], env=env, capture_output=True, timeout=10)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(str(port).encode(), run.stderr + run.stdout)


class LimitsTest(ServerTestCase):
    HEADER_TIMEOUT_MS = 1000
    BODY_TIMEOUT_MS = 1000
    IDLE_TIMEOUT_MS = 2000
    MAX_HEADER = 4096
    MAX_BODY = 65536
    ENV = {"VIGIL_HTTP_MAX_HEADER_BYTES": str(MAX_HEADER),
           "VIGIL_HTTP_MAX_BODY_BYTES": str(MAX_BODY),
           "VIGIL_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT_MS),
           "VIGIL_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT_MS),
           "VIGIL_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT_MS)}

    def tearDown(self):
        self.assert_serves()

    def test_header_section_too_large_is_431(self):
        ok = one(self.echo.port, "GET", "/echo/h", {"X-Pad": "a" * 3000})
        self.assertEqual(ok.status, 200, ok)
        one_big = one(self.echo.port, "GET", "/echo/h", {"X-Pad": "a" * 5000})
        many = one(self.echo.port, "GET", "/echo/h",
                   [(f"X-Pad-{i}", "b" * 90) for i in range(60)])  # ~6 KB of small headers
        self.assertEqual((one_big.status, many.status), (431, 431), (one_big, many))
        assert_problem(self, one_big, 431)
        assert_problem(self, many, 431)

    # Both kinds of route: /echo/* streams its body to the handler, GET /slow has the
    # server buffer it. VIGIL_HTTP_MAX_BODY_BYTES is the operator's bound for both.
    BODY_ROUTES = (("POST", "/echo/b"), ("GET", "/slow?ms=0"))

    def test_declared_body_too_large_is_413_before_the_body(self):
        exact = one(self.echo.port, "POST", "/echo/b", body=b"z" * self.MAX_BODY)
        self.assertEqual(echo_json(self, exact)["body_bytes"], self.MAX_BODY)
        for method, target in self.BODY_ROUTES:
            with self.subTest(route=f"{method} {target}"):
                with RawConnection(self.echo.port) as c:
                    c.send(b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                           % (method.encode(), target.encode(), self.MAX_BODY + 1))
                    r = c.read_response()
                self.assertEqual(r.status, 413, r)
                self.assertLess(r.elapsed, self.BODY_TIMEOUT_MS / 1000 * 0.9,
                                "413 must be decided on the headers, not after waiting "
                                "for the body")
                assert_problem(self, r, 413)

    def test_chunked_body_growing_past_the_limit_is_413(self):
        chunk = b"c" * 16384
        for method, target in self.BODY_ROUTES:
            with self.subTest(route=f"{method} {target}"):
                with RawConnection(self.echo.port) as c:
                    c.send(b"%s %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           % (method.encode(), target.encode()))
                    sent = 0
                    for _ in range(8):  # 128 KiB, twice the limit; stop once the server answers
                        if c.readable(0.05):
                            break
                        try:
                            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        except (BrokenPipeError, ConnectionResetError):
                            break
                        sent += len(chunk)
                    else:
                        c.send(b"0\r\n\r\n")
                    r = c.read_response()
                self.assertEqual(r.status, 413, r)
                self.assertGreater(sent, self.MAX_BODY,
                                   "answered before the body exceeded the limit")
                assert_problem(self, r, 413)

    def test_headers_that_stop_arriving_are_408(self):
        with RawConnection(self.echo.port) as c:
            c.send(b"GET /echo/x HTTP/1.1\r\nHost: x\r\n")
            r = c.read_response()
            closed, _ = c.wait_closed(3)
        self.assertEqual(r.status, 408, r)
        self.assertGreater(r.elapsed, self.HEADER_TIMEOUT_MS / 1000 * 0.8)
        self.assertLess(r.elapsed, self.HEADER_TIMEOUT_MS / 1000 + 3)
        self.assertTrue(closed, "the connection stays open after a 408")
        assert_problem(self, r, 408)

    def test_headers_trickling_in_are_408(self):
        # A slowloris client: one byte every 200 ms never completes the header section.
        # The timeout covers the whole section, so progress does not extend it.
        with RawConnection(self.echo.port) as c:
            c.send(b"GET /echo/x HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            start = time.monotonic()
            while time.monotonic() - start < 10 and not c.readable(0.2):
                try:
                    c.send(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    break
            r = c.read_response()
            r.elapsed = time.monotonic() - start
        self.assertEqual(r.status, 408, r)
        self.assertLess(r.elapsed, self.HEADER_TIMEOUT_MS / 1000 + 3)
        assert_problem(self, r, 408)

    def test_stalled_body_is_408(self):
        with RawConnection(self.echo.port) as c:
            c.send(b"POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"s" * 10)
            r = c.read_response()
        self.assertEqual(r.status, 408, r)
        self.assertGreater(r.elapsed, self.BODY_TIMEOUT_MS / 1000 * 0.8)
        self.assertLess(r.elapsed, self.BODY_TIMEOUT_MS / 1000 + 3)
        assert_problem(self, r, 408)

    def test_slow_but_progressing_body_is_not_cut(self):
        # The body timeout is about progress: 8 bytes 300 ms apart take 2.4 s, more than
        # the 1 s timeout, and must still be answered.
        body = b"progress"
        with RawConnection(self.echo.port) as c:
            c.send(b"POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(len(body)):
                time.sleep(0.3)  # the test is about a slow client
                c.send(body[i:i + 1])
            answer = echo_json(self, c.read_response())
        self.assertEqual(answer["body_bytes"], len(body))
        self.assertEqual(answer["body_fnv1a"], fnv1a64_hex(body))

    def test_idle_keep_alive_connection_is_closed_silently(self):
        with RawConnection(self.echo.port) as c:
            echo_json(self, c.exchange("GET", "/echo/1"))
            # Idle for longer than the header timeout but shorter than the idle timeout:
            # the connection is still good (waiting for a next request is not a slow header).
            time.sleep(self.HEADER_TIMEOUT_MS / 1000 * 1.3)
            echo_json(self, c.exchange("GET", "/echo/2"))
            start = time.monotonic()
            closed, seen = c.wait_closed(self.IDLE_TIMEOUT_MS / 1000 + 5)
            waited = time.monotonic() - start
        self.assertTrue(closed, "an idle keep-alive connection was never closed")
        self.assertEqual(seen, b"", "the idle close must be silent")
        self.assertGreater(waited, self.IDLE_TIMEOUT_MS / 1000 * 0.8)

    def test_connection_that_never_sends_is_closed(self):
        with RawConnection(self.echo.port) as c:
            longest = max(self.HEADER_TIMEOUT_MS, self.IDLE_TIMEOUT_MS) / 1000
            closed, seen = c.wait_closed(longest + 5)
        self.assertTrue(closed, "a connection sending nothing is held open forever")
        self.assertTrue(seen == b"" or seen.startswith(b"HTTP/1.1 408"), seen[:200])

    def test_unknown_method_is_405_never_reaching_a_handler(self):
        for target, allow in (("/echo/pot", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
                              ("/slow", "GET, HEAD")):
            r = one(self.echo.port, "BREW", target)
            assert_problem(self, r, 405)
            self.assertEqual(r.header("Allow"), allow)

    def test_method_not_allowed_is_405_with_allow(self):
        r = one(self.echo.port, "POST", "/slow", body=b"")
        assert_problem(self, r, 405)
        allow = r.header("Allow")
        self.assertIsNotNone(allow, r.headers)
        self.assertIn("GET", [m.strip() for m in allow.split(",")])
        self.assertNotIn("POST", [m.strip() for m in allow.split(",")])

    def test_malformed_request_line_is_400(self):
        for raw in (b"NOT A REQUEST\r\n\r\n", b"GET /echo/x HTTP/9\r\nHost: x\r\n\r\n",
                    b"GET\r\n\r\n"):
            with self.subTest(request=raw):
                with RawConnection(self.echo.port) as c:
                    c.send(raw)
                    r = c.read_response()
                    closed, _ = c.wait_closed(3)
                self.assertEqual(r.status, 400, r)
                self.assertTrue(closed, f"connection left open after 400 for {raw!r}")
                assert_problem(self, r, 400)

    def test_malformed_header_is_400(self):
        for raw in (b"GET /echo/x HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
                    b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                    b"GET /echo/x HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"):
            with self.subTest(request=raw):
                with RawConnection(self.echo.port) as c:
                    c.send(raw)
                    r = c.read_response()
                assert_problem(self, r, 400)


class MaxConnectionsTest(ServerTestCase):
    """VIGIL_HTTP_MAX_CONNECTIONS bounds the open connections of the process, whatever
    the number of workers the kernel spreads them over."""
    ENV = {"VIGIL_HTTP_MAX_CONNECTIONS": "4", "VIGIL_WORKERS": "2"}

    def test_fifth_connection_waits_for_a_free_slot(self):
        held = []
        try:
            for i in range(4):
                c = RawConnection(self.echo.port, timeout=5)
                held.append(c)
                try:
                    r = c.exchange("GET", f"/echo/held-{i}")
                except (TimeoutError, socket.timeout):
                    self.fail(f"connection {i + 1} was not served within 5 s while only {i} "
                              f"other connections were open (limit 4, "
                              f"VIGIL_WORKERS={self.ENV['VIGIL_WORKERS']})")
                echo_json(self, r)
            fifth = RawConnection(self.echo.port, timeout=10)  # the kernel backlog accepts it
            held.append(fifth)
            fifth.request("GET", "/echo/fifth")
            self.assertFalse(fifth.readable(1.0),  # the test is about waiting
                             "a 5th connection was served while 4 were open")
            # The admin port is a separate listener and stays available.
            self.assertEqual(http_get(self.echo.admin + "/healthz")[0], 200)
            held[0].close()
            try:
                r = fifth.read_response()
            except (TimeoutError, socket.timeout):
                self.fail("the 5th connection was not served within 10 s after one of the 4 closed")
            self.assertEqual(echo_json(self, r)["target"], "/echo/fifth")

            # A crowd behind the limit: all served once slots free up, none lost.
            crowd = []
            for i in range(20):
                c = RawConnection(self.echo.port)
                held.append(c)
                c.request("GET", f"/echo/crowd-{i}", {"Connection": "close"})
                crowd.append(c)
            for c in held[1:5]:
                c.close()
            for i, c in enumerate(crowd):
                self.assertEqual(echo_json(self, c.read_response())["target"], f"/echo/crowd-{i}")
        finally:
            for c in held:
                c.close()
        self.assert_serves()


class MaxConnectionsOneWorkerTest(MaxConnectionsTest):
    ENV = {"VIGIL_HTTP_MAX_CONNECTIONS": "4", "VIGIL_WORKERS": "1"}


class AccessLogTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def test_one_line_per_request_with_level_by_status(self):
        echo = start_echo(self.sandbox)
        sent = {  # request id -> (method, target, body, expected status, level)
            "log-get": ("GET", "/echo/a/1", None, 200, "info"),
            "log-post": ("POST", "/echo/b", b"body", 200, "info"),
            "log-404": ("GET", "/status/404", None, 404, "warn"),
            "log-503": ("GET", "/status/503", None, 503, "error"),
            "log-405": ("POST", "/slow", b"", 405, "warn"),
            "log-nope": ("GET", "/no/such/path", None, 404, "warn"),
            "log-brew": ("BREW", "/echo/pot", None, 405, "warn"),
            "log-slow": ("GET", "/slow?ms=300", None, 200, "info"),
            "log-bytes": ("GET", "/bytes/1000", None, 200, "info"),
        }
        headers_for = lambda rid: {"X-Request-Id": rid, "traceparent": TRACEPARENT}
        for rid, (method, target, body, status, _) in sent.items():
            r = one(echo.port, method, target, headers_for(rid), body)
            self.assertEqual(r.status, status, f"{method} {target}: {r}")
        # A last request; once its line is there, any duplicate of the earlier ones would be.
        one(echo.port, "GET", "/echo/marker", {"X-Request-Id": "log-marker"})
        wait_for(lambda: any(l.get("request_id") == "log-marker"
                             for l in access_records(echo.proc)),
                 what="the marker's access-log line")
        lines = access_records(echo.proc)
        by_id = {}
        for line in lines:
            by_id.setdefault(line.get("request_id"), []).append(line)

        for rid, (method, target, _, status, level) in sent.items():
            with self.subTest(request=f"{method} {target}"):
                got = by_id.get(rid, [])
                self.assertEqual(len(got), 1, f"{rid}: {len(got)} access lines: {got}")
                line = got[0]
                self.assertEqual(list(line)[:9], ["time", "level", "msg", "service", "version",
                                                  "env", "trace_id", "span_id", "request_id"], line)
                self.assertEqual(line["level"], level, line)
                self.assertEqual(line["http.response.status_code"], status, line)
                self.assertEqual(line["trace_id"], TRACE_ID, line)
                self.assertRegex(line["span_id"], r"^[0-9a-f]{16}$")
                self.assertNotEqual(line["span_id"], PARENT_SPAN)
                self.assertIsInstance(line["duration_ms"], (int, float))
                self.assertGreaterEqual(line["duration_ms"], 0)
                if method != "BREW":
                    self.assertEqual(line["http.request.method"], method, line)
                else:
                    self.assertIn(line["http.request.method"], ("_OTHER", "BREW"), line)
                self.assertIn("http.route", line)
        routes = {rid: by_id.get(rid, [{}])[0].get("http.route") for rid in sent}
        self.assertEqual(routes["log-get"], "/echo/*")
        self.assertEqual(routes["log-404"], "/status/{code}")
        self.assertEqual(routes["log-503"], "/status/{code}")
        self.assertEqual(routes["log-405"], "/slow")
        self.assertEqual(routes["log-bytes"], "/bytes/{n}")
        self.assertNotEqual(routes["log-nope"], "/no/such/path", "raw path used as route")
        self.assertGreaterEqual(by_id.get("log-slow", [{}])[0].get("duration_ms", 0), 290)
        self.assertEqual(len(lines), len(set(l["span_id"] for l in lines)))

    def test_log_file_and_switching_the_access_log_off(self):
        log_file = self.sandbox.dir / "echo-log.jsonl"
        echo = start_echo(self.sandbox, env={"VIGIL_LOG_FILE": str(log_file)}, name="to-file")
        one(echo.port, "GET", "/echo/f", {"X-Request-Id": "to-file-1"})
        wait_for(lambda: log_file.exists() and '"to-file-1"' in log_file.read_text(),
                 what="the access line in VIGIL_LOG_FILE")
        quiet = start_echo(self.sandbox, env={"VIGIL_ACCESS_LOG": "false"}, name="quiet")
        for _ in range(3):
            self.assertEqual(one(quiet.port, "GET", "/echo/q").status, 200)
        self.assertEqual(quiet.proc.stop(), 0)
        self.assertEqual(access_records(quiet.proc), [])


def start_in_flight(port, count, target, trace_id=TRACE_ID, timeout=20.0):
    """Starts `count` requests, each on its own connection and thread; returns the
    threads and a results list filled with (index, Response or exception)."""
    results = []
    lock = threading.Lock()

    def run(i):
        try:
            with RawConnection(port, timeout=timeout) as c:
                r = c.exchange("GET", target, {
                    "X-Request-Id": f"inflight-{i}",
                    "traceparent": f"00-{trace_id}-{i + 1:016x}-01"})
        except Exception as e:  # recorded; the test asserts on it
            r = e
        with lock:
            results.append((i, r))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    return threads, results


def refused_while_running(server, timeout=5.0):
    """Polls until a new connection to the public port is refused; True when that
    happened while the process was still running (draining)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = server.alive()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                pass
        except ConnectionRefusedError:
            return running
        except OSError:
            pass
        time.sleep(0.01)
    return False


class GracefulShutdownTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def test_sigterm_drains_in_flight_requests_and_flushes_spans(self):
        traces = self.sandbox.dir / "traces.jsonl"
        # A long export delay: the spans reach the file only through the shutdown flush.
        echo = start_echo(self.sandbox, env={"VIGIL_TRACES_FILE": str(traces),
                                             "OTEL_BSP_SCHEDULE_DELAY": "60000"})
        threads, results = start_in_flight(echo.port, 20, "/slow?ms=800")
        wait_for(lambda: metric_sum(echo.admin, "http_server_active_requests", {}) >= 20,
                 timeout=5, interval=0.02, what="20 requests in flight")
        echo.proc.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        # The admin listener stays up while draining and says why it is not ready.
        wait_for(lambda: http_get(echo.admin + "/readyz", timeout=1)[0] == 503,
                 timeout=2, interval=0.01, what="/readyz to answer 503 while draining")
        self.assertTrue(refused_while_running(echo),
                        "new connections were still accepted while draining")
        for t in threads:
            t.join(15)
        code = echo.proc.proc.wait(15)
        self.assertEqual(code, 0, echo.proc.output()[-2000:])

        self.assertEqual(len(results), 20)
        for i, r in sorted(results, key=lambda x: x[0]):
            self.assertNotIsInstance(r, Exception, f"request {i}: {r!r}")
            self.assertEqual(r.status, 200, f"request {i}: {r}")
            self.assertEqual(json.loads(r.body), {"slept_ms": 800})
        self.assertLess(time.monotonic() - signalled, 8)

        spans = [s for s in traces_file_spans(traces) if s.get("traceId") == TRACE_ID]
        self.assertEqual(len(spans), 20, f"{len(spans)} spans of the 20 drained requests")
        self.assertTrue(all(s["name"] == "GET /slow" and s["kind"] == 2 for s in spans), spans[0])
        self.assertEqual({s["parentSpanId"] for s in spans}, {f"{i + 1:016x}" for i in range(20)})
        ids = {l["request_id"] for l in access_records(echo.proc)}
        self.assertTrue({f"inflight-{i}" for i in range(20)} <= ids, "access lines lost at exit")

    def test_shutdown_deadline_cuts_requests_that_outlast_it(self):
        deadline = 0.5
        echo = start_echo(self.sandbox, env={"VIGIL_SHUTDOWN_TIMEOUT": str(int(deadline * 1000))})
        with RawConnection(echo.port, timeout=15) as c:
            c.request("GET", "/slow?ms=8000", {"X-Request-Id": "cut-1"})
            wait_for(lambda: metric_sum(echo.admin, "http_server_active_requests", {}) >= 1,
                     timeout=5, interval=0.02, what="the request in flight")
            start = time.monotonic()
            echo.proc.proc.send_signal(signal.SIGTERM)
            closed, seen = c.wait_closed(12)
            cut_after = time.monotonic() - start
        code = echo.proc.proc.wait(10)
        exit_after = time.monotonic() - start
        self.assertEqual(code, 0)
        self.assertTrue(closed)
        self.assertFalse(seen.startswith(b"HTTP/1.1 200"), "a cut request claimed success")
        with self.subTest("cut at the deadline"):
            self.assertLess(cut_after, deadline + 1.0,
                            f"VIGIL_SHUTDOWN_TIMEOUT={deadline * 1000:.0f} ms, but the request "
                            f"was cut {cut_after:.2f} s after SIGTERM")
            self.assertGreater(cut_after, deadline * 0.8)
        with self.subTest("exit soon after"):
            self.assertLess(exit_after, deadline + 1.5,
                            f"exited {exit_after:.2f} s after SIGTERM")
        with self.subTest("the cut request is logged"):
            self.assertEqual(len([l for l in access_records(echo.proc)
                                  if l.get("request_id") == "cut-1"]), 1,
                             "every request ends in exactly one access-log line")

    def test_sigint_exits_cleanly(self):
        echo = start_echo(self.sandbox)
        self.assertEqual(one(echo.port, "GET", "/echo/x").status, 200)
        echo.proc.proc.send_signal(signal.SIGINT)
        self.assertEqual(echo.proc.proc.wait(10), 0)


if __name__ == "__main__":
    unittest.main()

"""vigil-gateway as a real reverse proxy on loopback, in front of vigil-echo and of
nginx: targets rewritten per route, forwarding headers added and hop-by-hop ones
dropped, one request id and one trace across the hops, bodies of any size streamed in
bounded memory both ways, upstream failures turned into 502/504 problems that show up
in metrics and logs, and SIGTERM draining what was accepted."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (GATEWAY_BINARY, GENERATED_ID_RE, PatternChecker, RawConnection,
                     Receiver, Sandbox, SparseBody, access_records, assert_memory_below,
                     assert_problem, binary,
                     fnv1a64_hex, free_port, http_get, metric_samples, metric_sum,
                     otlp_spans, read_peak_rss, start_echo, start_gateway, start_nginx,
                     wait_for, write_gateway_config)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
MiB = 1 << 20
GiB = 1 << 30
# Streamed through the gateway each way; its peak RSS (VmHWM) must stay under the bound.
LARGE_BYTES = 1 * GiB
GATEWAY_RSS_BOUND = 64 * MiB
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3

NGINX_LOCATIONS = r"""
    location = /empty { return 204; }
    location = /fixed {
      default_type application/json;
      return 200 '{"ok":true,"from":"nginx"}';
    }
    location /reflect {
      default_type application/json;
      add_header X-Upstream-Uri $request_uri always;
      return 200 '{"uri":"$request_uri","method":"$request_method","request_id":"$http_x_request_id","traceparent":"$http_traceparent","content_length":"$content_length","transfer_encoding":"$http_transfer_encoding","xff":"$http_x_forwarded_for"}';
    }
"""


def one(port, method, target, headers=None, body=None, chunked=False, timeout=15.0):
    with RawConnection(port, timeout=timeout) as c:
        return c.exchange(method, target, headers, body, chunked)


def echoed(test, response):
    """What vigil-echo saw, from its answer relayed by the gateway."""
    test.assertEqual(response.status, 200, response)
    return response.json()


def routes_for(echo_url, nginx_url=None, down_port=None, drain=False, big=None):
    routes = [
        {"prefix": "/echo-api", "upstream": echo_url, "strip_prefix": True, "timeout_ms": 5000},
        {"prefix": "/echo-api/v2", "upstream": echo_url, "strip_prefix": True,
         "timeout_ms": 5000},
        {"prefix": "/echo", "upstream": echo_url, "strip_prefix": False, "timeout_ms": 5000},
        {"prefix": "/slow-api", "upstream": echo_url, "strip_prefix": True, "timeout_ms": 300},
        {"prefix": "/small", "upstream": echo_url, "strip_prefix": True, "timeout_ms": 5000,
         "max_body_bytes": 1024},
    ]
    if down_port:
        routes.append({"prefix": "/down", "upstream": f"http://127.0.0.1:{down_port}",
                       "strip_prefix": True, "timeout_ms": 2000})
    if nginx_url:
        routes.append({"prefix": "/nginx", "upstream": nginx_url, "strip_prefix": True,
                       "timeout_ms": 5000})
    if drain:
        routes.append({"prefix": "/drain", "upstream": echo_url, "strip_prefix": True,
                       "timeout_ms": 10000})
    if big:
        for r in routes:
            if r["prefix"] == "/echo-api":
                r["max_body_bytes"] = big
    return routes


def access_line(test, proc, request_id):
    """The one access-log line of `request_id` (waits for it to be written)."""
    lines = wait_for(lambda: [l for l in access_records(proc) if l.get("request_id") == request_id],
                     what=f"the access line of {request_id}")
    test.assertEqual(len(lines), 1, lines)
    return lines[0]


def status_count(admin, route, status):
    return metric_sum(admin, "http_server_request_duration_seconds_count",
                      {"http_route": route, "http_response_status_code": status})


class GatewayProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        cls.addClassCleanup(cls.sandbox.close)
        cls.echo = start_echo(cls.sandbox)
        cls.nginx = start_nginx(cls.sandbox, NGINX_LOCATIONS)
        cls.down_port = free_port()  # nobody listens here
        cls.gateway = start_gateway(cls.sandbox, routes_for(cls.echo.url, cls.nginx.url,
                                                            cls.down_port))

    def get(self, target, headers=None, **kw):
        return one(self.gateway.port, "GET", target, headers, **kw)

    # ---------------------------------------------------------------- routing and bodies

    def test_strip_prefix_rewrites_the_target(self):
        seen = echoed(self, self.get("/echo-api/echo/a/b?x=1&y=%2F"))
        self.assertEqual(seen["method"], "GET")
        self.assertEqual(seen["target"], "/echo/a/b?x=1&y=%2F")
        self.assertEqual(echoed(self, self.get("/echo-api/echo"))["target"], "/echo")

    def test_without_strip_prefix_the_target_is_unchanged(self):
        self.assertEqual(echoed(self, self.get("/echo/raw/path?q=2"))["target"],
                         "/echo/raw/path?q=2")

    def test_longest_prefix_wins_on_whole_segments(self):
        self.assertEqual(echoed(self, self.get("/echo-api/v2/echo/x"))["target"], "/echo/x")
        # "/echo-api/v2x/..." is not under "/echo-api/v2": it goes to "/echo-api" as
        # "/v2x/echo", which vigil-echo answers 404 itself; the gateway's line says which
        # route carried it.
        self.get("/echo-api/v2x/echo", {"X-Request-Id": "seg-v2x"})
        self.assertEqual(access_line(self, self.gateway.proc, "seg-v2x").get("http.route"),
                         "/echo-api/*")
        for target in ("/echo-apix/echo/x", "/echox", "/", "/nothing"):
            assert_problem(self, self.get(target), 404)

    def test_post_content_length_passes_through(self):
        body = os.urandom(200_000)
        seen = echoed(self, one(self.gateway.port, "POST", "/echo-api/echo/up", body=body))
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["body_bytes"], len(body))
        self.assertEqual(seen["body_fnv1a"], fnv1a64_hex(body))

    def test_post_chunked_passes_through(self):
        chunks = [os.urandom(n) for n in (1, 777, 65536, 5, 100_000)]
        seen = echoed(self, one(self.gateway.port, "POST", "/echo-api/echo/up", body=chunks,
                                chunked=True))
        whole = b"".join(chunks)
        self.assertEqual(seen["body_bytes"], len(whole))
        self.assertEqual(seen["body_fnv1a"], fnv1a64_hex(whole))
        headers = seen["headers"]
        # The gateway frames the upstream body itself: one framing, never both.
        self.assertFalse("content-length" in headers and "transfer-encoding" in headers, headers)
        if "transfer-encoding" in headers:
            self.assertEqual(headers["transfer-encoding"].lower(), "chunked")

    def test_keep_alive_through_the_gateway(self):
        with RawConnection(self.gateway.port) as c:
            local = c.sock.getsockname()
            for i in range(5):
                body = os.urandom(1000 * i)
                seen = echoed(self, c.exchange("POST", f"/echo-api/echo/{i}", body=body))
                self.assertEqual((seen["target"], seen["body_fnv1a"]),
                                 (f"/echo/{i}", fnv1a64_hex(body)))
            assert_problem(self, c.exchange("GET", "/echo-api/status/404"), 404)
            self.assertEqual(echoed(self, c.exchange("GET", "/echo-api/echo/last"))["target"],
                             "/echo/last")
            self.assertEqual(c.sock.getsockname(), local)

    def test_route_max_body_bytes_is_413(self):
        self.assertEqual(echoed(self, one(self.gateway.port, "POST", "/small/echo/s",
                                          body=b"k" * 1024))["body_bytes"], 1024)
        assert_problem(self, one(self.gateway.port, "POST", "/small/echo/s", body=b"k" * 4096),
                       413)

    def test_upstream_status_and_problem_pass_through(self):
        r = self.get("/echo-api/status/503", {"X-Request-Id": "pass-503"})
        assert_problem(self, r, 503)
        self.assertEqual(r.header_all("X-Request-Id"), ["pass-503"])
        with RawConnection(self.gateway.port) as c:  # a body-less answer keeps the connection
            for _ in range(2):
                empty = c.exchange("GET", "/nginx/empty")
                self.assertEqual((empty.status, empty.body), (204, b""), empty)

    def test_streamed_download_passes_through(self):
        checker = PatternChecker()
        with RawConnection(self.gateway.port) as c:
            r = c.exchange("GET", "/echo-api/bytes/300000", sink=checker)
        self.assertEqual(r.status, 200)
        self.assertEqual((checker.count, checker.first_mismatch), (300000, None))

    # ------------------------------------------------------------------------- headers

    def test_forwarded_headers(self):
        seen = echoed(self, self.get("/echo-api/echo/fwd"))["headers"]
        self.assertEqual(seen.get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(seen.get("x-forwarded-proto"), "http")
        seen = echoed(self, self.get("/echo-api/echo/fwd",
                                     {"X-Forwarded-For": "203.0.113.7"}))["headers"]
        self.assertEqual(seen.get("x-forwarded-for"), "203.0.113.7, 127.0.0.1")

    def test_client_request_id_is_kept_upstream_and_in_the_response(self):
        r = self.get("/echo-api/echo/rid", {"X-Request-Id": "client-id-7"})
        self.assertEqual(echoed(self, r)["headers"].get("x-request-id"), "client-id-7")
        self.assertEqual(r.header_all("X-Request-Id"), ["client-id-7"])

    def test_malformed_or_missing_request_id_is_generated_once(self):
        for headers in ({"X-Request-Id": "bad id with spaces"}, {"X-Request-Id": "z" * 100}, {}):
            r = self.get("/echo-api/echo/rid", headers)
            upstream = echoed(self, r)["headers"].get("x-request-id")
            got = r.header_all("X-Request-Id")
            self.assertEqual(len(got), 1, r.headers)
            self.assertRegex(got[0], GENERATED_ID_RE, headers)
            self.assertEqual(upstream, got[0], "upstream and client saw different request ids")

    def test_hop_by_hop_headers_do_not_reach_the_upstream(self):
        headers = [("Connection", "keep-alive, X-Hop-Custom"), ("X-Hop-Custom", "secret"),
                   ("Keep-Alive", "timeout=5, max=7"), ("Proxy-Connection", "keep-alive"),
                   ("TE", "trailers, deflate;q=0.5"), ("Upgrade", "h2c"),
                   ("X-End-To-End", "kept")]
        seen = echoed(self, self.get("/echo-api/echo/hop", headers))["headers"]
        self.assertEqual(seen.get("x-end-to-end"), "kept", seen)
        self.assertNotIn("x-hop-custom", seen, "a header named by Connection was forwarded")
        self.assertNotIn("x-hop-custom", seen.get("connection", "").lower())
        self.assertNotIn("proxy-connection", seen)
        self.assertNotIn("upgrade", seen)
        self.assertNotIn("max=7", seen.get("keep-alive", ""))
        self.assertNotIn("deflate", seen.get("te", ""))

    def test_client_transfer_encoding_header_is_not_copied(self):
        body = os.urandom(3000)
        seen = echoed(self, one(self.gateway.port, "POST", "/echo-api/echo/te",
                                [("X-End-To-End", "kept")], body=[body], chunked=True))
        self.assertEqual((seen["body_bytes"], seen["body_fnv1a"]), (3000, fnv1a64_hex(body)))
        te = seen["headers"].get("transfer-encoding")
        self.assertIn(te, (None, "chunked"), seen["headers"])

    def test_upstream_gets_a_traceparent_in_the_clients_trace(self):
        seen = echoed(self, self.get("/echo-api/echo/tp", {"traceparent": TRACEPARENT}))
        tp = seen["headers"].get("traceparent", "")
        self.assertRegex(tp, rf"^00-{TRACE_ID}-[0-9a-f]{{16}}-01$")
        self.assertNotIn(PARENT_SPAN, tp, "the gateway forwarded the client's span as parent")

    # -------------------------------------------------------------- upstream failures

    def test_upstream_down_is_502(self):
        r = self.get("/down/anything", {"X-Request-Id": "down-1", "traceparent": TRACEPARENT})
        problem = assert_problem(self, r, 502)
        self.assertEqual(problem["trace_id"], TRACE_ID, "the problem must name the caller's trace")
        self.assertNotIn(str(self.down_port).encode(), r.body, "upstream address leaked")
        line = access_line(self, self.gateway.proc, "down-1")
        self.assertEqual((line["level"], line["http.route"], line["http.response.status_code"]),
                         ("error", "/down/*", 502))
        self.assertGreaterEqual(status_count(self.gateway.admin, "/down/*", "502"), 1)

    def test_upstream_slower_than_the_route_timeout_is_504(self):
        r = self.get("/slow-api/slow?ms=3000", {"X-Request-Id": "slow-1"})
        assert_problem(self, r, 504)
        self.assertLess(r.elapsed, 1.5, "the 300 ms route timeout was not applied")
        self.assertGreater(r.elapsed, 0.25)
        line = access_line(self, self.gateway.proc, "slow-1")
        self.assertEqual((line["level"], line["http.route"], line["http.response.status_code"]),
                         ("error", "/slow-api/*", 504))
        self.assertGreaterEqual(status_count(self.gateway.admin, "/slow-api/*", "504"), 1)
        self.assertEqual(echoed(self, self.get("/slow-api/slow?ms=10")), {"slept_ms": 10})

    def test_upstream_closing_without_an_answer_is_502(self):
        r = self.get("/echo-api/close", {"X-Request-Id": "close-1"})
        assert_problem(self, r, 502)
        line = access_line(self, self.gateway.proc, "close-1")
        self.assertEqual((line["level"], line["http.route"], line["http.response.status_code"]),
                         ("error", "/echo-api/*", 502))
        self.assertGreaterEqual(status_count(self.gateway.admin, "/echo-api/*", "502"), 1)
        self.assertEqual(echoed(self, self.get("/echo-api/echo/after"))["target"], "/echo/after")

    def test_no_route_is_404(self):
        r = self.get("/not-routed/x", {"X-Request-Id": "nr-1"})
        assert_problem(self, r, 404)
        self.assertEqual(r.header("X-Request-Id"), "nr-1")
        line = access_line(self, self.gateway.proc, "nr-1")
        self.assertEqual(line["level"], "warn")
        self.assertIn("http.route", line, "every access line carries http.route")
        self.assertNotEqual(line["http.route"], "/not-routed/x")

    # -------------------------------------------------------------------- admin port

    def test_public_port_never_serves_admin_paths(self):
        for path in ("/metrics", "/healthz", "/readyz"):
            r = self.get(path)
            assert_problem(self, r, 404)
            self.assertNotIn(b"http_server_request_duration_seconds", r.body)

    def test_admin_port_serves_health_and_metrics(self):
        self.get("/echo-api/echo/m")
        self.assertEqual(http_get(self.gateway.admin + "/healthz")[0], 200)
        self.assertEqual(http_get(self.gateway.admin + "/readyz")[0], 200)
        status, headers, body = http_get(self.gateway.admin + "/metrics")
        self.assertEqual(status, 200)
        check = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())
        routes = {l.get("http_route") for l, _ in metric_samples(
            body.decode(), "http_server_request_duration_seconds_count")}
        self.assertIn("/echo-api/*", routes)
        self.assertFalse(any("/echo-api/echo/m" == r for r in routes), routes)

    # ------------------------------------------------------------------------- nginx

    def test_nginx_upstream_get(self):
        r = self.get("/nginx/fixed")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "from": "nginx"})
        r = self.get("/nginx/reflect?a=1",
                     {"X-Request-Id": "ngx-req-1", "traceparent": TRACEPARENT})
        self.assertEqual(r.status, 200, r)
        seen = r.json()
        self.assertEqual(seen["uri"], "/reflect?a=1")
        self.assertEqual(seen["method"], "GET")
        self.assertEqual(seen["request_id"], "ngx-req-1")
        self.assertRegex(seen["traceparent"], rf"^00-{TRACE_ID}-[0-9a-f]{{16}}-01$")
        self.assertEqual(seen["xff"], "127.0.0.1")
        self.assertEqual(r.header("X-Upstream-Uri"), "/reflect?a=1")
        self.assertEqual(r.header_all("X-Request-Id"), ["ngx-req-1"])

    def test_nginx_upstream_post(self):
        body = os.urandom(20_000)
        r = one(self.gateway.port, "POST", "/nginx/reflect", {"X-Request-Id": "ngx-post"},
                body=body)
        self.assertEqual(r.status, 200, r)
        seen = r.json()
        self.assertEqual((seen["method"], seen["request_id"]), ("POST", "ngx-post"))
        self.assertTrue(seen["content_length"] == "20000" or seen["transfer_encoding"] == "chunked",
                        seen)
        r = one(self.gateway.port, "POST", "/nginx/reflect", body=[body[:5000], body[5000:]],
                chunked=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["method"], "POST")

    def test_nginx_upstream_keep_alive(self):
        with RawConnection(self.gateway.port) as c:
            for _ in range(30):
                r = c.exchange("GET", "/nginx/fixed")
                self.assertEqual(r.status, 200, r)


class GatewayLargeBodiesTest(unittest.TestCase):
    """Bodies far larger than the gateway's memory bound pass through it intact."""

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        cls.addClassCleanup(cls.sandbox.close)
        limit = str(4 * GiB)
        cls.echo = start_echo(cls.sandbox, env={"VIGIL_HTTP_MAX_BODY_BYTES": limit})
        cls.gateway = start_gateway(cls.sandbox, routes_for(cls.echo.url, big=4 * GiB),
                                    env={"VIGIL_HTTP_MAX_BODY_BYTES": limit})

    def assert_bounded(self, what):
        peak = read_peak_rss(self.gateway.pid)
        assert_memory_below(self, peak, GATEWAY_RSS_BOUND,
                            f"gateway peaked at {peak / MiB:.1f} MiB during {what}")

    def upload(self, body, chunked):
        with RawConnection(self.gateway.port, timeout=120) as c:
            framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body.size}"
            c.send(f"POST /echo-api/echo/big HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
            start = time.monotonic()
            for chunk in body.chunks():
                c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                c.send(b"0\r\n\r\n")
            r = c.read_response()
            took = time.monotonic() - start
        seen = echoed(self, r)
        self.assertEqual(seen["body_bytes"], body.size)
        self.assertEqual(seen["body_fnv1a"], body.fnv1a_hex())
        return took

    def test_large_upload_content_length(self):
        took = self.upload(SparseBody(LARGE_BYTES), chunked=False)
        print(f"\n  upload {LARGE_BYTES // MiB} MiB (content-length): {took:.1f} s, gateway "
              f"VmHWM {read_peak_rss(self.gateway.pid) / MiB:.1f} MiB", end=" ")
        self.assert_bounded("a large content-length upload")

    def test_large_upload_chunked(self):
        took = self.upload(SparseBody(LARGE_BYTES // 4, stride=999_983), chunked=True)
        print(f"\n  upload {LARGE_BYTES // 4 // MiB} MiB (chunked): {took:.1f} s", end=" ")
        self.assert_bounded("a large chunked upload")

    def test_large_download(self):
        checker = PatternChecker()
        start = time.monotonic()
        with RawConnection(self.gateway.port, timeout=120) as c:
            r = c.exchange("GET", f"/echo-api/bytes/{LARGE_BYTES}", sink=checker)
        took = time.monotonic() - start
        print(f"\n  download {LARGE_BYTES // MiB} MiB: {took:.1f} s, gateway "
              f"VmHWM {read_peak_rss(self.gateway.pid) / MiB:.1f} MiB", end=" ")
        self.assertEqual(r.status, 200)
        self.assertEqual(checker.count, LARGE_BYTES)
        self.assertIsNone(checker.first_mismatch, f"wrong byte at {checker.first_mismatch}")
        self.assert_bounded("a large download")


class GatewayTraceTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)

    def test_one_trace_across_client_gateway_and_echo(self):
        otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": self.receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        echo = start_echo(self.sandbox, env={**otlp, "OTEL_SERVICE_NAME": "echo"})
        gateway = start_gateway(self.sandbox, routes_for(echo.url),
                                env={**otlp, "OTEL_SERVICE_NAME": "gateway"})
        r = one(gateway.port, "GET", "/echo-api/echo/traced", {"traceparent": TRACEPARENT})
        upstream_tp = echoed(self, r)["headers"]["traceparent"]

        def three():
            spans = [(svc, s) for svc, s in otlp_spans(self.receiver, self.sandbox.dir)
                     if s["traceId"] == TRACE_ID]
            return spans if len(spans) >= 3 else None
        spans = wait_for(three, timeout=20, interval=0.2, what="three spans of the trace")
        self.assertEqual(len(spans), 3, [(svc, s["name"]) for svc, s in spans])
        by = {(svc, s["kind"]): s for svc, s in spans}
        self.assertEqual(set(by), {("gateway", SPAN_KIND_SERVER), ("gateway", SPAN_KIND_CLIENT),
                                   ("echo", SPAN_KIND_SERVER)}, list(by))
        g_server = by[("gateway", SPAN_KIND_SERVER)]
        g_client = by[("gateway", SPAN_KIND_CLIENT)]
        e_server = by[("echo", SPAN_KIND_SERVER)]
        self.assertEqual(g_server["name"], "GET /echo-api/*")
        self.assertEqual(g_server["parentSpanId"], PARENT_SPAN)
        self.assertEqual(g_client["name"], "GET")
        self.assertEqual(g_client["parentSpanId"], g_server["spanId"])
        self.assertEqual(e_server["name"], "GET /echo/*")
        self.assertEqual(e_server["parentSpanId"], g_client["spanId"])
        self.assertEqual(upstream_tp, f"00-{TRACE_ID}-{g_client['spanId']}-01")
        # The client span lies within the server span, the upstream's within the client's.
        for outer, inner in ((g_server, g_client), (g_client, e_server)):
            self.assertLessEqual(int(outer["startTimeUnixNano"]), int(inner["startTimeUnixNano"]))
            self.assertGreaterEqual(int(outer["endTimeUnixNano"]), int(inner["endTimeUnixNano"]))


def upload_while_taken(port, target, body_size, chunked, timeout=15.0):
    """Sends a POST of `body_size` bytes for as long as the gateway takes them (it may
    answer and close before the end), then reads its answer."""
    with RawConnection(port, timeout=timeout) as c:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_size}"
        piece = b"u" * 16384
        try:
            c.send(f"POST {target} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
            for _ in range(body_size // len(piece)):
                c.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                c.send(b"0\r\n\r\n")
        except OSError:  # reset or closed: the answer came first
            pass
        return c.read_response("POST")


class GatewayUpstreamConnectionsTest(unittest.TestCase):
    """What an upstream does to the gateway's pooled connections: closes them when idle
    (Node's 5 s keep-alive timeout is shorter than the pool's 30 s), closes them all when
    it restarts, stops reading a body it refuses. None of it may surface as a 502."""

    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def test_posts_spaced_past_the_upstreams_idle_timeout(self):
        echo = start_echo(self.sandbox, env={"VIGIL_HTTP_IDLE_TIMEOUT": "1000"})
        gateway = start_gateway(self.sandbox, routes_for(echo.url))
        statuses = []
        with RawConnection(gateway.port) as c:
            for i in range(4):
                if i:
                    time.sleep(1.2)  # past the upstream's 1 s: the condition under test
                body = os.urandom(100 + i)
                r = c.exchange("POST", f"/echo-api/echo/spaced/{i}", body=body)
                statuses.append(r.status)
                if r.status == 200:
                    self.assertEqual(r.json()["body_fnv1a"], fnv1a64_hex(body))
        self.assertEqual(statuses, [200] * 4)
        self.assertEqual(status_count(gateway.admin, "/echo-api/*", "502"), 0)

    def test_posts_across_upstream_restarts_on_the_same_port(self):
        echo = start_echo(self.sandbox)
        gateway = start_gateway(self.sandbox, routes_for(echo.url))
        statuses = []
        with RawConnection(gateway.port) as c:
            for i in range(4):
                if i:
                    self.assertEqual(echo.proc.stop(), 0)
                    echo = start_echo(self.sandbox, name=f"echo-{i}", port=echo.port)
                r = c.exchange("POST", f"/echo-api/echo/restart/{i}", body=b"r" * 10)
                statuses.append(r.status)
        self.assertEqual(statuses, [200] * 4)
        self.assertEqual(status_count(gateway.admin, "/echo-api/*", "502"), 0)

    def test_upload_over_the_upstreams_body_limit_gets_its_413(self):
        echo = start_echo(self.sandbox, env={"VIGIL_HTTP_MAX_BODY_BYTES": "65536"})
        gateway = start_gateway(self.sandbox, routes_for(echo.url, big=64 * MiB))
        # Chunked: the upstream answers when the limit is crossed; Content-Length: at
        # once, and it reads and discards at most 4 MiB more before closing.
        for chunked, size, tries in ((True, 1 * MiB, 20), (False, 6 * MiB, 3)):
            statuses = []
            for _ in range(tries):
                r = upload_while_taken(gateway.port, "/echo-api/echo/up", size, chunked)
                statuses.append(r.status)
                if r.status == 413:
                    self.assertIn("65536", assert_problem(self, r, 413)["detail"],
                                  "not the upstream's own answer")
            self.assertEqual(statuses, [413] * tries, "chunked" if chunked else "content-length")
        self.assertEqual(status_count(gateway.admin, "/echo-api/*", "502"), 0)


class GatewayShutdownTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def test_sigterm_under_load_completes_every_accepted_request(self):
        echo = start_echo(self.sandbox)
        gateway = start_gateway(self.sandbox, routes_for(echo.url, drain=True))
        results, lock = [], threading.Lock()

        def run(i):
            try:
                with RawConnection(gateway.port, timeout=20) as c:
                    r = c.exchange("GET", "/drain/slow?ms=800", {"X-Request-Id": f"gw-drain-{i}"})
            except Exception as e:  # recorded; asserted on below
                r = e
            with lock:
                results.append((i, r))

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(20)]
        for t in threads:
            t.start()
        wait_for(lambda: metric_sum(gateway.admin, "http_server_active_requests", {}) >= 20,
                 timeout=5, interval=0.02, what="20 requests in flight at the gateway")
        gateway.proc.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: http_get(gateway.admin + "/readyz", timeout=1)[0] == 503,
                 timeout=2, interval=0.01, what="/readyz to answer 503 while draining")

        refused_while_draining = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and gateway.alive():
            try:
                with socket.create_connection(("127.0.0.1", gateway.port), timeout=1):
                    pass
            except ConnectionRefusedError:
                refused_while_draining = gateway.alive()
                break
            time.sleep(0.01)
        for t in threads:
            t.join(15)
        self.assertEqual(gateway.proc.proc.wait(15), 0, gateway.proc.output()[-2000:])
        self.assertTrue(refused_while_draining, "new connections accepted while draining")
        self.assertEqual(len(results), 20)
        for i, r in sorted(results, key=lambda x: x[0]):
            self.assertNotIsInstance(r, Exception, f"request {i}: {r!r}")
            self.assertEqual(r.status, 200, f"request {i}: {r}")
            self.assertEqual(json.loads(r.body), {"slept_ms": 800})
        logged = {l["request_id"] for l in access_records(gateway.proc)}
        self.assertTrue({f"gw-drain-{i}" for i in range(20)} <= logged)
        self.assertTrue(echo.alive())


class GatewayStartupTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def run_gateway(self, args, env=None):
        full = {"PATH": os.environ["PATH"], "VIGIL_PORT": str(free_port()),
                "VIGIL_ADMIN_PORT": str(free_port())}
        full.update(env or {})
        return subprocess.run([binary(GATEWAY_BINARY), *args], env=full, capture_output=True,
                              timeout=10)

    def test_help(self):
        run = self.run_gateway(["--help"])
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn(b"Usage", run.stdout)
        self.assertIn(b"--config", run.stdout)

    def test_bad_variable_exits_2_naming_it(self):
        run = self.run_gateway([], {"VIGIL_HTTP_HEADER_TIMEOUT": "soon"})
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn(b"VIGIL_HTTP_HEADER_TIMEOUT", run.stderr)

    def test_bad_config_stops_start_naming_the_problem(self):
        # The spec names no exit code for configuration files; a start-up failure with a
        # message naming the file or the field is what an operator needs.
        missing = self.sandbox.dir / "missing.json"
        run = self.run_gateway(["--config", str(missing)])
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(str(missing).encode(), run.stderr)
        bad = self.sandbox.dir / "bad.json"
        bad.write_text(json.dumps({"routes": [{"prefix": "/x", "strip_prefix": True}]}))
        run = self.run_gateway(["--config", str(bad)])
        self.assertNotEqual(run.returncode, 0)
        self.assertIn(b"upstream", run.stderr)
        broken = self.sandbox.dir / "broken.json"
        broken.write_text('{"routes": [')
        run = self.run_gateway(["--config", str(broken)])
        self.assertNotEqual(run.returncode, 0)

    def test_config_from_the_environment(self):
        echo = start_echo(self.sandbox)
        config = write_gateway_config(self.sandbox, routes_for(echo.url), name="from-env")
        port, admin = free_port(), free_port()
        proc = self.sandbox.start([binary(GATEWAY_BINARY)], "gateway-env", {
            "VIGIL_GATEWAY_CONFIG": str(config), "VIGIL_PORT": str(port),
            "VIGIL_ADMIN_PORT": str(admin)})
        wait_for(lambda: proc.proc.poll() is not None or
                 http_get(f"http://127.0.0.1:{admin}/readyz", timeout=2)[0] == 200,
                 what="gateway /readyz")
        self.assertIsNone(proc.proc.poll(), proc.output())
        wait_for(lambda: one(port, "GET", "/echo-api/echo/env").status == 200,
                 what="a routed request")
        self.assertEqual(one(port, "GET", "/echo-api/echo/env").json()["target"], "/echo/env")


if __name__ == "__main__":
    unittest.main()

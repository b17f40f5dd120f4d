"""Slow and greedy clients against the gateway: 1,000 connections that trickle a request
head a byte a second and never finish it must not keep a well-behaved client waiting,
and the header timeout cuts them (408 or a close), after which the gateway's open
descriptors fall back to where they were."""

import resource
import selectors
import socket
import threading
import time
import unittest

from harness import (RawConnection, Sandbox, binary, http_get, metric_samples, start_echo,
                     start_http_program, wait_for, write_gateway_config, GATEWAY_BINARY)

TRICKLERS = 1000
# The start of a request head; then one more byte of a header value at a time.
HEAD_START = b"GET /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
# The soft limit on open files that systemd and most login sessions give a process
# (the hard limit is much higher): a server that keeps it cannot hold 1,000 clients and
# still accept more.
USUAL_SOFT_NOFILE = 1024


def raise_own_nofile_limit(needed):
    """This process needs a descriptor per connection: its soft limit goes up to the hard
    one. Returns the hard limit; skips the test when even that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise unittest.SkipTest(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Tricklers:
    """`count` connections to `port`, each sending HEAD_START and then, from a thread,
    one byte every `interval` seconds, never ending the head. Sockets the server closed
    are only marked: they are closed together in close(), once the thread has stopped."""

    def __init__(self, port, count, interval=1.0):
        self.socks = []
        self.opened = []
        self.interval = interval
        self.stop = threading.Event()
        try:
            for _ in range(count):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.setblocking(False)
                s.send(HEAD_START)
                self.socks.append(s)
                self.opened.append(time.monotonic())
        except BaseException:
            self.close()
            raise
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        while not self.stop.wait(self.interval):
            for s in self.socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass  # closed by the server, or its buffer is full: next round

    def wait_closed(self, timeout):
        """Waits up to `timeout` s for the server to close every connection. Returns
        [(seconds from connect to close, or None if still open; bytes received)]."""
        results = [[None, b""] for _ in self.socks]
        selector = selectors.DefaultSelector()  # epoll: more than select()'s 1,024
        for i, s in enumerate(self.socks):
            selector.register(s, selectors.EVENT_READ, i)
        open_count = len(self.socks)
        deadline = time.monotonic() + timeout
        while open_count and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                i = key.data
                try:
                    data = self.socks[i].recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if data:
                    results[i][1] += data
                    continue
                results[i][0] = time.monotonic() - self.opened[i]
                selector.unregister(self.socks[i])
                open_count -= 1
        selector.close()
        return [tuple(r) for r in results]

    def close(self):
        self.stop.set()
        if getattr(self, "thread", None) is not None:
            self.thread.join()
        for s in self.socks:
            s.close()


def metric(server, name):
    _, _, body = http_get(server.admin + "/metrics")
    samples = metric_samples(body.decode(), name)
    return samples[0][1] if samples else None


class SlowClientsTest(unittest.TestCase):
    def setUp(self):
        self.hard = raise_own_nofile_limit(TRICKLERS + 200)
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)
        self.echo = start_echo(self.sandbox)

    def start_gateway(self, env, soft_nofile=None):
        """The gateway in front of echo (/api -> echo), under `soft_nofile` when given."""
        routes = [{"prefix": "/api", "upstream": self.echo.url, "strip_prefix": True,
                   "timeout_ms": 5000}]
        config = write_gateway_config(self.sandbox, routes)
        argv = [binary(GATEWAY_BINARY), "--config", str(config)]
        if soft_nofile is not None:
            argv = ["prlimit", f"--nofile={soft_nofile}:{self.hard}", "--", *argv]
        return start_http_program(self.sandbox, argv, "gateway", dict(env, VIGIL_WORKERS="2"))

    def tricklers(self, gateway):
        t = Tricklers(gateway.port, TRICKLERS)
        self.addCleanup(t.close)
        return t

    def test_a_client_is_served_while_1000_connections_trickle(self):
        if self.hard == resource.RLIM_INFINITY:
            self.skipTest("no finite hard RLIMIT_NOFILE to start the gateway under")
        # The gateway starts with the usual soft limit: it must raise its own.
        gateway = self.start_gateway({"VIGIL_HTTP_HEADER_TIMEOUT": "60000"},
                                     soft_nofile=USUAL_SOFT_NOFILE)
        self.assertEqual(metric(gateway, "process_max_fds"), self.hard,
                         "the gateway raised its soft RLIMIT_NOFILE to the hard limit")
        before = metric(gateway, "process_open_fds")
        self.tricklers(gateway)
        # The gateway holds them all (a descriptor each) ...
        wait_for(lambda: metric(gateway, "process_open_fds") >= before + TRICKLERS,
                 timeout=20, what=f"the gateway to hold {TRICKLERS} connections")
        # ... and still serves a well-behaved client at once, each time on a new connection.
        for attempt in range(5):
            start = time.monotonic()
            with RawConnection(gateway.port, timeout=5) as c:
                response = c.exchange("GET", "/api/echo")
            took = time.monotonic() - start
            self.assertEqual(response.status, 200, response)
            self.assertLess(took, 2.0, f"request {attempt} took {took:.2f} s")
        self.assertGreaterEqual(metric(gateway, "process_open_fds"), before + TRICKLERS,
                                "the trickling connections were open all along")

    def test_trickling_connections_are_cut_by_the_header_timeout(self):
        timeout = 2.0
        gateway = self.start_gateway({"VIGIL_HTTP_HEADER_TIMEOUT": str(int(timeout * 1000))})
        before = metric(gateway, "process_open_fds")
        tricklers = self.tricklers(gateway)
        # A byte a second is progress, but the head as a whole is late: each connection
        # ends at the timeout, counted from when it was accepted.
        results = tricklers.wait_closed(timeout + 8)
        still_open = sum(1 for closed, _ in results if closed is None)
        self.assertEqual(still_open, 0, f"{still_open} connections outlived the header timeout")
        times = [closed for closed, _ in results]
        self.assertGreaterEqual(min(times), timeout * 0.9, "cut before the header timeout")
        self.assertLess(max(times), timeout + 8)
        answers = {data.split(b"\r\n", 1)[0] for _, data in results}
        self.assertLessEqual(answers, {b"HTTP/1.1 408 Request Timeout", b""}, answers)
        tricklers.close()
        # Every descriptor the connections took is given back.
        wait_for(lambda: metric(gateway, "process_open_fds") <= before + 5, timeout=10,
                 what="the gateway's open descriptors to fall back")
        with RawConnection(gateway.port, timeout=5) as c:
            self.assertEqual(c.exchange("GET", "/api/echo").status, 200)


if __name__ == "__main__":
    unittest.main()

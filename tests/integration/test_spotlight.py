"""Spotlight, Sentry's local receiver and viewer, started as `./vigil up` starts it
(tools/spotlight/run.mjs): the test error of every service is accepted by it, each with
its service and the trace it was raised in, as Spotlight itself parsed them; it listens on
loopback only and its UI may not reach sentry.io; a port in use ends it at once, saying so
(./vigil up then goes on without it)."""

import re
import socket
import subprocess
import time
import unittest

from harness import (Platform, Sandbox, Spotlight, call_json, http_get, spotlight_command,
                     spotlight_unavailable, wait_for)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def listening_addresses(port):
    """The local addresses of the TCP sockets listening on `port`, from /proc/net/tcp{,6}
    (IPv4 ones as dotted quads, IPv6 ones as 32 hex digits)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, local_port = local.split(":")
                if state != "0A" or int(local_port, 16) != port:
                    continue
                if len(address) == 8:
                    address = socket.inet_ntoa(bytes.fromhex(address)[::-1])
                found.add(address)
    return found


class SpotlightTest(unittest.TestCase):
    def setUp(self):
        reason = spotlight_unavailable()
        if reason:
            self.skipTest(reason)
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)

    def test_every_service_test_error_is_accepted_with_its_service_and_trace(self):
        spotlight = Spotlight(self.sandbox)
        platform = Platform(self.sandbox, {"SENTRY_DSN": spotlight.dsn})
        sent = {}
        for name, server in platform.services.items():
            status, _, body = call_json(server.admin + "/debug/sentry-test", "POST", raw=b"",
                                        headers={"traceparent": TRACEPARENT})
            self.assertEqual(status, 202, f"{name}: {body}")
            sent[body["event_id"]] = name
        self.assertEqual(len(sent), 4)

        def accepted():
            events = {e["event_id"]: e for e in spotlight.items("event")}
            return events if set(sent) <= set(events) else None
        events = wait_for(accepted, what="every service's test event in Spotlight's stream")
        for event_id, name in sent.items():
            with self.subTest(service=name):
                event = events[event_id]
                self.assertEqual(event["tags"]["service"], name)
                self.assertEqual(event["contexts"]["trace"]["trace_id"], TRACE_ID)
                exception = event["exception"]["values"][0]
                self.assertIn("SentryTestError", exception["type"])
                self.assertIn(f"test error from {name}", exception["value"])

    def test_it_listens_on_loopback_only_and_its_ui_may_not_reach_sentry_io(self):
        spotlight = Spotlight(self.sandbox)
        self.assertEqual(listening_addresses(spotlight.port), {"127.0.0.1"})
        status, _, page = http_get(spotlight.url + "/")
        self.assertEqual(status, 200)
        policy = re.search(rb'http-equiv="Content-Security-Policy"\s+content="([^"]*)"', page)
        self.assertIsNotNone(policy, page[:500])
        self.assertIn(b"connect-src 'self'", policy.group(1))
        self.assertNotIn(b"sentry.io", policy.group(1))
        script = re.search(rb'<script type="module" crossorigin src="/([^"]+)"', page)
        self.assertEqual(http_get(spotlight.url + "/" + script.group(1).decode())[0], 200)

    def test_a_port_in_use_ends_it_at_once_saying_so(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            start = time.monotonic()
            result = subprocess.run(spotlight_command(port), capture_output=True, text=True,
                                    timeout=60, cwd=self.sandbox.dir)
            elapsed = time.monotonic() - start
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f"spotlight: 127.0.0.1:{port} is in use", result.stderr)
        self.assertLess(elapsed, 10, "not its own 15 s of retries")


if __name__ == "__main__":
    unittest.main()

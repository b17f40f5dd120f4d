"""Spotlight, Sentry's local receiver and viewer, started with the command `./vigil up`
runs (node tools/spotlight/run.mjs PORT) on a free port, and read back through its own
event stream: what it accepted, as it parsed it."""

import contextlib
import http.client
import json
import shutil
import subprocess
import threading

from .client import http_get
from .processes import ROOT, free_port, wait_ready

SPOTLIGHT_DIR = ROOT / "tools" / "spotlight"
NODE_MAJOR_NEEDED = 20


def _node():
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed (Debian package nodejs)")
    return node


def spotlight_unavailable():
    """Why Spotlight cannot run here (a Node.js older than it needs, which ./vigil up also
    runs without), or None. A missing node or npm install is the suite's failure instead."""
    version = subprocess.run([_node(), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR_NEEDED:
        return f"Spotlight needs Node.js {NODE_MAJOR_NEEDED} or later; node is {version}"
    return None


def spotlight_command(port):
    """The command that starts Spotlight on 127.0.0.1:`port`, as ./vigil up runs it."""
    return [_node(), str(SPOTLIGHT_DIR / "run.mjs"), str(port)]


class Spotlight:
    """tools/spotlight/run.mjs on a free port in `sandbox`, ready (GET /health answers), with
    one reader of its /stream keeping every envelope it delivers. `dsn` points a program
    at it as ./vigil up's SENTRY_DSN does, on this port."""

    def __init__(self, sandbox):
        if not (SPOTLIGHT_DIR / "node_modules" / "@spotlightjs" / "spotlight").is_dir():
            raise AssertionError(f"run 'npm ci' in {SPOTLIGHT_DIR} first")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dsn = f"http://spotlight@127.0.0.1:{self.port}/0"
        self.proc = sandbox.start(spotlight_command(self.port), "spotlight")
        wait_ready(self.proc, lambda: http_get(self.url + "/health", timeout=2)[0] == 200,
                   "spotlight /health")
        self.lock = threading.Lock()
        self.received = []
        # Subscribed once the answer's header arrives (Spotlight also replays what it kept
        # from before); then idle between events for as long as Spotlight runs.
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", "/stream", headers={"Accept": "text/event-stream"})
        sock = connection.sock
        stream = connection.getresponse()
        if stream.status != 200:
            raise AssertionError(f"spotlight /stream answered {stream.status}")
        sock.settimeout(None)
        threading.Thread(target=self._read, args=(connection, stream), daemon=True).start()

    def _read(self, connection, stream):
        kind = None
        with contextlib.closing(connection), stream:
            for raw in stream:
                line = raw.decode().rstrip("\r\n")
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    kind = value
                elif field == "data" and kind and kind.startswith("application/x-sentry-envelope"):
                    with self.lock:
                        self.received.append(json.loads(value))
                elif not line:
                    kind = None

    def envelopes(self):
        """Every envelope received so far as Spotlight parsed it: [header, [[item header,
        payload], ...]]."""
        with self.lock:
            return list(self.received)

    def items(self, kind):
        """The payloads of every item of type `kind` (event, sessions...) received so far."""
        return [payload for _, items in self.envelopes() for header, payload in items
                if header.get("type") == kind]

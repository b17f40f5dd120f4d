#!/usr/bin/env python3
"""A webhook receiver for Alertmanager that prints each delivered alert on stdout: what
`./vigil up --stack` gives the page and ticket receivers, in place of a pager and a ticket
queue. Standard library only.

    python3 ops/alertmanager/receiver.py --port 9095

Alertmanager posts its webhook JSON (one notification: a group of alerts) to any path;
each alert becomes one line, with its description and runbook on a second one:

    13:05:10 page    FIRING    ServiceDown  severity=critical service=catalog  A service ...
             catalog at 127.0.0.1:9082 has failed every scrape for a minute: ...  (ops/runbooks/ServiceDown.md)

The receiver is the notification's `receiver` field (the route it took). Anything that is
not a notification is answered 400 and printed as such.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Labels every line shows first, in this order; the others follow sorted.
FIRST = ("severity", "service", "slo")
SKIP = ("alertname",)

_print_lock = threading.Lock()


def alert_lines(receiver, alert, style):
    """The two lines of one alert of a notification."""
    labels = alert.get("labels", {})
    annotations = alert.get("annotations", {})
    status = alert.get("status", "?").upper()
    keys = [k for k in FIRST if k in labels]
    keys += sorted(k for k in labels if k not in FIRST and k not in SKIP)
    shown = " ".join(f"{k}={labels[k]}" for k in keys)
    bold, dim, reset = style
    head = (f"{time.strftime('%H:%M:%S')} {receiver:<7} {bold}{status:<9}"
            f"{labels.get('alertname', '?')}{reset}  {shown}  {annotations.get('summary', '')}")
    detail = annotations.get("description", "")
    if annotations.get("runbook_url"):
        detail += f"  ({annotations['runbook_url']})"
    return [head, f"{dim}         {detail}{reset}"]


class Handler(BaseHTTPRequestHandler):
    style = ("", "", "")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            notification = json.loads(body)
            receiver = notification.get("receiver", self.path.strip("/") or "?")
            lines = []
            for alert in notification["alerts"]:
                lines += alert_lines(receiver, alert, self.style)
        except (ValueError, KeyError, TypeError, AttributeError):
            self.send_response(400)
            self.end_headers()
            emit([f"{time.strftime('%H:%M:%S')} not a notification on {self.path}: "
                  f"{body[:200]!r}"])
            return
        emit(lines)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # the alerts are the output, not the requests
        pass


def emit(lines):
    with _print_lock:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9095)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        Handler.style = ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    emit([f"alert receiver listening on http://{args.host}:{server.server_port}/"])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A Sentry receiver for the suites: it keeps every envelope a program sends, answers from a
script (a 429 with X-Sentry-Rate-Limits, a hang...), and reads the envelopes back with
Sentry's own parser (Debian's python3-sentry-sdk), after checking their framing byte by
byte: each item's payload has exactly its declared length and is followed by a newline."""

import json

from .otlp import Receiver

PUBLIC_KEY = "integrationpublickey0123456789ab"
PROJECT = "7"


def _check_framing(data):
    """Raises AssertionError unless `data` is header line, then (item header line, payload
    of its length, newline)*; returns the number of items."""
    header_end = data.index(b"\n")
    json.loads(data[:header_end])
    at = header_end + 1
    items = 0
    while at < len(data):
        line_end = data.index(b"\n", at)
        item = json.loads(data[at:line_end])
        at = line_end + 1
        length = item["length"]
        payload = data[at:at + length]
        assert len(payload) == length, f"item {items}: {len(payload)} bytes of {length}"
        json.loads(payload)
        at += length
        assert data[at:at + 1] in (b"\n", b""), f"item {items}: no newline after the payload"
        at += 1
        items += 1
    return items


class SentryReceiver(Receiver):
    """Sentry's envelope endpoint, /api/<project>/envelope/, on 127.0.0.1: `script` and
    `default` as for otlp.Receiver (status, headers, body)."""

    def __init__(self, script=(), default=(200, {"Content-Type": "application/json"}, b"{}")):
        super().__init__(script, default)
        host = self.url.removeprefix("http://")
        self.dsn = f"http://{PUBLIC_KEY}@{host}/{PROJECT}"
        self.path = f"/api/{PROJECT}/envelope/"

    def raw_envelopes(self):
        """Each request's body as sent, ungzipped when it was compressed."""
        return self.bodies()

    def envelopes(self):
        """Every envelope, framing checked, parsed by sentry_sdk."""
        try:
            from sentry_sdk.envelope import Envelope  # pylint: disable=import-outside-toplevel
        except ImportError as error:
            raise ImportError("reading envelopes needs python3-sentry-sdk "
                              "(./vigil deps installs it)") from error
        out = []
        for data in self.raw_envelopes():
            items = _check_framing(data)
            envelope = Envelope.deserialize(data)
            assert len(envelope.items) == items, "sentry_sdk saw other items"
            out.append(envelope)
        return out

    def items(self, kind):
        """The JSON payloads of every item of type `kind` (event, sessions, client_report)."""
        payloads = []
        for envelope in self.envelopes():
            for item in envelope.items:
                if item.type != kind:
                    continue
                event = item.get_event()
                payloads.append(event if event is not None else json.loads(item.get_bytes()))
        return payloads

    def discarded(self):
        """{(reason, category): quantity} summed over every client report."""
        out = {}
        for report in self.items("client_report"):
            for d in report["discarded_events"]:
                key = (d["reason"], d["category"])
                out[key] = out.get(key, 0) + d["quantity"]
        return out

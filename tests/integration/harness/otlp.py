"""OTLP peers and readers: a scripted OTLP/HTTP receiver, OpenTelemetry's own protobuf
decoder (tests/otlp-decoder, run with node), and the spans of what was received or
written to a VIGIL_TRACES_FILE."""

import gzip
import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .processes import ROOT

HANG = "hang"  # a scripted Receiver answer that never comes
DECODER_DIR = ROOT / "tests" / "otlp-decoder"


class Receiver:
    """An OTLP/HTTP endpoint that records every request and answers from `script`
    (status, headers, body) in order, then with `default`."""

    def __init__(self, script=(), default=(200, {}, b""), port=0):
        self.script = list(script)
        self.default = default
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.connections = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections.append(self.connection)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append({
                        "time": time.monotonic(), "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "client_port": self.client_address[1]})
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer == HANG:
                    receiver.release.wait(30)
                    self.close_connection = True
                    return
                status, headers, payload = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self):
        """Each request's body as its sender meant it: ungzipped when it was compressed."""
        with self.lock:
            requests = list(self.requests)
        return [gzip.decompress(r["body"]) if r["headers"].get("content-encoding") == "gzip"
                else r["body"] for r in requests]

    def close(self):
        """Stops listening and cuts every open connection, as a dying receiver would."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def node_decode(path):
    """Decodes one protobuf body with OpenTelemetry's decoder; returns its JSON line."""
    return node_decode_all([path])[0]


def node_decode_all(paths):
    """Decodes protobuf bodies with OpenTelemetry's decoder, in one node process; returns
    their JSON lines in order."""
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed (Debian package nodejs)")
    if not (DECODER_DIR / "node_modules" / "@opentelemetry" / "otlp-transformer").is_dir():
        raise AssertionError(f"run 'npm ci' in {DECODER_DIR} first")
    result = subprocess.run([node, str(DECODER_DIR / "decode.js"), *map(str, paths)],
                            capture_output=True, text=True, timeout=60, cwd=DECODER_DIR)
    if result.returncode != 0:
        raise AssertionError(f"decoder failed: {result.stderr}")
    return [json.loads(line) for line in result.stdout.splitlines()]


def otlp_spans(receiver, dump_dir):
    """Every span `receiver` got, decoded by OpenTelemetry's decoder: [(service, span)]."""
    spans = []
    for i, request in enumerate(list(receiver.requests)):
        if "decoded" not in request:
            path = Path(dump_dir) / f"otlp-body-{id(receiver)}-{i}.bin"
            path.write_bytes(request["body"])
            request["decoded"] = node_decode(path)["request"]
        for rs in request["decoded"].get("resourceSpans", []):
            attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            service = attrs.get("service.name", {}).get("stringValue")
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    spans.append((service, span))
    return spans


def traces_file_spans(path):
    """Every span in a VIGIL_TRACES_FILE (OTLP/JSON, one export request per line)."""
    spans = []
    if not Path(path).exists():
        return spans
    for line in Path(path).read_text().splitlines():
        try:
            request = json.loads(line)
        except ValueError:
            continue
        for rs in request.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                spans.extend(ss.get("spans", []))
    return spans

"""Shared plumbing for the integration suites: free ports, child processes that are
always stopped, readiness polling with deadlines, and small HTTP helpers.

Every wait here polls a condition with a deadline; nothing sleeps in the hope that a
process is ready."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BUILD_DIR = Path(os.environ.get("VIGIL_BUILD_DIR",
                                Path(__file__).resolve().parents[2] / "build" / "release"))


def binary(relative):
    path = BUILD_DIR / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is not built; run ./vigil build")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout=20.0, interval=0.05, what="condition"):
    """Polls `condition` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # the condition may fail until the peer is up
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def http_get(url, headers=None, timeout=5.0):
    """Returns (status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def http_json(url, headers=None):
    status, _, body = http_get(url, headers)
    return status, json.loads(body)


class Process:
    """A child process whose output goes to a file; stopped by PID on close()."""

    def __init__(self, argv, workdir, name, env=None):
        self.name = name
        self.log_path = Path(workdir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env, cwd=workdir)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def lines(self):
        return self.output().splitlines()

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends `sig`, waits, and returns the exit code (killing it after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Sandbox:
    """A temporary directory plus the processes started in it, all cleaned up."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-it-"))
        self.processes = []

    def start(self, argv, name, env=None):
        p = Process(argv, self.dir, name, env)
        self.processes.append(p)
        return p

    def close(self):
        for p in reversed(self.processes):
            p.stop()
        if os.environ.get("VIGIL_KEEP_TEST_DIRS"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def start_demo(sandbox, env=None, name="demo"):
    """Starts vigil-demo on free ports; returns (process, public_url, admin_url)."""
    port, admin = free_port(), free_port()
    proc = sandbox.start([binary("telemetry/examples/vigil-demo"), "--port", str(port),
                          "--admin-port", str(admin)], name, env)
    admin_url = f"http://127.0.0.1:{admin}"
    wait_for(lambda: http_get(admin_url + "/healthz")[0] == 200, what=f"{name} /healthz")
    return proc, f"http://127.0.0.1:{port}", admin_url


def start_prometheus(sandbox, scrape_targets, extra_args=()):
    """Starts Debian's Prometheus scraping `scrape_targets` every second; returns its URL."""
    port = free_port()
    config = sandbox.dir / "prometheus.yml"
    targets = ", ".join(f'"{t}"' for t in scrape_targets)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: demo\n"
        f"    static_configs:\n      - targets: [{targets}]\n")
    sandbox.start(["prometheus", f"--config.file={config}",
                   f"--storage.tsdb.path={sandbox.dir / 'prom-data'}",
                   f"--web.listen-address=127.0.0.1:{port}",
                   "--enable-feature=exemplar-storage", *extra_args], "prometheus")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(url + "/-/ready")[0] == 200, what="prometheus /-/ready")
    return url


# ---------------------------------------------------------------------------- OTLP peers

HANG = "hang"  # a scripted Receiver answer that never comes
DECODER_DIR = Path(__file__).resolve().parents[1] / "otlp-decoder"


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
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed (Debian package nodejs)")
    if not (DECODER_DIR / "node_modules" / "@opentelemetry" / "otlp-transformer").is_dir():
        raise AssertionError(f"run 'npm ci' in {DECODER_DIR} first")
    result = subprocess.run([node, str(DECODER_DIR / "decode.js"), str(path)],
                            capture_output=True, text=True, timeout=60, cwd=DECODER_DIR)
    if result.returncode != 0:
        raise AssertionError(f"decoder failed: {result.stderr}")
    return json.loads(result.stdout)

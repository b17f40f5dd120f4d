"""Shared plumbing for the integration suites: free ports, child processes that are
always stopped, readiness polling with deadlines, and small HTTP helpers.

Every wait here polls a condition with a deadline; nothing sleeps in the hope that a
process is ready."""

import atexit
import json
import os
import re
import select
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

# SIGTERM (a CI runner's or `timeout`'s) unwinds like Ctrl-C, and the sandboxes still open
# when the interpreter exits are closed (see Sandbox), so the child processes are stopped
# instead of being left running. A handler the importing program set itself is kept.
if (threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
    signal.signal(signal.SIGTERM, signal.default_int_handler)

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


# util-linux's setpriv sets the parent-death signal and then executes the program (same
# PID): a child started from the main thread gets SIGTERM when this interpreter dies,
# even by SIGKILL, which no handler or atexit sees. Not from other threads, since the
# signal follows the thread that started the child.
_SETPRIV = shutil.which("setpriv")


def _with_parent_death_signal(argv):
    if _SETPRIV is None or threading.current_thread() is not threading.main_thread():
        return list(argv)
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]


class Process:
    """A child process whose output goes to a file; stopped by PID on close()."""

    def __init__(self, argv, workdir, name, env=None):
        self.name = name
        self.log_path = Path(workdir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(_with_parent_death_signal(argv), stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=full_env, cwd=workdir)

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
    """A temporary directory plus the processes started in it, all cleaned up: by close(),
    or at interpreter exit for one still open (a run interrupted by Ctrl-C or SIGTERM skips
    unittest's tearDown)."""

    _open = set()

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-it-"))
        self.processes = []
        Sandbox._open.add(self)

    def start(self, argv, name, env=None):
        p = Process(argv, self.dir, name, env)
        self.processes.append(p)
        return p

    def close(self):
        if self not in Sandbox._open:
            return
        Sandbox._open.discard(self)
        for p in reversed(self.processes):
            p.stop(getattr(p, "stop_signal", signal.SIGTERM))
        if os.environ.get("VIGIL_KEEP_TEST_DIRS"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


@atexit.register
def _close_open_sandboxes():
    for sandbox in list(Sandbox._open):
        sandbox.close()


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


# ------------------------------------------------------------------- Vigil HTTP programs

ECHO_BINARY = "http/examples/vigil-echo"
GATEWAY_BINARY = "services/gateway/vigil-gateway"


class Server:
    """A started HTTP program: its process, public and admin URLs and ports."""

    def __init__(self, proc, port, admin_port=None):
        self.proc = proc
        self.port = port
        self.admin_port = admin_port
        self.url = f"http://127.0.0.1:{port}"
        self.admin = f"http://127.0.0.1:{admin_port}" if admin_port else None

    @property
    def pid(self):
        return self.proc.proc.pid

    def alive(self):
        return self.proc.proc.poll() is None


def can_connect(port, host="127.0.0.1", timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_ready(proc, condition, what, timeout=20.0, interval=0.05):
    """Like wait_for, but gives up at once (with the program's output) when it exits."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.proc.returncode} while "
                                 f"waiting for {what}; output:\n{proc.output()[-4000:]}")
        try:
            if condition():
                return
        except Exception as e:
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def _start_http_program(sandbox, argv, name, env, port=None):
    port, admin = port or free_port(), free_port()
    full_env = {"VIGIL_PORT": str(port), "VIGIL_ADMIN_PORT": str(admin)}
    full_env.update(env or {})
    proc = sandbox.start(argv, name, full_env)
    server = Server(proc, port, admin)
    wait_ready(proc, lambda: http_get(server.admin + "/readyz", timeout=2)[0] == 200,
               f"{name} /readyz")
    wait_ready(proc, lambda: can_connect(port), f"{name} public port")
    return server


def start_echo(sandbox, env=None, name="echo", port=None):
    """Starts vigil-echo on free ports (VIGIL_PORT / VIGIL_ADMIN_PORT), or on public
    `port` (that of an echo stopped before: a restart); returns a Server once its admin
    /readyz answers 200 and its public port accepts connections."""
    return _start_http_program(sandbox, [binary(ECHO_BINARY)], name, env, port)


def write_gateway_config(sandbox, routes, name="gateway"):
    path = sandbox.dir / f"{name}.json"
    path.write_text(json.dumps({"routes": routes}, indent=2))
    return path


def start_gateway(sandbox, routes, env=None, name="gateway"):
    """Starts vigil-gateway with `routes` (a list of route objects) in a --config file;
    returns a Server once it is ready."""
    config = write_gateway_config(sandbox, routes, name)
    return _start_http_program(sandbox, [binary(GATEWAY_BINARY), "--config", str(config)],
                               name, env)


def start_nginx(sandbox, server_body, name="nginx"):
    """Starts Debian's nginx in the foreground as one process (no master, so stopping its
    PID stops all of it) with every path under the sandbox. `server_body` is the inside
    of its one `server {}` block (locations). Returns a Server (no admin port)."""
    port = free_port()
    prefix = sandbox.dir / name
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port};
    location = /__ready {{ return 204; }}
{server_body}
  }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = sandbox.start([nginx, "-p", str(prefix), "-c", str(conf),
                          "-e", str(prefix / "error.log")], name)
    server = Server(proc, port)
    wait_ready(proc, lambda: http_get(server.url + "/__ready", timeout=2)[0] == 204,
               f"{name} /__ready")
    return server


# Set by CTest when the programs were built with ASan+UBSan (the asan-integration preset):
# their shadow memory and the allocator's quarantine make memory bounds meaningless there,
# so those bounds are not checked; everything else is.
SANITIZED = os.environ.get("VIGIL_SANITIZED") == "1"


def assert_memory_below(test, used, bound, message):
    """test.assertLess(used, bound), unless the programs run under the sanitizers."""
    if not SANITIZED:
        test.assertLess(used, bound, message)


def read_peak_rss(pid):
    """The process' peak resident set size (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def log_records(proc):
    """Every JSON object line the process wrote (a line still being written is skipped)."""
    records = []
    for line in proc.lines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


def access_records(proc):
    return [r for r in log_records(proc) if r.get("msg") == "request completed"]


def metric_samples(text, name):
    """[(labels dict, value)] of every sample named exactly `name` in a text exposition."""
    samples = []
    # Label values may hold braces ("/items/{id}"), so the label set is matched pair by pair.
    pattern = (r"^" + re.escape(name) + r'(?:\{((?:\w+="(?:[^"\\]|\\.)*",?)*)\})? (\S+)')
    for match in re.finditer(pattern, text, re.M):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        samples.append((labels, float(match.group(2))))
    return samples


def metric_sum(admin_url, name, labels):
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    _, _, body = http_get(admin_url + "/metrics")
    return sum(v for got, v in metric_samples(body.decode(), name)
               if all(got.get(k) == want for k, want in labels.items()))


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


# ------------------------------------------------------------------ bodies and checksums

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
_MASK64 = (1 << 64) - 1


def fnv1a64_hex(data, h=FNV_OFFSET):
    """FNV-1a 64-bit of `data` as 16 lowercase hex digits (pure Python: small bodies)."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK64
    return f"{h:016x}"


class SparseBody:
    """A body of `size` bytes that are zero except for one marker byte every `stride`
    bytes. Its FNV-1a costs O(markers) (a run of n zero bytes multiplies the hash by
    prime^n), so gigabyte bodies can be checked, and because the markers vary and do not
    fall on power-of-two offsets, a lost, repeated or reordered block changes the hash."""

    def __init__(self, size, stride=1_000_003):
        self.size = size
        self.stride = stride

    def _markers(self, begin, end):
        first = max(0, (begin - self.stride // 2 + self.stride - 1) // self.stride)
        k = first
        while True:
            pos = k * self.stride + self.stride // 2
            if pos >= end:
                return
            if pos >= begin:
                yield pos, k % 255 + 1
            k += 1

    def fnv1a_hex(self):
        h, at = FNV_OFFSET, 0
        for pos, value in self._markers(0, self.size):
            h = (h * pow(FNV_PRIME, pos - at, 1 << 64)) & _MASK64
            h = ((h ^ value) * FNV_PRIME) & _MASK64
            at = pos + 1
        h = (h * pow(FNV_PRIME, self.size - at, 1 << 64)) & _MASK64
        return f"{h:016x}"

    def chunks(self, chunk_size=1 << 20):
        buf = bytearray(chunk_size)
        for offset in range(0, self.size, chunk_size):
            n = min(chunk_size, self.size - offset)
            marks = list(self._markers(offset, offset + n))
            for pos, value in marks:
                buf[pos - offset] = value
            yield bytes(buf[:n])
            for pos, _ in marks:
                buf[pos - offset] = 0

    def bytes(self):
        return b"".join(self.chunks())


class PatternChecker:
    """Checks a streamed body against vigil-echo's /bytes/{n} pattern: byte i is
    'a' + i % 26. Keeps a count and the offset of the first wrong byte."""

    _ALPHABET = bytes(range(ord("a"), ord("a") + 26))

    def __init__(self):
        self.count = 0
        self.first_mismatch = None
        self._ref = self._ALPHABET * ((1 << 20) // 26 + 3)

    def __call__(self, chunk):
        view = memoryview(chunk)
        while len(view):
            n = min(len(view), len(self._ref) - 26)
            start = self.count % 26
            if self.first_mismatch is None and view[:n] != self._ref[start:start + n]:
                expected = self._ref[start:start + n]
                i = next(j for j in range(n) if view[j] != expected[j])
                self.first_mismatch = self.count + i
            self.count += n
            view = view[n:]


# ------------------------------------------------------------------------ raw HTTP/1.1

class PeerClosed(Exception):
    """The server closed the connection before a complete response."""


class Response:
    def __init__(self, status, reason, headers, body, elapsed):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in wire order
        self.body = body
        self.elapsed = elapsed  # seconds from the request's last byte sent to the end

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<{self.status} {self.reason} {self.headers} "
                f"{self.body[:300] if self.body is not None else None!r}>")


def build_request(method, target, headers=None, body=None, chunked=False, host=True):
    """The bytes of one request. `headers` is a dict or a list of pairs; Content-Length
    or chunked framing is added for `body` (bytes, or a list of chunks when chunked)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in pairs}
    if host and "host" not in names:
        pairs.insert(0, ("Host", "127.0.0.1"))
    payload = b""
    if chunked:
        pairs.append(("Transfer-Encoding", "chunked"))
        pieces = [body] if isinstance(body, (bytes, bytearray)) else list(body or [])
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    elif body is not None:
        if "content-length" not in names:
            pairs.append(("Content-Length", str(len(body))))
        payload = bytes(body)
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs)
    return head.encode("latin-1") + b"\r\n" + payload


class RawConnection:
    """One client TCP connection speaking HTTP/1.1 by hand, for what urllib hides:
    keep-alive, pipelining, malformed requests, slow clients, and seeing exactly when
    the server answers or closes."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.sent_at = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)
        self.sent_at = time.monotonic()

    def request(self, method, target, headers=None, body=None, chunked=False):
        self.send(build_request(method, target, headers, body, chunked))

    def exchange(self, method, target, headers=None, body=None, chunked=False, sink=None):
        self.request(method, target, headers, body, chunked)
        return self.read_response(method, sink=sink)

    def _fill(self, size=1 << 16):
        if self.eof:
            return False
        try:
            data = self.sock.recv(size)
        except ConnectionResetError:
            data = b""  # what arrived before the reset is still in self.buf
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _readline(self, limit=1 << 20):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise AssertionError("response line too long")
            if not self._fill():
                raise PeerClosed(f"closed mid-line after {bytes(self.buf[:200])!r}")

    def _read_exact(self, n, sink):
        while n > 0:
            if not self.buf and not self._fill(1 << 20):
                raise PeerClosed(f"closed with {n} body bytes missing")
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_response(self, method="GET", sink=None):
        """Reads one response. The body is kept, or passed piecewise to `sink` (and
        then Response.body is None). Raises PeerClosed if the server closes first."""
        while True:
            line = self._readline()
            if not line.strip() and not self.buf and self.eof:
                raise PeerClosed("closed before a status line")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise AssertionError(f"bad status line {line!r}")
            status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
            headers = []
            while True:
                h = self._readline().decode("latin-1").rstrip("\r\n")
                if not h:
                    break
                name, _, value = h.partition(":")
                headers.append((name.strip(), value.strip()))
            if 100 <= status < 200:
                continue
            break
        kept = []
        out = sink or kept.append
        te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in te:
            while True:
                size_line = self._readline().split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._readline().strip():
                        pass  # trailers
                    break
                self._read_exact(size, out)
                if self._readline().strip():
                    raise AssertionError("chunk not followed by CRLF")
        elif cl:
            self._read_exact(int(cl[0]), out)
        else:
            while self.buf or self._fill(1 << 20):
                out(bytes(self.buf))
                self.buf.clear()
        body = None if sink else b"".join(kept)
        return Response(status, reason, headers, body, time.monotonic() - self.sent_at)

    def readable(self, timeout):
        """True when the server sent something (or closed) within `timeout` seconds."""
        if self.buf or self.eof:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def wait_closed(self, timeout):
        """Waits up to `timeout` s for the server to close; returns (closed, bytes seen).
        A reset counts as closed."""
        deadline = time.monotonic() + timeout
        seen = bytearray(self.buf)
        self.buf.clear()
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, bytes(seen)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False, bytes(seen)
            except ConnectionResetError:
                self.eof = True
                break
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                self.eof = True
            seen += data
        return True, bytes(seen)


# ---------------------------------------------------------------------- problem details

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
GENERATED_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID, Crockford base32
# Words that would mean a response leaks how the server is built.
INTERNALS = ("boost", "beast", "asio", "std::", ".cpp", ".hpp", "exception", "what()",
             "errno", "terminate", "stack")


def assert_problem(test, response, status):
    """`response` is an RFC 9457 problem with `status`, carrying the request id of its
    X-Request-Id header and a trace id, and nothing about the server's internals. Every
    deviation is listed in one failure."""
    test.assertEqual(response.status, status, response)
    wrong = []
    content_type = response.header("Content-Type") or ""
    if not content_type.startswith("application/problem+json"):
        wrong.append(f"Content-Type is {content_type!r}")
    request_id = response.header("X-Request-Id")
    if request_id is None or not REQUEST_ID_RE.match(request_id):
        wrong.append(f"X-Request-Id header is {request_id!r}")
    try:
        problem = response.json()
    except ValueError:
        raise AssertionError(f"not JSON: {response}")
    for key in ("type", "title", "status", "detail", "request_id", "trace_id"):
        if key not in problem:
            wrong.append(f"no {key!r}")
    if problem.get("status") != status:
        wrong.append(f"status member is {problem.get('status')!r}")
    for key in ("type", "title"):
        if not isinstance(problem.get(key), str) or not problem.get(key):
            wrong.append(f"{key} is {problem.get(key)!r}")
    if "detail" in problem and not isinstance(problem["detail"], str):
        wrong.append(f"detail is {problem['detail']!r}")
    if "request_id" in problem and problem["request_id"] != request_id:
        wrong.append(f"request_id member {problem['request_id']!r} differs from the "
                     f"X-Request-Id header {request_id!r}")
    trace_id = problem.get("trace_id")
    if "trace_id" in problem and (not isinstance(trace_id, str)
                                  or not re.match(r"^[0-9a-f]{32}$", trace_id)
                                  or trace_id == "0" * 32):
        wrong.append(f"trace_id is {trace_id!r}")
    text = response.body.decode(errors="replace").lower()
    wrong += [f"internal detail {w!r}" for w in INTERNALS if w in text]
    if wrong:
        raise AssertionError(f"problem+json {status}: " + "; ".join(wrong) + f"\n{response}")
    return problem


# ------------------------------------------------------------------ the platform

SERVICE_BINARIES = {name: f"services/{name}/vigil-{name}" for name in ("auth", "catalog", "orders")}
INTERNAL_SECRET = "integration-test-secret-0123456789abcdef"


def start_postgres(sandbox):
    """Starts Debian's PostgreSQL 15 as user postgres (initdb and postgres refuse root) in
    the sandbox on a free port; returns a libpq URL for database "postgres". Stopped with
    SIGINT (a fast shutdown) when the sandbox closes."""
    bindir = Path("/usr/lib/postgresql/15/bin")
    if not (bindir / "postgres").exists():
        raise AssertionError("PostgreSQL 15 is not installed (./vigil test installs it)")
    os.chmod(sandbox.dir, 0o755)  # postgres must reach its directory inside
    root = sandbox.dir / "pg"
    root.mkdir()
    shutil.chown(root, "postgres", "postgres")
    as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    if os.geteuid() != 0:
        as_postgres = []
    subprocess.run(as_postgres + [str(bindir / "initdb"), "-D", str(root / "data"), "-U",
                                  "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    port = free_port()
    proc = sandbox.start(as_postgres + [str(bindir / "postgres"), "-D", str(root / "data"),
                                        "-p", str(port), "-k", str(root),
                                        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                         "postgres")
    proc.stop_signal = signal.SIGINT
    wait_ready(proc, lambda: "ready to accept connections" in proc.output(), "postgres ready")
    wait_ready(proc, lambda: can_connect(port), "postgres port")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


class Platform:
    """gateway -> auth, catalog, orders on free ports, sharing one identity secret, each
    writing its traces to its own OTLP/JSON file. `env` is added to every service (for
    example DATABASE_URL); the SQLite files go to the sandbox."""

    def __init__(self, sandbox, env=None):
        self.sandbox = sandbox
        self.services = {}
        common = {"VIGIL_INTERNAL_SECRET": INTERNAL_SECRET, "VIGIL_DATA_DIR": str(sandbox.dir / "data"),
                  "OTEL_BSP_SCHEDULE_DELAY": "100", "VIGIL_WORKERS": "2"}
        common.update(env or {})
        self.traces = {}
        for name in ("auth", "catalog", "orders"):
            extra = dict(common)
            self.traces[name] = sandbox.dir / f"{name}-traces.jsonl"
            extra["VIGIL_TRACES_FILE"] = str(self.traces[name])
            if name == "orders":
                extra["VIGIL_CATALOG_URL"] = self.services["catalog"].url
            self.services[name] = _start_http_program(sandbox, [binary(SERVICE_BINARIES[name])],
                                                      name, extra)
        routes = [
            {"prefix": "/api/auth", "upstream": self.services["auth"].url, "strip_prefix": True},
            {"prefix": "/api/catalog", "upstream": self.services["catalog"].url, "strip_prefix": True},
            {"prefix": "/api/orders", "upstream": self.services["orders"].url + "/orders",
             "strip_prefix": True},
        ]
        extra = dict(common)
        self.traces["gateway"] = sandbox.dir / "gateway-traces.jsonl"
        extra["VIGIL_TRACES_FILE"] = str(self.traces["gateway"])
        extra["VIGIL_GATEWAY_JWKS_URL"] = self.services["auth"].url + "/.well-known/jwks.json"
        self.services["gateway"] = start_gateway(sandbox, routes, extra)
        self.gateway = self.services["gateway"]
        self.api = self.gateway.url + "/api"

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        """(status, headers, parsed JSON or None) of a request through the gateway."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.api + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, hdrs, payload = r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, payload = e.code, dict(e.headers.items()), e.read()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        return status, hdrs, parsed

    def login(self, email, password="correct horse battery"):
        self.call("POST", "/auth/register", {"email": email, "password": password})
        status, _, tokens = self.call("POST", "/auth/login", {"email": email, "password": password})
        if status != 200:
            raise AssertionError(f"login failed: {status} {tokens}")
        return tokens

    def spans(self):
        """{service: [span]} from every service's traces file."""
        return {name: traces_file_spans(path) for name, path in self.traces.items()}

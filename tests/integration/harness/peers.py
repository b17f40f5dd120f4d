"""Real peers the suites and benchmarks run Vigil against: Debian's Prometheus, nginx,
PostgreSQL and Redis, each started in a sandbox on a free port and returned once it is
ready; and certificates made by the openssl command."""

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from .client import http_get
from .processes import can_connect, free_port, wait_for, wait_ready
from .programs import Server


def make_certificate(directory, name, common_name, serial):
    """A self-signed P-256 certificate for localhost and 127.0.0.1, valid two days, made by
    the openssl command; returns (certificate path, key path)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={common_name}", "-set_serial", str(serial),
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def start_prometheus(sandbox, scrape_targets, extra_args=()):
    """Starts Prometheus scraping `scrape_targets` every second; returns its URL."""
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


# The `http {}` directives of start_nginx when the caller gives none.
NGINX_HTTP = "access_log off;\n  keepalive_requests 100000;"


def start_nginx(sandbox, server_body, name="nginx", http_body=NGINX_HTTP, listen_options="",
                workers=1, master=False, events="worker_connections 512;"):
    """Starts nginx in the foreground with every path under `sandbox.dir / name` (its
    configuration, pid file, error.log, temporary files; the place for logs `http_body`
    asks for). `server_body` is the inside of its one `server {}` block (locations),
    after `listen 127.0.0.1:<port> <listen_options>;`; `http_body` the directives of the
    `http {}` block around it, `events` those of `events {}`. Without `master` nginx is
    one process (stopping its PID stops all of it); with it, a master and `workers`
    worker processes (SIGTERM to the master stops them too). Returns a Server (no admin
    port) once it answers."""
    port = free_port()
    prefix = sandbox.dir / name
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    # As root, a master would switch its workers to 'nobody', who cannot enter the sandbox.
    user = "user root root;" if master and os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
daemon off;
master_process {"on" if master else "off"};
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ {events} }}
http {{
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  {http_body}
  server {{
    listen 127.0.0.1:{port} {listen_options};
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


def start_postgres(sandbox):
    """Starts PostgreSQL 15 as user postgres (initdb and postgres refuse root) in the
    sandbox on a free port; returns a libpq URL for database "postgres". Stopped with
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


class Redis:
    """A redis-server in the sandbox (no persistence) on one port, which it keeps across
    kill() and restart(), with a tiny RESP client for the tests' own commands."""

    def __init__(self, sandbox, name="redis"):
        self.sandbox = sandbox
        self.name = name
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.restarts = 0
        self.start()

    def start(self):
        if not shutil.which("redis-server"):
            raise AssertionError("redis-server is not installed (./vigil test installs it)")
        workdir = self.sandbox.dir / f"{self.name}-data"
        workdir.mkdir(exist_ok=True)
        label = self.name if self.restarts == 0 else f"{self.name}-{self.restarts}"
        self.proc = self.sandbox.start(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(workdir), "--daemonize", "no", "--save", "", "--appendonly", "no"], label)
        wait_ready(self.proc, lambda: self._pong(), f"{self.name} PING")

    def _pong(self):
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def kill(self):
        """SIGKILL: connections reset, the port refuses."""
        self.proc.stop(signal.SIGKILL)

    def restart(self):
        self.restarts += 1
        self.start()

    def command(self, *args, timeout=5.0):
        """Sends one command; returns a status or bulk string, an integer, or a list."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = f"*{len(args)}\r\n"
            for a in args:
                a = str(a)
                out += f"${len(a.encode())}\r\n{a}\r\n"
            s.sendall(out.encode())
            reader = s.makefile("rb")
            return _resp(reader)


def _resp(reader):
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise AssertionError(f"redis: {rest}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)[:n]
        return data.decode()
    if kind == b"*":
        return [_resp(reader) for _ in range(int(rest))]
    raise AssertionError(f"redis: unexpected reply {line!r}")

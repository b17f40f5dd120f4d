"""Vigil's HTTP programs (vigil-echo, vigil-gateway, vigil-demo) started in a sandbox on
free ports, returned once they answer."""

import json

from .client import http_get
from .processes import binary, can_connect, free_ports, wait_for, wait_ready

ECHO_BINARY = "http/examples/vigil-echo"
GATEWAY_BINARY = "services/gateway/vigil-gateway"
DEMO_BINARY = "telemetry/examples/vigil-demo"


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
        return self.proc.pid

    def alive(self):
        return self.proc.proc.poll() is None


def start_http_program(sandbox, argv, name, env=None, port=None, inherit_env=True):
    """Starts a Vigil program on free ports (VIGIL_PORT / VIGIL_ADMIN_PORT), or on public
    `port`; returns a Server once its admin /readyz answers 200 and its public port
    accepts connections. `env` and `inherit_env` as for Sandbox.start."""
    ports = free_ports(2)
    port, admin = port or ports[0], ports[1]
    full_env = {"VIGIL_PORT": str(port), "VIGIL_ADMIN_PORT": str(admin)}
    full_env.update(env or {})
    proc = sandbox.start(argv, name, full_env, inherit_env)
    server = Server(proc, port, admin)
    wait_ready(proc, lambda: http_get(server.admin + "/readyz", timeout=2)[0] == 200,
               f"{name} /readyz")
    wait_ready(proc, lambda: can_connect(port), f"{name} public port")
    return server


def start_echo(sandbox, env=None, name="echo", port=None):
    """Starts vigil-echo on free ports, or on public `port` (that of an echo stopped
    before: a restart); returns a Server once it is ready."""
    return start_http_program(sandbox, [binary(ECHO_BINARY)], name, env, port)


def write_gateway_config(sandbox, routes, name="gateway", rate_limits=None):
    """Writes the gateway's --config file (`rate_limits`: that object, when given)."""
    path = sandbox.dir / f"{name}.json"
    config = {"routes": routes}
    if rate_limits is not None:
        config["rate_limits"] = rate_limits
    path.write_text(json.dumps(config, indent=2))
    return path


def start_gateway(sandbox, routes, env=None, name="gateway", inherit_env=True,
                  program=None, rate_limits=None):
    """Starts vigil-gateway (or the gateway binary `program`) with `routes` (a list of
    route objects) and `rate_limits` in a --config file; returns a Server once it is
    ready."""
    config = write_gateway_config(sandbox, routes, name, rate_limits)
    return start_http_program(sandbox, [program or binary(GATEWAY_BINARY), "--config",
                                        str(config)], name, env, inherit_env=inherit_env)


def start_demo(sandbox, env=None, name="demo"):
    """Starts vigil-demo on free ports; returns (process, public_url, admin_url)."""
    port, admin = free_ports(2)
    proc = sandbox.start([binary(DEMO_BINARY), "--port", str(port), "--admin-port", str(admin)],
                         name, env)
    admin_url = f"http://127.0.0.1:{admin}"
    wait_for(lambda: http_get(admin_url + "/healthz")[0] == 200, what=f"{name} /healthz")
    return proc, f"http://127.0.0.1:{port}", admin_url

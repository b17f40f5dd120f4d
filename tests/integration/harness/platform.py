"""The whole platform in a sandbox: the services of services/topology.json on free ports,
the gateway in front with the topology's routes."""

from .client import call_json
from .otlp import traces_file_spans
from .processes import binary
from .programs import start_gateway, start_http_program
from .topology import SERVICES, gateway_routes

SERVICE_BINARIES = {name: f"services/{name}/vigil-{name}" for name in SERVICES}
INTERNAL_SECRET = "integration-test-secret-0123456789abcdef"


class Platform:
    """gateway -> auth, catalog, orders on free ports, sharing one identity secret, each
    writing its traces to its own OTLP/JSON file. `env` is added to every service (for
    example DATABASE_URL; a None value leaves that variable out, as
    {"VIGIL_INTERNAL_SECRET": None} does beside a VIGIL_INTERNAL_SECRET_FILE); the SQLite
    files go to the sandbox (`data_dir`); `gateway_limits` is the gateway's "rate_limits"
    (none when not given). The services start in the topology's
    order, the gateway last (its first act is fetching auth's keys)."""

    def __init__(self, sandbox, env=None, gateway_limits=None):
        self.sandbox = sandbox
        self.services = {}
        self.data_dir = sandbox.dir / "data"
        common = {"VIGIL_INTERNAL_SECRET": INTERNAL_SECRET, "VIGIL_DATA_DIR": str(self.data_dir),
                  "OTEL_BSP_SCHEDULE_DELAY": "100", "VIGIL_WORKERS": "2"}
        common.update(env or {})
        common = {k: v for k, v in common.items() if v is not None}
        self.traces = {}
        for name in SERVICES:
            extra = dict(common)
            self.traces[name] = sandbox.dir / f"{name}-traces.jsonl"
            extra["VIGIL_TRACES_FILE"] = str(self.traces[name])
            if name == "orders":
                extra["VIGIL_CATALOG_URL"] = self.services["catalog"].url
            if name == "gateway":
                extra["VIGIL_GATEWAY_JWKS_URL"] = (self.services["auth"].url
                                                   + "/.well-known/jwks.json")
                routes = gateway_routes({n: s.url for n, s in self.services.items()})
                self.services[name] = start_gateway(sandbox, routes, extra,
                                                    rate_limits=gateway_limits)
            else:
                self.services[name] = start_http_program(
                    sandbox, [binary(SERVICE_BINARIES[name])], name, extra)
        self.gateway = self.services["gateway"]
        self.api = self.gateway.url + "/api"

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        """(status, headers, parsed JSON or None) of a request through the gateway."""
        return call_json(self.api + path, method, body, token, headers, raw)

    def login(self, email, password="correct horse battery"):
        self.call("POST", "/auth/register", {"email": email, "password": password})
        status, _, tokens = self.call("POST", "/auth/login", {"email": email, "password": password})
        if status != 200:
            raise AssertionError(f"login failed: {status} {tokens}")
        return tokens

    def spans(self):
        """{service: [span]} from every service's traces file."""
        return {name: traces_file_spans(path) for name, path in self.traces.items()}

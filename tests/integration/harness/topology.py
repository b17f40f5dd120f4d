"""services/topology.json, the one place that says which services make the platform, the
ports each listens on by default and the gateway's default routes. ./vigil up, the C++
defaults (a header CMake generates from it), this harness and the benchmarks all read it.

    from harness.topology import SERVICES, gateway_url
    SERVICES["auth"]["admin_port"]  # 9081
"""

import json

from .processes import ROOT

TOPOLOGY_FILE = ROOT / "services" / "topology.json"
TOPOLOGY = json.loads(TOPOLOGY_FILE.read_text())
HOST = TOPOLOGY["host"]
# {name: {"name", "port", "admin_port"}} in the file's order: each service after those it
# calls, the gateway last.
SERVICES = {s["name"]: s for s in TOPOLOGY["services"]}
# [{"prefix", "service", "path", "strip_prefix"}]: the gateway's default routes.
ROUTES = TOPOLOGY["routes"]


def default_url(name):
    """The URL of service `name`'s public port where ./vigil up starts it."""
    return f"http://{HOST}:{SERVICES[name]['port']}"


def gateway_url():
    return default_url("gateway")


def gateway_routes(urls):
    """The gateway's default routes in its --config format, with each service at
    urls[name] instead of its default port."""
    return [{"prefix": r["prefix"], "upstream": urls[r["service"]] + r["path"],
             "strip_prefix": r["strip_prefix"]} for r in ROUTES]

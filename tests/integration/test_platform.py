"""The whole platform end to end: gateway -> auth, catalog, orders, on SQLite and on a
real PostgreSQL, checked through what operators see (logs, spans, metrics) and through
what clients get wrong (a table of bad input that must never produce a 5xx)."""
import json
import os
import re
import subprocess
import unittest
import uuid
from pathlib import Path

import yaml

from harness import (Platform, Sandbox, binary, http_get, log_records, metric_samples,
                     start_postgres, wait_for, INTERNAL_SECRET, SERVICE_BINARIES)
from harness.tokens import (b64url_decode, expired_token, forged_token, token_claims,
                            unsigned_token)
from harness.topology import ROUTES, SERVICES, default_url

ROOT = Path(__file__).resolve().parents[2]
SPAN_KIND_CLIENT = 3


class PlatformTest(unittest.TestCase):
    engine = "sqlite"

    @classmethod
    def platform_env(cls, sandbox):
        return {}

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        try:
            cls.p = Platform(cls.sandbox, cls.platform_env(cls.sandbox))
        except Exception:
            cls.sandbox.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    def email(self):
        return f"{uuid.uuid4().hex[:12]}@example.com"

    def new_item(self, token, stock=10, price=2500, name="Lamp"):
        status, _, item = self.p.call("POST", "/catalog/items", {
            "name": name, "category": "home", "price_cents": price, "stock": stock}, token)
        self.assertEqual(status, 201, item)
        return item

    def metric(self, service, name, labels):
        _, _, body = http_get(self.p.services[service].admin + "/metrics")
        return sum(v for got, v in metric_samples(body.decode(), name)
                   if all(got.get(k) == want for k, want in labels.items()))

    # ---------------------------------------------------------------- the journey

    def test_journey_is_one_trace_across_every_service(self):
        tokens = self.p.login(self.email())
        token = tokens["access_token"]
        self.assertEqual(tokens["token_type"], "Bearer")
        item = self.new_item(token, stock=10, price=2500)

        trace_id = uuid.uuid4().hex
        traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
        status, headers, order = self.p.call(
            "POST", "/orders", {"lines": [{"item_id": item["id"], "quantity": 2}]}, token,
            headers={"traceparent": traceparent})
        self.assertEqual(status, 201, order)
        self.assertEqual(order["total_cents"], 5000)
        self.assertEqual(order["status"], "confirmed")
        request_id = headers["X-Request-Id"]

        status, _, listing = self.p.call("GET", "/orders", token=token)
        self.assertEqual(status, 200)
        self.assertIn(order["id"], [o["id"] for o in listing["orders"]])
        status, _, stored = self.p.call("GET", f"/catalog/items/{item['id']}")
        self.assertEqual(stored["stock"], 8)

        # Logs: the order request's lines in gateway, orders and catalog share its trace id
        # and request id.
        def lines_of(service):
            return [r for r in log_records(self.p.services[service].proc)
                    if r.get("trace_id") == trace_id]
        for service in ("gateway", "orders", "catalog"):
            found = wait_for(lambda: lines_of(service), what=f"{service} log lines of the trace")
            self.assertTrue(all(r.get("request_id") == request_id for r in found),
                            f"{service}: {found}")

        # Spans: one tree, rooted at the gateway's server span (child of our traceparent),
        # with the database statements as leaves in orders and catalog.
        def trace_spans():
            spans = {name: [s for s in found if s["traceId"] == trace_id]
                     for name, found in self.p.spans().items()}
            db = [s for name in ("orders", "catalog") for s in spans[name]
                  if any(a["key"] == "db.system.name" for a in s.get("attributes", []))]
            # Children end (and are exported) before their parents: wait for the whole
            # tree, every span's parent present but the root's.
            found = [s for group in spans.values() for s in group]
            ids = {s["spanId"] for s in found}
            orphans = [s for s in found if s.get("parentSpanId") not in ids]
            names = {s["name"] for s in found}
            ok = (db and len(orphans) == 1 and
                  {"POST /api/orders/*", "POST /orders", "POST /reservations"} <= names)
            return spans if ok else None
        spans = wait_for(trace_spans, what="spans of the order from every service")
        everything = [s for found in spans.values() for s in found]
        ids = {s["spanId"] for s in everything}
        roots = [s for s in everything if s.get("parentSpanId") not in ids]
        self.assertEqual(len(roots), 1, [(s["name"], s.get("parentSpanId")) for s in roots])
        self.assertEqual(roots[0]["parentSpanId"], traceparent.split("-")[2])
        self.assertIn(roots[0], spans["gateway"])
        parents = {s.get("parentSpanId") for s in everything}
        for service in ("orders", "catalog"):
            db_spans = [s for s in spans[service]
                        if any(a["key"] == "db.system.name" for a in s.get("attributes", []))]
            self.assertTrue(db_spans, f"no database span in {service}")
            for s in db_spans:
                self.assertEqual(s["kind"], SPAN_KIND_CLIENT, s["name"])
                self.assertNotIn(s["spanId"], parents, f"{s['name']} is not a leaf")
                self.assertRegex(s["name"], r"^[A-Z]+ \w+$")
        names = {s["name"] for s in everything}
        self.assertIn("POST /api/orders/*", names)
        self.assertIn("POST /orders", names)
        self.assertIn("POST /reservations", names)

        # Metrics: each service counts the request under its route template.
        expect = {"gateway": "/api/orders/*", "orders": "/orders", "catalog": "/reservations"}
        for service, route in expect.items():
            count = wait_for(lambda: self.metric(service, "http_server_request_duration_seconds_count",
                                                 {"http_route": route, "http_request_method": "POST"}),
                             what=f"{service} request metric")
            self.assertGreaterEqual(count, 1, service)
        db_system = "postgresql" if self.engine == "postgresql" else "sqlite"
        for service in ("auth", "catalog", "orders"):
            self.assertGreater(self.metric(service, "db_client_operation_duration_seconds_count",
                                           {"db_system": db_system}), 0, service)

    def test_promtool_accepts_every_admin_endpoint(self):
        # Some traffic first, so that every family has samples.
        tokens = self.p.login(self.email())
        self.new_item(tokens["access_token"])
        for name, server in self.p.services.items():
            _, _, body = http_get(server.admin + "/metrics")
            check = subprocess.run(["promtool", "check", "metrics"], input=body,
                                   capture_output=True)
            self.assertEqual(check.returncode, 0,
                             f"{name}: {check.stdout.decode()} {check.stderr.decode()}")

    # ---------------------------------------------------------------- bad input

    def test_bad_input_gets_a_clear_4xx_and_nothing_is_logged_as_an_error(self):
        tokens = self.p.login(self.email())
        token = tokens["access_token"]
        item = self.new_item(token)
        header = token.split(".")[0]
        claims = token_claims(token)
        forged = forged_token(token, sub="someone-else")
        alg_none = unsigned_token({"alg": "none", "typ": "JWT"}, claims)
        hs256 = unsigned_token({"alg": "HS256", "typ": "JWT", "kid": json.loads(b64url_decode(header))["kid"]},
                               claims, b"x" * 32)
        line = {"item_id": item["id"], "quantity": 1}
        cases = [
            ("malformed JSON", "POST", "/auth/register", None, b'{"email": ', None, 400),
            ("not an object", "POST", "/auth/login", None, b'[1, 2]', None, 400),
            ("wrong type", "POST", "/auth/register", {"email": 5, "password": "x" * 10}, None, None, 422),
            ("missing field", "POST", "/auth/login", {"email": "a@example.com"}, None, None, 422),
            ("unknown field", "POST", "/catalog/items", {"name": "A", "category": "home",
                                                         "price_cents": 1, "stock": 1, "colour": "red"},
             None, token, 422),
            ("long field", "POST", "/catalog/items", {"name": "A" * 2000, "category": "home",
                                                      "price_cents": 1, "stock": 1}, None, token, 422),
            ("huge body", "POST", "/catalog/items", {"name": "A" * 100000, "category": "home",
                                                     "price_cents": 1, "stock": 1}, None, token, 413),
            ("negative price", "POST", "/catalog/items", {"name": "A", "category": "home",
                                                          "price_cents": -1, "stock": 1}, None, token, 422),
            ("float quantity", "POST", "/orders", {"lines": [dict(line, quantity=1.5)]}, None, token, 422),
            ("no lines", "POST", "/orders", {"lines": []}, None, token, 422),
            ("bad limit", "GET", "/catalog/items?limit=0", None, None, None, (400, 422)),
            ("bad cursor", "GET", "/catalog/items?cursor=%%%", None, None, None, 400),
            ("unknown route", "GET", "/catalog/nowhere", None, None, None, 404),
            ("unknown item", "GET", "/catalog/items/" + "0" * 28, None, None, None, 404),
            ("malformed id", "GET", "/catalog/items/..%2f..", None, None, None, 404),
            ("no token", "POST", "/orders", {"lines": [line]}, None, None, 401),
            ("forged token", "GET", "/orders", None, None, forged, 401),
            ("alg none token", "GET", "/orders", None, None, alg_none, 401),
            ("HS256 token", "GET", "/orders", None, None, hs256, 401),
            ("garbage token", "GET", "/auth/me", None, None, "not.a.token", 401),
            ("wrong password", "POST", "/auth/login", {"email": "nobody@example.com",
                                                       "password": "wrong password"}, None, None, 401),
            ("reservation as a user", "POST", "/catalog/reservations",
             {"id": "0" * 28, "lines": [line]}, None, token, 403),
        ]
        if self.engine == "sqlite":
            cases.append(("expired token", "GET", "/orders", None, None, expired_token(self.sandbox.dir / "data", claims), 401))
        for name, method, path, body, raw, bearer, expected in cases:
            with self.subTest(name):
                status, headers, problem = self.p.call(method, path, body, bearer, raw=raw)
                allowed = expected if isinstance(expected, tuple) else (expected,)
                self.assertIn(status, allowed, problem)
                self.assertTrue(headers.get("Content-Type", "").startswith("application/problem+json"),
                                headers)
                self.assertEqual(problem["status"], status)
                self.assertTrue(problem["detail"])
                self.assertIn("request_id", problem)
        for name, server in self.p.services.items():
            errors = [r for r in log_records(server.proc) if r.get("level") in ("error", "fatal")]
            self.assertEqual(errors, [], name)

    def test_replayed_refresh_token_revokes_the_family(self):
        tokens = self.p.login(self.email())
        status, _, second = self.p.call("POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        self.assertEqual(status, 200, second)
        self.assertNotEqual(second["refresh_token"], tokens["refresh_token"])
        status, _, _ = self.p.call("POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        self.assertEqual(status, 401)
        # The replay revoked the family: the newer token is dead too.
        status, _, _ = self.p.call("POST", "/auth/refresh", {"refresh_token": second["refresh_token"]})
        self.assertEqual(status, 401)

    def test_a_client_cannot_forge_the_identity_header(self):
        forged = "v1.user:someone.9999999999." + "0" * 64
        status, _, _ = self.p.call("GET", "/orders", headers={"X-Vigil-Identity": forged})
        self.assertEqual(status, 401)
        status, _, _ = self.p.call("GET", "/auth/me", headers={"X-Vigil-Identity": forged})
        self.assertEqual(status, 401)
        # Straight to the service's own port, past the gateway: still refused.
        status, _, _ = http_get(self.p.services["orders"].url + "/orders",
                                headers={"X-Vigil-Identity": forged})
        self.assertEqual(status, 401)

    def test_me_and_other_users_orders(self):
        alice = self.p.login(self.email())["access_token"]
        bob = self.p.login(self.email())["access_token"]
        status, _, me = self.p.call("GET", "/auth/me", token=alice)
        self.assertEqual(status, 200, me)
        item = self.new_item(alice)
        status, _, order = self.p.call("POST", "/orders", {"lines": [{"item_id": item["id"], "quantity": 1}]},
                                       alice, headers={"Idempotency-Key": "k-" + uuid.uuid4().hex})
        self.assertEqual(status, 201, order)
        status, _, _ = self.p.call("GET", f"/orders/{order['id']}", token=bob)
        self.assertEqual(status, 404)
        status, _, mine = self.p.call("GET", f"/orders/{order['id']}", token=alice)
        self.assertEqual(status, 200)
        self.assertEqual(mine["id"], order["id"])


class PostgresPlatformTest(PlatformTest):
    engine = "postgresql"

    @classmethod
    def platform_env(cls, sandbox):
        return {"DATABASE_URL": start_postgres(sandbox)}


class SecretChangeTest(unittest.TestCase):
    """The change of VIGIL_INTERNAL_SECRET that docs/operations.md gives, each step a restart
    of every process on the same data: an access token issued before the change keeps
    working through the gateway, and services keep accepting each other's calls."""

    def test_three_step_change_keeps_tokens_and_calls_between_services(self):
        sandbox = Sandbox()
        self.addCleanup(sandbox.close)
        old, new = INTERNAL_SECRET, "a-new-internal-secret-for-the-platform-test"
        steps = [
            {"VIGIL_INTERNAL_SECRET": old, "VIGIL_INTERNAL_SECRET_PREVIOUS": new},
            {"VIGIL_INTERNAL_SECRET": new, "VIGIL_INTERNAL_SECRET_PREVIOUS": old},
            {"VIGIL_INTERNAL_SECRET": new},
        ]
        p = Platform(sandbox, {"VIGIL_INTERNAL_SECRET": old})
        token = p.login(f"{uuid.uuid4().hex[:12]}@example.com")["access_token"]
        for number, env in enumerate(steps, start=1):
            for server in p.services.values():
                self.assertEqual(server.proc.stop(), 0)
            p = Platform(sandbox, env)
            status, _, me = p.call("GET", "/auth/me", token=token)
            self.assertEqual(status, 200, f"step {number}: {me}")
            # gateway -> orders -> catalog: identity headers signed and checked by each.
            status, _, item = p.call("POST", "/catalog/items", {
                "name": "Lamp", "category": "home", "price_cents": 100, "stock": 5}, token)
            self.assertEqual(status, 201, f"step {number}: {item}")
            status, _, order = p.call("POST", "/orders",
                                      {"lines": [{"item_id": item["id"], "quantity": 1}]}, token,
                                      headers={"Idempotency-Key": "k-" + uuid.uuid4().hex})
            self.assertEqual(status, 201, f"step {number}: {order}")
            auth_log = p.services["auth"].proc.output()
            self.assertNotIn("does not decrypt", auth_log, f"step {number}")
            if number == 2:
                self.assertIn("sealed under the current", auth_log)


class OpenApiTest(unittest.TestCase):
    """Every route a service serves is in docs/openapi.yaml, and every documented route
    is served (through the gateway's embedded routes)."""

    def test_documented_routes_are_exactly_the_served_routes(self):
        doc = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
        documented = set()
        for path, operations in doc["paths"].items():
            for method in operations:
                if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                    documented.add(f"{method.upper()} {path}")
        served = set()
        sandbox = Sandbox()
        try:
            for route in ROUTES:
                name, prefix, upstream_path = route["service"], route["prefix"], route["path"]
                out = subprocess.run([binary(SERVICE_BINARIES[name]), "--routes"], capture_output=True,
                                     text=True, cwd=sandbox.dir, timeout=30,
                                     env=dict(os.environ, VIGIL_DATA_DIR=str(sandbox.dir)))
                self.assertEqual(out.returncode, 0, out.stderr)
                for line in out.stdout.splitlines():
                    method, path = line.split(" ", 1)
                    self.assertTrue(path.startswith(upstream_path), line)
                    served.add(f"{method} {prefix}{path[len(upstream_path):]}")
        finally:
            sandbox.close()
        self.assertEqual(served - documented, set(), "served but not documented")
        self.assertEqual(documented - served, set(), "documented but not served")


class SecretFilesTest(unittest.TestCase):
    """Secrets may come from files (<NAME>_FILE): a real program starts with them and stops,
    exit 2 naming the variable, on a file it cannot use, never printing the secret."""

    def check(self, env):
        sandbox = Sandbox()
        try:
            base = {k: v for k, v in os.environ.items()
                    if not k.startswith(("VIGIL_INTERNAL_SECRET", "DATABASE_URL"))}
            base["VIGIL_DATA_DIR"] = str(sandbox.dir)
            return subprocess.run([binary(SERVICE_BINARIES["catalog"]), "--check"],
                                  capture_output=True, text=True, timeout=30, cwd=sandbox.dir,
                                  env=dict(base, **env(sandbox.dir)))
        finally:
            sandbox.close()

    def test_secret_files_are_read_and_bad_ones_stop_start_up(self):
        secret = "file-secret-" + "x" * 32

        def with_file(directory):
            path = directory / "internal-secret"
            path.write_text(secret + "\n")
            return {"VIGIL_INTERNAL_SECRET_FILE": str(path)}
        good = self.check(with_file)
        self.assertEqual(good.returncode, 0, good.stderr)
        self.assertNotIn("development secret", good.stdout + good.stderr)

        cases = {
            "missing": lambda d: {"VIGIL_INTERNAL_SECRET_FILE": str(d / "absent")},
            "both": lambda d: dict(with_file(d), VIGIL_INTERNAL_SECRET=secret),
            "database": lambda d: {"DATABASE_URL_FILE": str(d)},
        }
        for name, env in cases.items():
            bad = self.check(env)
            self.assertEqual(bad.returncode, 2, f"{name}: {bad.stdout}{bad.stderr}")
            self.assertIn("_FILE", bad.stderr, name)
            self.assertNotIn(secret, bad.stdout + bad.stderr, name)


class TopologyTest(unittest.TestCase):
    """The programs' compiled-in defaults are those of services/topology.json (through the
    header CMake generates from it), which ./vigil up and the harness read too."""

    def run_program(self, name, *args):
        env = {k: v for k, v in os.environ.items()
               if k not in ("VIGIL_GATEWAY_CONFIG", "VIGIL_PORT", "VIGIL_ADMIN_PORT")}
        out = subprocess.run([binary(SERVICE_BINARIES[name]), *args], capture_output=True,
                             text=True, timeout=30, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_the_gateways_embedded_routes_are_the_topologys(self):
        # --check logs one "route" line per route it would serve.
        routes = [json.loads(line) for line in self.run_program("gateway", "--check").splitlines()
                  if line.startswith("{") and json.loads(line).get("msg") == "route"]
        served = [(r["http.route"], r["server.address"], r["strip_prefix"]) for r in routes]
        expected = [(r["prefix"] + "/*", default_url(r["service"]).removeprefix("http://"),
                     r["strip_prefix"]) for r in ROUTES]
        self.assertEqual(served, expected)

    def test_every_service_listens_by_default_on_its_topology_ports(self):
        for name, service in SERVICES.items():
            text = self.run_program(name, "--help")
            ports = {variable: int(port) for variable, port in
                     re.findall(r"(VIGIL_(?:ADMIN_)?PORT)\s+\((?:default )?(\d+)\)", text)}
            self.assertEqual(ports, {"VIGIL_PORT": service["port"],
                                     "VIGIL_ADMIN_PORT": service["admin_port"]}, name)

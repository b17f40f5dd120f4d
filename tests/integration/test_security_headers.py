"""The security-header contract (docs/conventions.md) on real processes: every route of
every service, directly and through the gateway, the runtime's own refusals (400, 404,
405, 408, 413, 414, 431), rate-limit refusals (429), the gateway's 502 and 504 and an
upstream's 500 and 503 relayed, and the admin listeners: each answer carries the set
once, with the platform's values, and no Server or X-Powered-By. These programs speak plain
HTTP, so no answer carries Strict-Transport-Security (RFC 6797 section 7.2; test_tls.py
sees it over HTTPS)."""

import re
import subprocess
import unittest

from harness import Platform, RawConnection, Sandbox, binary, start_echo, start_gateway
from harness.platform import SERVICE_BINARIES
from harness.topology import ROUTES

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
EXPECTED = {
    "Content-Security-Policy": API_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Answers that keep a Cache-Control of their own (public reads), by route template.
OWN_CACHE_CONTROL = {"GET /items/{id}": "no-cache", "GET /.well-known/jwks.json": "public, max-age=60"}


def routes_of(service):
    """The route templates a service's program lists with --routes ("GET /items/{id}")."""
    out = subprocess.run([str(binary(SERVICE_BINARIES[service])), "--routes"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return [line for line in out.splitlines() if line.strip()]


def gateway_path(service, path):
    """`path` of `service` as the gateway's default routes expose it."""
    for r in ROUTES:
        if r["service"] == service and path.startswith(r["path"]):
            return r["prefix"] + path[len(r["path"]):]
    raise AssertionError(f"no gateway route reaches {service} {path}")


class ContractMixin:
    def assert_contract(self, res, where, cache_control="no-store"):
        for name, value in EXPECTED.items():
            self.assertEqual(res.header_all(name), [value], f"{name} on {where}: {res!r}")
        self.assertIn("camera=()", res.header("Permissions-Policy") or "", where)
        self.assertEqual(res.header_all("Cache-Control"), [cache_control], where)
        self.assertEqual(res.header_all("Server"), [], where)
        self.assertEqual(res.header_all("X-Powered-By"), [], where)
        self.assertEqual(res.header_all("Strict-Transport-Security"), [], where)

    def call(self, port, method, target, headers=None, body=None):
        with RawConnection(port) as c:
            return c.exchange(method, target, headers, body)


class PlatformContractTest(ContractMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        tiny = {"policies": [{"name": "tiny", "key": ["client_address"], "quota": 1,
                              "window_s": 60, "match": [{"prefix": "/api/limited"}]}]}
        try:
            cls.platform = Platform(cls.sandbox, env={"VIGIL_HTTP_HEADER_TIMEOUT": "1000"},
                                    gateway_limits=tiny)
        except BaseException:
            cls.sandbox.close()
            raise
        cls.token = cls.platform.login("headers@example.com")["access_token"]

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    def servers(self):
        """(name, port) of every program's public listener, the gateway's included."""
        return [(name, s.port) for name, s in self.platform.services.items()]

    def test_every_route_of_every_service_directly_and_through_the_gateway(self):
        auth = {"Authorization": f"Bearer {self.token}"}
        checked = 0
        for service in ("auth", "catalog", "orders"):
            port = self.platform.services[service].port
            for route in routes_of(service):
                method, template = route.split(" ", 1)
                path = re.sub(r"\{[^}]+\}", "1", template)
                body = b"{}" if method in ("POST", "PUT", "PATCH") else None
                headers = {"Content-Type": "application/json"} if body is not None else None
                direct = self.call(port, method, path, headers, body)
                expected_cc = OWN_CACHE_CONTROL.get(route, "no-store")
                if direct.status >= 400:
                    expected_cc = "no-store"
                self.assert_contract(direct, f"{service} {route} -> {direct.status}", expected_cc)
                via = self.call(self.platform.gateway.port, method, gateway_path(service, path),
                                dict(headers or {}, **auth), body)
                expected_cc = OWN_CACHE_CONTROL.get(route, "no-store")
                if via.status >= 400:
                    expected_cc = "no-store"
                self.assert_contract(via, f"gateway {route} -> {via.status}", expected_cc)
                checked += 1
        self.assertGreaterEqual(checked, 16)

    def test_the_runtimes_own_refusals(self):
        long_field = {"X-Long": "a" * 20000}
        # A POST route of each program, and a path it serves under other methods only.
        post = {"auth": "/login", "catalog": "/items", "orders": "/orders",
                "gateway": "/api/auth/login"}
        for name, port in self.servers():
            with self.subTest(server=name):
                cases = [
                    (404, "GET", "/nowhere", None, None),
                    (413, "POST", post[name], {"Content-Length": str(1 << 30)}, None),
                    (431, "GET", "/x", long_field, None),
                    (414, "GET", "/" + "a" * 20000, None, None),
                ]
                if name != "gateway":  # the gateway's routes take every method
                    cases.append((405, "PATCH", post[name], None, None))
                for status, method, target, headers, body in cases:
                    res = self.call(port, method, target, headers, body)
                    self.assertEqual(res.status, status, f"{name} {method} {target[:30]}")
                    self.assert_contract(res, f"{name} {status}")
                with RawConnection(port) as c:  # no Host: 400
                    c.send(b"GET / HTTP/1.1\r\n\r\n")
                    res = c.read_response()
                    self.assertEqual(res.status, 400, name)
                    self.assert_contract(res, f"{name} 400")
                with RawConnection(port) as c:  # a head never finished: 408
                    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                    res = c.read_response()
                    self.assertEqual(res.status, 408, name)
                    self.assert_contract(res, f"{name} 408")

    def test_rate_limit_refusals_at_the_gateway_and_at_a_service(self):
        gw = self.platform.gateway.port
        first = self.call(gw, "GET", "/api/limited")
        self.assert_contract(first, f"gateway {first.status}")
        refused = self.call(gw, "GET", "/api/limited")
        self.assertEqual(refused.status, 429)
        self.assert_contract(refused, "gateway 429")
        # auth's per-account limit on logins, straight to the service.
        auth = self.platform.services["auth"].port
        body = b'{"email": "limited@example.com", "password": "wrong wrong wrong"}'
        statuses = []
        for _ in range(12):
            res = self.call(auth, "POST", "/login", {"Content-Type": "application/json"}, body)
            statuses.append(res.status)
            self.assert_contract(res, f"auth login {res.status}")
        self.assertIn(429, statuses)

    def test_admin_listeners(self):
        for name, s in self.platform.services.items():
            for target in ("/healthz", "/readyz", "/metrics"):
                res = self.call(s.admin_port, "GET", target)
                self.assertEqual(res.status, 200, f"{name} {target}")
                self.assert_contract(res, f"{name} admin {target}")


class GatewayErrorsContractTest(ContractMixin, unittest.TestCase):
    """The gateway's own 502 and 504, and an upstream's 500 and 503 relayed with the
    gateway's fields in place of whatever the upstream sent."""

    def test_gateway_failures_and_relayed_upstream_errors(self):
        sandbox = Sandbox()
        self.addCleanup(sandbox.close)
        if True:
            echo = start_echo(sandbox)
            routes = [{"prefix": "/up", "upstream": echo.url, "strip_prefix": True},
                      {"prefix": "/quick", "upstream": echo.url, "strip_prefix": True,
                       "timeout_ms": 50},
                      {"prefix": "/down", "upstream": "http://127.0.0.1:1"}]
            gw = start_gateway(sandbox, routes)
            cases = [(502, "/down/x"), (504, "/quick/slow?ms=2000"), (500, "/up/status/500"),
                     (503, "/up/status/503"), (200, "/up/status/200")]
            for status, target in cases:
                res = self.call(gw.port, "GET", target)
                self.assertEqual(res.status, status, target)
                self.assert_contract(res, f"gateway {target}")


if __name__ == "__main__":
    unittest.main()

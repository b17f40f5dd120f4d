"""Malformed input on every route of every program: auth, catalog, orders and the
gateway's own routes. A table names each route's cases (wrong Content-Type, nesting past
the stated depth, bodies over the route's limit, unknown fields, overlong strings, text
that is not UTF-8 or holds U+0000, malformed ids in paths, numbers that are negative,
zero, fractional or too large, repeated or absurd query parameters) with the 4xx each
must get: application/problem+json whose detail names the field. Each case is sent
straight to its service (with a signed identity, so that validation, not 401, is what
answers) and, for the public routes, through the gateway with a bearer token. No case may
get a 5xx, and no program may log a line at error.

The table must name every route the programs print with --routes: a route added without
rows here fails test_the_table_names_every_route."""
import hashlib
import hmac
import json
import subprocess
import time
import unittest
import uuid

from harness import (INTERNAL_SECRET, SERVICE_BINARIES, Platform, RawConnection, Sandbox,
                     assert_problem, binary, build_request, log_records, start_postgres)
from harness.topology import ROUTES

# docs/conventions.md: arrays and objects nest at most this deep in a body.
MAX_DEPTH = 16
# Body limits of the routes that read one (docs/conventions.md).
AUTH_BODY_LIMIT = 16 * 1024
CATALOG_BODY_LIMIT = 64 * 1024
ORDERS_BODY_LIMIT = 64 * 1024
# The gateway's own limit on a route without max_body_bytes (VIGIL_HTTP_MAX_BODY_BYTES).
GATEWAY_BODY_LIMIT = 1024 * 1024
# Order creation is limited to a burst of 20 per user: a gateway token serves fewer.
ORDERS_PER_TOKEN = 15


def new_id():
    """An id as the services make them: 28 lowercase hex digits."""
    return uuid.uuid4().hex[:28]


def sign(subject, secret=INTERNAL_SECRET):
    """An X-Vigil-Identity value for `subject`, as the gateway signs it (docs/services.md)."""
    signed = f"v1.{subject}.{int(time.time()) + 60}"
    mac = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
    return f"{signed}.{mac}"


class Case:
    """One request and the answer it must get: `status`, and for a 4xx a detail holding
    `names` (the field, parameter or header at fault)."""

    def __init__(self, name, method, target, status, names=None, body=None, headers=None,
                 chunked=False, public=True, identity=None):
        self.name = name
        self.method = method
        self.target = target if isinstance(target, bytes) else target.encode()
        self.status = status
        self.names = names
        self.body = body
        self.headers = pairs(headers or [])
        self.chunked = chunked
        self.public = public  # also sent through the gateway
        # Straight to a service: who the signed X-Vigil-Identity names, signed when sent
        # ("user": the test's user; "anyone": a new user each time; or a subject).
        self.identity = identity


def encode(value):
    return json.dumps(value, ensure_ascii=False).encode()


REMOVE = object()


def with_value(body, path, value):
    """A deep copy of `body` with the field at `path` (keys and indexes) set to `value`,
    or removed when `value` is REMOVE."""
    copy = json.loads(json.dumps(body))
    node = copy
    for key in path[:-1]:
        node = node[key]
    if value is REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return copy


def field_name(path):
    """"lines[0].quantity" for ("lines", 0, "quantity")."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (("." if text else "") + key)
    return text


def raw_with(body, path, raw_value):
    """The bytes of `body` with the field at `path` holding `raw_value`, JSON text written
    by hand (bytes that json.dumps cannot write: not UTF-8, lone surrogates)."""
    marker = "\u2063marker\u2063"
    return encode(with_value(body, path, marker)).replace(encode(marker), raw_value)


def body_cases(method, target, valid, limit, strings=(), integers=(), arrays=()):
    """The cases of a route that reads the JSON object `valid` (any one change of which is
    refused) with a body limit of `limit` bytes. strings: [(path, min, max)]; integers:
    [(path, min, max)]; arrays: [(path, min items, max items, one item)]."""
    h = {"Content-Type": "application/json"}
    good = encode(valid)
    first = (strings or integers or arrays)[0][0]
    nested = lambda depth: "[" * depth + "]" * depth  # noqa: E731
    cases = [
        Case("Content-Type text/plain", method, target, 415, "Content-Type", good,
             {**h, "Content-Type": "text/plain"}),
        Case("Content-Type form", method, target, 415, "Content-Type", good,
             {**h, "Content-Type": "application/x-www-form-urlencoded"}),
        Case("empty body", method, target, 400, "body", b"", h),
        Case("not JSON", method, target, 400, "at byte", good[:-1], h),
        Case("trailing bytes", method, target, 400, "at byte", good + b"]", h),
        Case("an array", method, target, 400, "object", b"[" + good + b"]", h),
        # The body's object is level 1 and the field sits len(first) levels deep: arrays
        # nested in it up to level 16 are read (and refused as the wrong type), one more
        # level is refused as such.
        Case(f"nested {MAX_DEPTH} levels", method, target, 422, field_name(first),
             raw_with(valid, first, nested(MAX_DEPTH - len(first)).encode()), h),
        Case(f"nested {MAX_DEPTH + 1} levels", method, target, 400, f"{MAX_DEPTH} levels",
             raw_with(valid, first, nested(MAX_DEPTH + 1 - len(first)).encode()), h),
        Case("nested 5000 levels", method, target, 400, f"{MAX_DEPTH} levels",
             raw_with(valid, first, nested(5000).encode()), h),
        Case("over the body limit", method, target, 413, "body",
             good[:-1] + b" " * (limit + 1 - len(good)) + b"}", h),
        Case("over the body limit, chunked", method, target, 413, "body",
             [good[:-1], b" " * limit, b"}"], h, chunked=True),
        Case("an unknown field", method, target, 422, "unexpected",
             encode(dict(valid, unexpected=1)), h),
        Case("a field name that is not UTF-8", method, target, 400, "field name",
             good[:-1] + b',"\xff\xfe":1}', h),
    ]
    for path, low, high in strings:
        name = field_name(path)
        cases += [
            Case(f"{name} missing", method, target, 422, name, encode(with_value(valid, path, REMOVE)), h),
            Case(f"{name} a number", method, target, 422, name, encode(with_value(valid, path, 5)), h),
            Case(f"{name} null", method, target, 422, name, encode(with_value(valid, path, None)), h),
            Case(f"{name} over {high} characters", method, target, 422, name,
                 encode(with_value(valid, path, "é" * (high + 1))), h),
            Case(f"{name} not UTF-8", method, target, 400, name,
                 raw_with(valid, path, b'"a\xff"'), h),
            Case(f"{name} overlong UTF-8", method, target, 400, name,
                 raw_with(valid, path, b'"\xc0\xaf"'), h),
            Case(f"{name} a UTF-8 surrogate", method, target, 400, name,
                 raw_with(valid, path, b'"\xed\xa0\x80"'), h),
            Case(f"{name} a lone surrogate escape", method, target, 400, "at byte",
                 raw_with(valid, path, b'"\\ud800"'), h),
            Case(f"{name} holds U+0000", method, target, 422, name,
                 raw_with(valid, path, b'"a\\u0000bcdefgh"'), h),
        ]
        if low > 0:
            cases.append(Case(f"{name} under {low} characters", method, target, 422, name,
                              encode(with_value(valid, path, "x" * (low - 1))), h))
    for path, low, high in integers:
        name = field_name(path)
        for label, raw_value in [("negative", b"-1"), ("fractional", b"1.5"),
                                 ("over its maximum", str(high + 1).encode()),
                                 ("past 2^63", b"9223372036854775808"),
                                 ("past 2^64", b"18446744073709551616"),
                                 ("below -2^63", b"-9223372036854775809"),
                                 ("1e400", b"1e400"), ("-1e400", b"-1e400"),
                                 ("a string", b'"1"'), ("true", b"true"), ("null", b"null")]:
            cases.append(Case(f"{name} {label}", method, target, 422, name,
                              raw_with(valid, path, raw_value), h))
        if low > 0:
            cases.append(Case(f"{name} zero", method, target, 422, name,
                              encode(with_value(valid, path, 0)), h))
        cases.append(Case(f"{name} missing", method, target, 422, name,
                          encode(with_value(valid, path, REMOVE)), h))
    for path, low, high, item in arrays:
        name = field_name(path)
        cases += [
            Case(f"{name} empty", method, target, 422, name, encode(with_value(valid, path, [])), h),
            Case(f"{name} over {high} items", method, target, 422, name,
                 encode(with_value(valid, path, [item] * (high + 1))), h),
            Case(f"{name} an object", method, target, 422, name,
                 encode(with_value(valid, path, item)), h),
            Case(f"{name} of numbers", method, target, 422, f"{name}[0]",
                 encode(with_value(valid, path, [1])), h),
        ]
    return cases


def id_cases(method, target_of, noun, body=None):
    """Paths whose {id} cannot name anything: 404 "no such <noun>", like an unknown id."""
    ids = [b"not-an-id", b"0" * 27, b"0" * 29, b"0" * 27 + b"A", b"%30" * 28, b"%ff", b"\xff\xfe",
           b"%00", b"0" * 27 + b"%00", b"-1", b"1.5", b"9" * 40, b"x" * 2000]
    h = {"Content-Type": "application/json"} if body is not None else {}
    return [Case(f"id {i[:12]!r}", method, target_of(i), 404, f"no such {noun}", body, h)
            for i in ids]


def limit_cases(target):
    """`limit`: 1 to 100, once."""
    values = [b"0", b"-1", b"1.5", b"101", b"1e2", b"abc", b"", b"99999999999999999999999999",
              b"9223372036854775808", b"%ff", b"%00", b"0x10", b"+5", b"%201"]
    cases = [Case(f"limit={v.decode()!r}", "GET", target + b"?limit=" + v, 422, "limit")
             for v in values]
    cases += [Case("limit twice", "GET", target + b"?limit=1&limit=2", 400, "limit: must be given once"),
              Case("limit twice, encoded", "GET", target + b"?limit=1&l%69mit=1", 400, "limit"),
              Case("limit malformed encoding", "GET", target + b"?limit=%zz", 400, "limit")]
    return cases


def ignored_query_cases(method, target):
    """A route that reads no query: whatever the query holds is ignored (200)."""
    return [Case("junk query ignored", method, target + b"?limit=1&limit=-5&\xff=%ff&q=%00", 200)]


class InputTest(unittest.TestCase):

    @classmethod
    def platform_env(cls, sandbox):
        return {}

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        try:
            cls.p = Platform(cls.sandbox, cls.platform_env(cls.sandbox))
            cls.setUpData()
        except Exception:
            cls.sandbox.close()
            raise
        cls.table = cls.build_table()

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    @classmethod
    def setUpData(cls):
        tokens = cls.p.login(f"{uuid.uuid4().hex[:12]}@example.com")
        cls.token = tokens["access_token"]
        cls.refresh_token = tokens["refresh_token"]
        status, _, me = cls.p.call("GET", "/auth/me", token=cls.token)
        assert status == 200, me
        cls.user_id = me["id"]
        status, _, item = cls.p.call("POST", "/catalog/items", {
            "name": "Lamp", "category": "home", "price_cents": 100, "stock": 1000}, cls.token)
        assert status == 201, item
        cls.item_id = item["id"]
        # POST /orders through the gateway counts against a per-user limit: a few users.
        cls.order_tokens = [cls.token]

    def orders_token(self, n):
        """A bearer token for the n-th POST /orders through the gateway."""
        while len(self.order_tokens) <= n // ORDERS_PER_TOKEN:
            email = f"{uuid.uuid4().hex[:12]}@example.com"
            self.order_tokens.append(self.p.login(email)["access_token"])
        return self.order_tokens[n // ORDERS_PER_TOKEN]

    @classmethod
    def build_table(cls):
        """{program: {"METHOD /route": [Case]}}, the routes as --routes prints them."""
        item = cls.item_id.encode()
        credentials = {"email": "someone@example.com", "password": "correct horse"}
        refresh = {"refresh_token": "x" * 43}
        item_body = {"name": "Lamp", "category": "home", "price_cents": 100, "stock": 1}
        item_fields = dict(strings=[(("name",), 1, 200), (("category",), 1, 64)],
                           integers=[(("price_cents",), 0, 10**9), (("stock",), 0, 10**9)])
        line = {"item_id": cls.item_id, "quantity": 1}
        order = {"lines": [line]}
        json_type = {"Content-Type": "application/json"}

        def credential_cases(target, min_password):
            return body_cases("POST", target, credentials, AUTH_BODY_LIMIT,
                              strings=[(("email",), 1, 254), (("password",), min_password, 1024)])

        def refresh_cases(target):
            return body_cases("POST", target, refresh, AUTH_BODY_LIMIT,
                              strings=[(("refresh_token",), 1, 512)])

        def item_id_cases(method, body=None):
            return id_cases(method, lambda i: b"/items/" + i, "item", body)

        def catalog_list_cases():
            cases = limit_cases(b"/items")
            for name, value, status in [
                    (b"q", b"a&q=b", 400), (b"q", b"a" * 201, 422), (b"q", b"%ff", 422),
                    (b"q", b"\xff\xfe", 422), (b"q", b"a%00", 422), (b"q", b"%zz", 400),
                    (b"category", b"a&category=b", 400), (b"category", b"Home", 422),
                    (b"category", b"%ff", 422), (b"category", b"a" * 65, 422),
                    (b"cursor", b"a&cursor=b", 400), (b"cursor", b"!!!", 422),
                    (b"cursor", b"%ff", 422), (b"cursor", b"-1", 422),
                    (b"cursor", b"9" * 5000, 422)]:
                cases.append(Case(f"{name.decode()}={value[:20]!r}", "GET",
                                  b"/items?" + name + b"=" + value, status, name.decode()))
            return cases

        def orders_list_cases():
            cases = limit_cases(b"/orders")
            for value, status in [(b"a&cursor=b", 400), (b"!!!", 422), (b"", 422),
                                  (b"%ff", 422), (b"-1", 422), (b"%z", 400),
                                  (b"0" * 27 + b"%00", 422)]:
                cases.append(Case(f"cursor={value[:20]!r}", "GET", b"/orders?cursor=" + value,
                                  status, "cursor"))
            return cases

        def order_cases():
            cases = body_cases("POST", b"/orders", order, ORDERS_BODY_LIMIT,
                               strings=[(("lines", 0, "item_id"), 1, 1024)],
                               integers=[(("lines", 0, "quantity"), 1, 1000)],
                               arrays=[(("lines",), 1, 50, line)])
            cases += [
                Case("lines[0].item_id not an id", "POST", b"/orders", 422, "lines[0].item_id",
                     encode(with_value(order, ("lines", 0, "item_id"), "X" * 28)), json_type),
                Case("lines[1].item_id repeated", "POST", b"/orders", 422, "lines[1].item_id",
                     encode({"lines": [line, line]}), json_type),
            ]
            for label, keys in [("of 256 characters", ["k" * 256]), ("empty", [""]),
                                ("with a space", ["a b"]), ("not ASCII", ["cl\xe9"]),
                                ("twice", ["one", "two"])]:
                cases.append(Case(f"Idempotency-Key {label}", "POST", b"/orders", 400,
                                  "Idempotency-Key", encode(order),
                                  list(json_type.items()) + [("Idempotency-Key", k) for k in keys]))
            return cases

        table = {
            "auth": {
                "POST /register": credential_cases(b"/register", 8),
                "POST /login": credential_cases(b"/login", 1),
                "POST /refresh": refresh_cases(b"/refresh"),
                "POST /logout": refresh_cases(b"/logout"),
                "GET /me": identified(ignored_query_cases("GET", b"/me"), "user"),
                "GET /.well-known/jwks.json": ignored_query_cases("GET", b"/.well-known/jwks.json"),
            },
            "catalog": identified({
                "POST /items": body_cases("POST", b"/items", item_body, CATALOG_BODY_LIMIT,
                                          **item_fields) + [
                    Case("category not of a-z0-9-", "POST", b"/items", 422, "category",
                         encode(dict(item_body, category="Home")), json_type)],
                "GET /items": catalog_list_cases(),
                "GET /items/{id}": item_id_cases("GET"),
                "PUT /items/{id}": item_id_cases("PUT", encode(item_body))
                + body_cases("PUT", b"/items/" + item, item_body, CATALOG_BODY_LIMIT,
                             **item_fields),
                "DELETE /items/{id}": item_id_cases("DELETE"),
            }, "user"),
            "orders": {
                # A new user for each: order creation is limited per user.
                "POST /orders": identified(order_cases(), "anyone"),
                "GET /orders": identified(orders_list_cases(), "user"),
                "GET /orders/{id}": identified(
                    id_cases("GET", lambda i: b"/orders/" + i, "order"), "user"),
            },
        }
        # Service to service only: through the gateway a user gets 403 (test_platform).
        table["catalog"].update(internal(identified({
            "POST /reservations": body_cases(
                "POST", b"/reservations", {"id": new_id(), "lines": [line]}, CATALOG_BODY_LIMIT,
                strings=[(("id",), 1, 64), (("lines", 0, "item_id"), 1, 64)],
                integers=[(("lines", 0, "quantity"), 1, 10**9)],
                arrays=[(("lines",), 1, 100, line)]),
            "DELETE /reservations/{id}": id_cases(
                "DELETE", lambda i: b"/reservations/" + i, "reservation"),
        }, "service:orders")))
        table["gateway"] = {f"* {route['prefix']}/*": gateway_cases(route["prefix"].encode())
                            for route in ROUTES}
        return table

    # ------------------------------------------------------------------ the table

    def test_the_table_names_every_route(self):
        env = {"PATH": "/usr/bin:/bin", "VIGIL_DATA_DIR": str(self.sandbox.dir / "routes")}
        for program, path in SERVICE_BINARIES.items():
            out = subprocess.run([binary(path), "--routes"], capture_output=True, text=True,
                                 cwd=self.sandbox.dir, timeout=30, env=env)
            self.assertEqual(out.returncode, 0, out.stderr)
            served = set(out.stdout.splitlines()) - {""}
            self.assertEqual(served, set(self.table[program]), f"{program}: routes and table rows")
            for route, cases in self.table[program].items():
                self.assertTrue(cases, f"{program} {route} has no case")

    # ------------------------------------------------------------------ sending

    def send(self, port, case, headers):
        """The response to `case` with `headers` (a list of pairs, the case's own after)."""
        with RawConnection(port) as conn:
            conn.send(build_request(case.method, "TARGET", headers + pairs(case.headers),
                                    case.body, case.chunked).replace(b"TARGET", case.target, 1))
            return conn.read_response(case.method)

    def check(self, where, route, case, response):
        label = f"{where} {route}: {case.name}"
        with self.subTest(label):
            self.assertLess(response.status, 500, response)
            if case.status < 400:
                self.assertEqual(response.status, case.status, response)
                return
            problem = assert_problem(self, response, case.status)
            if case.names:
                self.assertIn(case.names, problem["detail"])

    def assert_nothing_logged_at_error(self):
        for name, server in self.p.services.items():
            errors = [r for r in log_records(server.proc) if r.get("level") in ("error", "fatal")]
            self.assertEqual(errors, [], name)
            self.assertNotIn('"level":"error"', server.proc.output().replace(" ", ""), name)

    def test_each_service_refuses_malformed_input_naming_the_field(self):
        for program in ("auth", "catalog", "orders"):
            port = self.p.services[program].port
            for route, cases in self.table[program].items():
                for case in cases:
                    headers = []
                    if case.identity:
                        subject = {"user": f"user:{self.user_id}",
                                   "anyone": f"user:{new_id()}"}.get(case.identity, case.identity)
                        headers.append(("X-Vigil-Identity", sign(subject)))
                    self.check(program, route, case, self.send(port, case, headers))
        self.assert_nothing_logged_at_error()

    def test_through_the_gateway_the_answers_are_the_same(self):
        port = self.p.gateway.port
        # A service's target as a client writes it to the gateway (the route's prefix in
        # place of its upstream path).
        routes = {r["service"]: (r["prefix"].encode(), r["path"].encode()) for r in ROUTES}
        orders_posts = 0
        for program in ("auth", "catalog", "orders"):
            for route, cases in self.table[program].items():
                for case in cases:
                    if not case.public:
                        continue
                    token = self.token
                    if case.identity == "anyone":
                        token = self.orders_token(orders_posts)
                        orders_posts += 1
                    prefix, path = routes[program]
                    self.assertTrue(case.target.startswith(path), case.target)
                    through = Case(case.name, case.method, prefix + case.target[len(path):],
                                   case.status, case.names, case.body, case.headers, case.chunked)
                    self.check("gateway", route, through,
                               self.send(port, through, [("Authorization", "Bearer " + token)]))
        self.assert_nothing_logged_at_error()

    def test_the_gateways_own_routes_refuse_what_no_service_should_see(self):
        port = self.p.gateway.port
        for route, cases in self.table["gateway"].items():
            for case in cases:
                self.check("gateway", route, case,
                           self.send(port, case, [("Authorization", "Bearer " + self.token)]))
        self.assert_nothing_logged_at_error()


class PostgresInputTest(InputTest):
    """The same on PostgreSQL, whose text refuses what SQLite would store (U+0000)."""

    @classmethod
    def platform_env(cls, sandbox):
        return {"DATABASE_URL": start_postgres(sandbox)}


def pairs(headers):
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def identified(cases, identity):
    """`cases` (a list, or a {route: list}) sent straight to the service as `identity`."""
    for group in cases.values() if isinstance(cases, dict) else [cases]:
        for case in group:
            case.identity = identity
    return cases


def internal(routes):
    """Routes between services: their cases are not sent through the gateway."""
    for cases in routes.values():
        for case in cases:
            case.public = False
    return routes


def gateway_cases(prefix):
    """What the gateway refuses itself on each of its routes, before any service."""
    json_type = {"Content-Type": "application/json"}
    return [
        Case("a dot-dot segment", "GET", prefix + b"/../auth/me", 400, '".."'),
        Case("an encoded dot-dot segment", "GET", prefix + b"/%2e%2e/auth/me", 400, '".."'),
        Case("a dot segment", "GET", prefix + b"/./me", 400, '"."'),
        Case("a request line over 16 KiB", "GET", prefix + b"/items?q=" + b"a" * 17000, 414,
             "16384 bytes"),
        Case("a body over the gateway's limit", "POST", prefix + b"/x", 413, "body",
             b" " * (GATEWAY_BODY_LIMIT + 1), json_type),
        Case("an absolute target elsewhere", "GET", b"http://elsewhere.example" + prefix + b"/x",
             404),
        Case("a target that is no path", "GET", b"*", 400, "target"),
        Case("raw bytes that are not UTF-8", "GET", prefix + b"/\xff\xfe", 404),
        Case("an encoded U+0000", "GET", prefix + b"/%00", 404),
    ]


if __name__ == "__main__":
    unittest.main()

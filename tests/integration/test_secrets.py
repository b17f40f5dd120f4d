"""Secrets never leave the platform through what operators collect. A whole journey runs
through the gateway (register, login, refresh, an order, logout, wrong passwords, bad and
forged tokens, a refresh token replayed after logout) and asks every service for a test
error report with credentials in its request; then every log line, every span (the
OTLP/JSON trace files, and what an OTLP/HTTP receiver got, raw and decoded by
OpenTelemetry's decoder), every /metrics page and every Sentry envelope is searched for
each password, token and the internal secret, written plainly and in the encodings a
program might use on the way out. Secrets read from files (<NAME>_FILE) work for the whole platform."""

import base64
import json
import re
import unittest
import urllib.parse
import uuid

from harness import (INTERNAL_SECRET, Platform, Receiver, Sandbox, SentryReceiver, call_json,
                     http_get, metric_samples, node_decode_all, start_postgres)
from harness.tokens import (expired_token, forged_token, identity_header, token_claims,
                            unsigned_token)

# ---------------------------------------------------------------------------- encodings

# Shorter needles could turn up by chance in a large payload.
MIN_NEEDLE = 16


def _json_escaped(text):
    """The ways a JSON writer may escape `text` inside a string."""
    ascii_only = json.dumps(text)[1:-1]
    return [json.dumps(text, ensure_ascii=False)[1:-1], ascii_only,
            re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), ascii_only),
            ascii_only.replace("/", "\\/")]


def _inside_base64(data, encode):
    """The parts of `data`'s base64 that are the same wherever `data` sits in a longer
    encoded blob: one per alignment (its offset modulo 3), without the characters shared
    with the bytes around it."""
    parts = []
    for offset in range(3):
        text = encode(b"\0" * offset + data).decode()
        first = -(-8 * offset // 6)  # the first character made of `data` alone
        last = (8 * (offset + len(data))) // 6
        parts.append(text[first:last])
    return parts


def encodings(secret):
    """[(encoding, needle)] of `secret`: most specific first, each needle once."""
    raw = secret.encode()
    std, url = base64.b64encode, base64.urlsafe_b64encode
    found = [("plain", secret)]
    found += [("JSON-escaped", e) for e in _json_escaped(secret)]
    found += [("percent-encoded", urllib.parse.quote(secret, safe=""))]
    found += [("base64url", url(raw).decode().rstrip("=")),
              ("base64url with padding", url(raw).decode()),
              ("base64", std(raw).decode())]
    found += [("inside base64url data", e) for e in _inside_base64(raw, url)]
    found += [("inside base64 data", e) for e in _inside_base64(raw, std)]
    unique, seen = [], set()
    for name, needle in found:
        if needle not in seen:
            seen.add(needle)
            unique.append((name, needle))
    return unique


class Secret:
    def __init__(self, name, value):
        if len(value) < MIN_NEEDLE:
            raise ValueError(f"{name} is too short to search for")
        self.name = name
        self.value = value
        self.needles = [(enc, needle.encode()) for enc, needle in encodings(value)
                        if len(needle) >= MIN_NEEDLE]


def find_secrets(secrets, payloads):
    """Every place a secret appears: ["<secret> (<encoding>) in <where>, line N: ...excerpt"].
    `payloads` is [(where, bytes)]."""
    hits = []
    for where, data in payloads:
        for secret in secrets:
            for encoding, needle in secret.needles:
                at = data.find(needle)
                if at < 0:
                    continue
                line = data.count(b"\n", 0, at) + 1
                excerpt = data[max(0, at - 60):at + len(needle) + 20].decode(errors="replace")
                hits.append(f"{secret.name} ({encoding}) in {where}, line {line}: ...{excerpt!r}")
                break  # one encoding is enough to say where it leaks
    return hits


# ---------------------------------------------------------------------------- payload sources

# Each source gives [(where, bytes)]: what an operator (or whoever reads their tools)
# collects from a running platform. A new destination of telemetry is one more function in
# PAYLOAD_SOURCES.

def process_output(run):
    """Every log line: each process' stdout and stderr, as its log file holds them."""
    return [(f"{p.name} output ({p.log_path.name})", p.log_path.read_bytes())
            for p in run.sandbox.processes]


def trace_files(run):
    """The OTLP/JSON trace files (VIGIL_TRACES_FILE) of every service."""
    return [(f"{name} traces file", path.read_bytes())
            for name, path in run.platform.traces.items() if path.exists()]


def otlp_raw(run):
    """Every OTLP/HTTP request body as it arrived (protobuf; gunzipped when compressed)."""
    return [(f"OTLP request {i} (protobuf)", body) for i, body in enumerate(run.otlp_bodies())]


def otlp_decoded(run):
    """The same bodies decoded by OpenTelemetry's decoder, as JSON."""
    return [(f"OTLP request {i} (decoded)", json.dumps(decoded, ensure_ascii=False).encode())
            for i, decoded in enumerate(run.otlp_decoded())]


def metrics_pages(run):
    """/metrics of every admin port, in Prometheus text and OpenMetrics (with exemplars)."""
    return [(f"{name} /metrics ({kind})", page)
            for name, pages in run.metrics.items() for kind, page in pages.items()]


def sentry_envelopes(run):
    """Every envelope the Sentry receiver got (ungzipped), once Sentry's own parser has
    read each of them."""
    run.sentry.envelopes()  # raises when one does not parse
    return [(f"Sentry envelope {i}", data) for i, data in enumerate(run.sentry.raw_envelopes())]


PAYLOAD_SOURCES = [process_output, trace_files, otlp_raw, otlp_decoded, metrics_pages,
                   sentry_envelopes]


# ---------------------------------------------------------------------------- the journey

class JourneyRun:
    """One platform, exporting spans to its trace files and to an OTLP/HTTP receiver, the
    secrets a journey through it used, and what it left for operators."""

    def __init__(self, sandbox, receiver, sentry, platform):
        self.sandbox = sandbox
        self.receiver = receiver
        self.sentry = sentry
        self.platform = platform
        self.secrets = [Secret("the internal secret (VIGIL_INTERNAL_SECRET)", INTERNAL_SECRET)]
        self.metrics = {}
        self._decoded = None

    def add(self, name, value):
        if all(s.value != value for s in self.secrets):
            self.secrets.append(Secret(name, value))
        return value

    def scrape(self):
        for name, server in self.platform.services.items():
            self.metrics[name] = {
                "text": http_get(server.admin + "/metrics")[2],
                "OpenMetrics": http_get(server.admin + "/metrics", headers={
                    "Accept": "application/openmetrics-text; version=1.0.0"})[2]}

    def otlp_bodies(self):
        return self.receiver.bodies()

    def otlp_decoded(self):
        if self._decoded is None:
            paths = []
            for i, body in enumerate(self.otlp_bodies()):
                paths.append(self.sandbox.dir / f"otlp-{i}.bin")
                paths[-1].write_bytes(body)
            self._decoded = [d["request"] for d in node_decode_all(paths)] if paths else []
        return self._decoded

    def payloads(self):
        return {source.__name__: source(self) for source in PAYLOAD_SOURCES}


class SecretSearchTest(unittest.TestCase):
    """The search itself finds a planted secret in every encoding, wherever it sits."""

    def test_a_planted_secret_is_found_in_every_encoding(self):
        secret = Secret("the planted password", 'pässwörd "with" \\ and / ' + uuid.uuid4().hex)
        raw = secret.value.encode()

        def search(blob):
            payload = b'first line\n{"msg":"request completed","detail":"' + blob + b'"}\n'
            hits = find_secrets([secret], [("a log", payload)])
            self.assertEqual(len(hits), 1, hits)
            self.assertIn("the planted password", hits[0])
            self.assertIn("a log, line 2", hits[0])

        for encoding, needle in secret.needles:
            with self.subTest(encoding=encoding):
                search(needle)
        # Inside a longer base64 blob, at each alignment.
        noise = uuid.uuid4().bytes
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            for prefix in (b"", b"x", b"xy", b"xyz"):
                with self.subTest(encode=encode.__name__, prefix=prefix):
                    search(encode(prefix + raw + noise))
        self.assertEqual(find_secrets([secret], [("a log", noise * 100)]), [])

    def test_every_listed_encoding_is_searched_for(self):
        value = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl/ä"
        raw = value.encode()
        self.assertNotEqual(len(raw) % 3, 0, "so that padding differs")
        padded = base64.urlsafe_b64encode(raw).decode()
        expected = {value, json.dumps(value)[1:-1], padded, padded.rstrip("="),
                    base64.b64encode(raw).decode()}
        self.assertEqual(len(expected), 5)
        needles = {needle.decode() for _, needle in Secret("a token", value).needles}
        self.assertLessEqual(expected, needles)


class SecretsJourneyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        cls.receiver = Receiver()
        cls.sentry = SentryReceiver()
        try:
            # Every log line the programs can write (trace is the lowest level), and every
            # span to both destinations.
            platform = Platform(cls.sandbox, {"VIGIL_LOG_LEVEL": "trace",
                                              "OTEL_EXPORTER_OTLP_ENDPOINT": cls.receiver.url,
                                              "SENTRY_DSN": cls.sentry.dsn})
            cls.run_ = JourneyRun(cls.sandbox, cls.receiver, cls.sentry, platform)
            cls.journey(cls.run_)
            cls.run_.scrape()
            # A graceful stop flushes every span and log line: nothing is still on its way.
            for server in platform.services.values():
                server.proc.stop()
        except BaseException:
            cls.receiver.close()
            cls.sentry.close()
            cls.sandbox.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.receiver.close()
        cls.sentry.close()
        cls.sandbox.close()

    # A User-Agent and request ids of our own: markers that show each source was read.
    MARKER = "secrets-journey-" + uuid.uuid4().hex

    @classmethod
    def journey(cls, run):
        p = run.platform
        checks = []

        def call(what, expected, method, path, body=None, token=None, headers=None, raw=None):
            all_headers = {"User-Agent": cls.MARKER, "X-Request-Id": f"{cls.MARKER}-{len(checks)}"}
            all_headers.update(headers or {})
            status, _, answer = p.call(method, path, body, token, all_headers, raw)
            checks.append((what, status, expected, answer))
            return answer

        suffix = uuid.uuid4().hex
        email = f"alice-{suffix[:8]}@example.com"
        password = run.add("alice's password", f'pässwörd "quoted" \\back/slash {suffix}')
        wrong = run.add("a wrong password", f"wrong-pässwörd-{uuid.uuid4().hex}")
        unknown = run.add("an unknown user's password", f"nobody's password {uuid.uuid4().hex}")
        second = run.add("a second registration's password", f"second {uuid.uuid4().hex}")
        too_long = run.add("an over-long password", "L" * 1100 + uuid.uuid4().hex)

        call("register", 201, "POST", "/auth/register", {"email": email, "password": password})
        call("register again", 409, "POST", "/auth/register", {"email": email, "password": second})
        call("register with a password over the limit", 422, "POST", "/auth/register",
             {"email": f"long-{suffix[:8]}@example.com", "password": too_long})
        call("login with a wrong password", 401, "POST", "/auth/login",
             {"email": email, "password": wrong})
        call("login as nobody", 401, "POST", "/auth/login",
             {"email": f"nobody-{suffix[:8]}@example.com", "password": unknown})
        call("login with an unknown field", 422, "POST", "/auth/login",
             {"email": email, "password": password, "passwd": wrong})
        call("login with malformed JSON", 400, "POST", "/auth/login",
             raw=('{"email": "%s", "password": "%s"' % (email, wrong)).encode())
        call("login with the password as a number", 422, "POST", "/auth/login",
             raw=('{"email": "%s", "password": %s}' % (email, "1" * 40)).encode())

        first = call("login", 200, "POST", "/auth/login", {"email": email, "password": password})
        access = run.add("the first access token", first["access_token"])
        refresh = run.add("the first refresh token", first["refresh_token"])
        call("me", 200, "GET", "/auth/me", token=access)

        renewed = call("refresh", 200, "POST", "/auth/refresh", {"refresh_token": refresh})
        access2 = run.add("the refreshed access token", renewed["access_token"])
        refresh2 = run.add("the refreshed refresh token", renewed["refresh_token"])
        item = call("create an item", 201, "POST", "/catalog/items",
                    {"name": "Lamp", "category": "home", "price_cents": 2500, "stock": 5}, access2)
        call("order", 201, "POST", "/orders", {"lines": [{"item_id": item["id"], "quantity": 1}]},
             access2, headers={"Idempotency-Key": "k-" + uuid.uuid4().hex})
        call("list orders", 200, "GET", "/orders", token=access2)

        # Tokens a client gets wrong, forges, or replays.
        claims = token_claims(access2)
        expired = run.add("an expired access token", expired_token(p.data_dir, claims))
        basic = base64.b64encode(f"{email}:{password}".encode()).decode()
        bad_tokens = {
            "a garbage token": "not.a.token",
            "a token of invalid base64": access2.replace(".", ".%%", 1),
            "a forged token": forged_token(access2, sub="someone-else"),
            "an unsigned token": unsigned_token({"alg": "none", "typ": "JWT"}, claims),
            "an expired token": expired,
            "a truncated token": access2[:-10],
        }
        for what, token in bad_tokens.items():
            call(what, 401, "GET", "/orders", token=token)
        call("basic credentials", 401, "GET", "/orders", headers={"Authorization": "Basic " + basic})
        call("a token in the query string", 401, "GET",
             "/orders?access_token=" + urllib.parse.quote(access2))

        # An error report of every service, its request full of credentials: the headers
        # and the query must come out filtered.
        for name, server in p.services.items():
            status, _, answer = call_json(
                server.admin + "/debug/sentry-test?access_token=" + urllib.parse.quote(access2),
                "POST", raw=b"", headers={
                    "User-Agent": cls.MARKER, "X-Request-Id": f"{cls.MARKER}-sentry-{name}",
                    "Authorization": "Bearer " + access2, "Cookie": "refresh=" + refresh2,
                    "X-Password": password, "X-Vigil-Identity": "v1.user:x.1." + refresh2})
            checks.append((f"test error report of {name}", status, 202, answer))

        call("logout", 204, "POST", "/auth/logout", {"refresh_token": refresh2})
        call("refresh after logout", 401, "POST", "/auth/refresh", {"refresh_token": refresh2})
        call("replay the first refresh token", 401, "POST", "/auth/refresh",
             {"refresh_token": refresh})

        wrong_steps = [f"{what}: {status} (expected {expected}) {answer}"
                       for what, status, expected, answer in checks if status != expected]
        if wrong_steps:
            raise AssertionError("the journey went wrong:\n" + "\n".join(wrong_steps))

    def test_every_source_was_read(self):
        """Each source has payloads, and the search sees this journey's markers in them:
        a search that found no secret looked where they could have been."""
        payloads = self.run_.payloads()
        marker = Secret("the journey's marker", self.MARKER)
        expect = {"process_output": self.MARKER, "trace_files": self.MARKER,
                  "otlp_raw": self.MARKER, "otlp_decoded": self.MARKER,
                  "metrics_pages": "http_server_request_duration_seconds",
                  "sentry_envelopes": self.MARKER}
        self.assertEqual(set(expect), set(payloads), "a source without a marker to expect")
        for source, text in expect.items():
            with self.subTest(source=source):
                self.assertTrue(payloads[source], f"{source} gave nothing")
                needle = marker if text == self.MARKER else Secret(text, text)
                self.assertTrue(find_secrets([needle], payloads[source]),
                                f"{text} not found in {source}")
        services = set()
        for decoded in self.run_.otlp_decoded():
            for rs in decoded.get("resourceSpans", []):
                for a in rs["resource"]["attributes"]:
                    if a["key"] == "service.name":
                        services.add(a["value"]["stringValue"])
        self.assertEqual(services, set(self.run_.platform.services), "spans from every service")
        self.assertEqual(set(self.run_.metrics), set(self.run_.platform.services))
        requests = sum(v for _, v in metric_samples(
            self.run_.metrics["gateway"]["text"].decode(), "http_server_request_duration_seconds_count"))
        self.assertGreater(requests, 20)

    def test_no_secret_appears_anywhere(self):
        self.assertGreaterEqual(len(self.run_.secrets), 10)
        hits = []
        for source, payloads in self.run_.payloads().items():
            hits += [f"[{source}] {hit}" for hit in find_secrets(self.run_.secrets, payloads)]
        self.assertEqual(hits, [], "secrets leaked:\n" + "\n".join(hits))


# ---------------------------------------------------------------------------- from files

class SecretFilesPlatformTest(unittest.TestCase):
    """The whole platform with its secrets in files (VIGIL_INTERNAL_SECRET_FILE,
    DATABASE_URL_FILE, as Docker and Kubernetes mount them), none in the environment."""

    def test_the_platform_runs_on_secrets_from_files(self):
        sandbox = Sandbox()
        self.addCleanup(sandbox.close)
        secret = "a-secret-from-a-file-" + uuid.uuid4().hex
        secret_file = sandbox.dir / "internal-secret"
        secret_file.write_text(secret + "\n")
        # A password in the URL: PostgreSQL trusts local connections here and ignores it,
        # but it must not turn up in what the services write either.
        db_password = "db-password-" + uuid.uuid4().hex
        url = start_postgres(sandbox).replace("postgres@", f"postgres:{db_password}@", 1)
        url_file = sandbox.dir / "database-url"
        url_file.write_text(url + "\n")
        p = Platform(sandbox, {"VIGIL_INTERNAL_SECRET": None,
                               "VIGIL_INTERNAL_SECRET_FILE": str(secret_file),
                               "DATABASE_URL_FILE": str(url_file)})

        # Through the gateway: auth issues, the gateway checks and signs the identity,
        # orders and catalog verify it and call each other.
        token = p.login(f"{uuid.uuid4().hex[:12]}@example.com")["access_token"]
        status, _, item = p.call("POST", "/catalog/items", {
            "name": "Lamp", "category": "home", "price_cents": 100, "stock": 5}, token)
        self.assertEqual(status, 201, item)
        status, _, order = p.call("POST", "/orders",
                                  {"lines": [{"item_id": item["id"], "quantity": 1}]}, token,
                                  headers={"Idempotency-Key": "k-" + uuid.uuid4().hex})
        self.assertEqual(status, 201, order)

        # The secret in use is the file's: orders, called directly, takes an identity signed
        # with it and refuses one signed with any other (the development secret included).
        orders = p.services["orders"].url + "/orders"
        status, _, _ = http_get(orders, headers={
            "X-Vigil-Identity": identity_header("user:from-file", secret)})
        self.assertEqual(status, 200)
        for other in (INTERNAL_SECRET, "vigil-development-secret-do-not-use-in-production"):
            status, _, _ = http_get(orders, headers={
                "X-Vigil-Identity": identity_header("user:from-file", other)})
            self.assertEqual(status, 401, other)
        # The database is the file's PostgreSQL, not the SQLite fallback.
        for name in ("auth", "catalog", "orders"):
            _, _, page = http_get(p.services[name].admin + "/metrics")
            engines = {labels.get("db_system") for labels, _ in metric_samples(
                page.decode(), "db_client_operation_duration_seconds_count")}
            self.assertEqual(engines, {"postgresql"}, name)
        self.assertFalse((p.data_dir / "auth.db").exists())

        hits = find_secrets([Secret("the internal secret", secret),
                             Secret("the database password", db_password)],
                            [(f"{proc.name} output", proc.log_path.read_bytes())
                             for proc in sandbox.processes if proc.name != "postgres"])
        self.assertEqual(hits, [], "\n".join(hits))
        for name, server in p.services.items():
            self.assertNotIn("development secret", server.proc.output(), name)


if __name__ == "__main__":
    unittest.main()

"""Rate limits on real processes: two gateways sharing one limit through a real
redis-server, Redis killed, restarted and paused under traffic without a request waiting
on it, X-Forwarded-For believed only from trusted proxies, auth's login limits per account
and per address behind the gateway, and a SIGHUP reload on a live connection."""

import json
import signal
import time
import unittest

from harness import (INTERNAL_SECRET, Platform, RawConnection, Redis, Sandbox, access_records,
                     assert_problem, log_records, metric_sum, start_echo, start_gateway,
                     wait_for, write_gateway_config)

SECRET_ENV = {"VIGIL_INTERNAL_SECRET": INTERNAL_SECRET, "VIGIL_WORKERS": "2"}


def per_address(quota, window_s=60, name="per-address", **extra):
    return {"policies": [{"name": name, "key": ["client_address"], "quota": quota,
                          "window_s": window_s, "match": [{"prefix": "/api"}]}], **extra}


def get(port, target="/api/x", headers=None, conn=None):
    if conn is not None:
        return conn.exchange("GET", target, headers)
    with RawConnection(port) as c:
        return c.exchange("GET", target, headers)


def store_warnings(gateway):
    return [r for r in log_records(gateway.proc) if r.get("level") == "warn"
            and "redis" in json.dumps(r).lower()]


class SharedLimitsTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)
        self.redis = Redis(self.sandbox)
        self.echo = start_echo(self.sandbox)
        self.routes = [{"prefix": "/api", "upstream": self.echo.url + "/echo", "strip_prefix": True}]

    def gateway(self, limits, name="gateway", **env):
        full = dict(SECRET_ENV, VIGIL_REDIS_URL=self.redis.url, VIGIL_REDIS_TIMEOUT_MS="50",
                    **env)
        return start_gateway(self.sandbox, self.routes, full, name=name, rate_limits=limits)

    def test_two_gateways_on_one_redis_share_one_limit(self):
        a = self.gateway(per_address(6), "gateway-a")
        b = self.gateway(per_address(6), "gateway-b")
        wait_for(lambda: metric_sum(a.admin, "vigil_ratelimit_store_up", {"store": "redis"}) == 1
                 and metric_sum(b.admin, "vigil_ratelimit_store_up", {"store": "redis"}) == 1,
                 what="both gateways connected to redis")
        statuses = [get(gw.port).status for gw in (a, b) * 3]
        self.assertEqual(statuses, [200] * 6)
        for gw in (a, b):
            r = get(gw.port)
            assert_problem(self, r, 429)
            self.assertEqual(r.json()["type"], "urn:vigil:problem:quota-exceeded")
            self.assertEqual(r.header("RateLimit-Policy"), '"per-address";q=6;w=60')
            self.assertRegex(r.header("RateLimit"), r'^"per-address";r=0;t=(9|10)$')
            self.assertIn(r.header("Retry-After"), ("9", "10"))
        def limited():
            return [r for r in access_records(a.proc) if r.get("http.response.status_code") == 429]
        wait_for(lambda: limited(), what="the 429's access-log line")
        self.assertEqual(limited()[0].get("vigil.ratelimit.policy"), "per-address")
        self.assertEqual(metric_sum(a.admin, "vigil_ratelimit_decisions_total",
                                    {"store": "redis", "decision": "allowed"}), 3)
        # The limit is kept in Redis, under a hash-tagged key.
        keys = self.redis.command("KEYS", "vigil:rl:*")
        self.assertEqual(len(keys), 1, keys)
        self.assertTrue(keys[0].startswith("vigil:rl:{per-address"), keys)

    def test_redis_killed_then_restarted_never_slows_a_request(self):
        gw = self.gateway(per_address(100000))
        wait_for(lambda: metric_sum(gw.admin, "vigil_ratelimit_store_up", {"store": "redis"}) == 1,
                 what="gateway connected to redis")
        with RawConnection(gw.port) as conn:
            self.assertEqual(get(gw.port, conn=conn).status, 200)
            self.redis.kill()
            took = []
            for _ in range(200):
                started = time.monotonic()
                r = get(gw.port, conn=conn)
                took.append(time.monotonic() - started)
                self.assertEqual(r.status, 200, "fail open: limits are local while Redis is down")
                self.assertEqual(r.header("RateLimit-Policy"), '"per-address";q=100000;w=60')
            # None waits for a reconnection: at most a couple of requests (those in flight
            # when the connection broke) take longer than the 50 ms timeout plus a margin.
            slow = [t for t in took if t > 0.05 + 0.2]
            self.assertLessEqual(len(slow), 2, slow)
            self.assertEqual(metric_sum(gw.admin, "vigil_ratelimit_store_up", {"store": "redis"}), 0)
            self.assertGreater(metric_sum(gw.admin, "vigil_ratelimit_store_errors_total",
                                          {"store": "redis"}), 0)
            self.assertGreater(metric_sum(gw.admin, "vigil_ratelimit_decisions_total",
                                          {"store": "fallback"}), 0)
            wait_for(lambda: store_warnings(gw), what="the warn line of the episode")
            self.assertEqual(len(store_warnings(gw)), 1, store_warnings(gw))

            self.redis.restart()
            wait_for(lambda: metric_sum(gw.admin, "vigil_ratelimit_store_up",
                                        {"store": "redis"}) == 1,
                     what="shared limits back by themselves")
            before = metric_sum(gw.admin, "vigil_ratelimit_decisions_total", {"store": "redis"})
            self.assertEqual(get(gw.port, conn=conn).status, 200)
            self.assertEqual(metric_sum(gw.admin, "vigil_ratelimit_decisions_total",
                                        {"store": "redis"}), before + 1)
        self.assertEqual(len(store_warnings(gw)), 1, "one warn line per episode")
        ended = [r for r in log_records(gw.proc) if r.get("level") == "info"
                 and "redis" in json.dumps(r).lower()]
        self.assertTrue(ended, "an info line when the episode ends")

    def test_a_paused_redis_costs_each_decision_its_timeout_at_most(self):
        gw = self.gateway(per_address(100000))
        wait_for(lambda: metric_sum(gw.admin, "vigil_ratelimit_store_up", {"store": "redis"}) == 1,
                 what="gateway connected to redis")
        self.redis.command("CLIENT", "PAUSE", "2000", "ALL")
        with RawConnection(gw.port) as conn:
            for _ in range(5):
                started = time.monotonic()
                self.assertEqual(get(gw.port, conn=conn).status, 200)
                # One decision, so one timeout (50 ms) at most, plus a margin.
                self.assertLess(time.monotonic() - started, 0.05 + 0.25)
        self.assertGreaterEqual(metric_sum(gw.admin, "vigil_ratelimit_store_errors_total",
                                           {"store": "redis", "reason": "timeout"}), 5)

    def test_fail_closed_answers_503_while_redis_is_down(self):
        gw = self.gateway(per_address(100, on_store_failure="closed"))
        wait_for(lambda: metric_sum(gw.admin, "vigil_ratelimit_store_up", {"store": "redis"}) == 1,
                 what="gateway connected to redis")
        self.redis.kill()
        wait_for(lambda: get(gw.port).status == 503, what="503 while the store is down")
        assert_problem(self, get(gw.port), 503)


class ClientAddressTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.close)
        self.echo = start_echo(self.sandbox)
        self.routes = [{"prefix": "/api", "upstream": self.echo.url + "/echo", "strip_prefix": True}]

    def test_a_forged_forwarded_for_does_not_change_the_key(self):
        gw = start_gateway(self.sandbox, self.routes, SECRET_ENV, rate_limits=per_address(2))
        self.assertEqual(get(gw.port, headers={"X-Forwarded-For": "1.1.1.1"}).status, 200)
        self.assertEqual(get(gw.port, headers={"X-Forwarded-For": "2.2.2.2"}).status, 200)
        self.assertEqual(get(gw.port, headers={"X-Forwarded-For": "3.3.3.3"}).status, 429)

    def test_a_trusted_proxys_forwarded_for_is_the_client(self):
        gw = start_gateway(self.sandbox, self.routes, SECRET_ENV,
                           rate_limits=per_address(1, trusted_proxies=["127.0.0.1"]))
        self.assertEqual(get(gw.port, headers={"X-Forwarded-For": "1.1.1.1"}).status, 200)
        self.assertEqual(get(gw.port, headers={"X-Forwarded-For": "1.1.1.1"}).status, 429)
        self.assertEqual(get(gw.port, headers={"X-Forwarded-For": "2.2.2.2"}).status, 200)
        # The service behind sees the address the gateway vouches for, signed.
        r = get(gw.port, headers={"X-Forwarded-For": "3.3.3.3", "X-Vigil-Client": "forged"})
        seen = r.json()["headers"]
        self.assertRegex(seen.get("x-vigil-client", ""), r"^v1\.client:3\.3\.3\.3\.\d+\.[0-9a-f]{64}$")

    def test_sighup_reloads_routes_and_limits_on_a_live_connection(self):
        gw = start_gateway(self.sandbox, self.routes, SECRET_ENV, rate_limits=per_address(2))
        config = self.sandbox.dir / "gateway.json"
        with RawConnection(gw.port) as conn:
            self.assertEqual([get(gw.port, conn=conn).status for _ in range(3)], [200, 200, 429])
            # Twice the window and five times the quota: the minute the three requests took
            # stays taken (the policy's counters survive), four more requests fit.
            # A route is added in the same reload.
            routes = self.routes + [{"prefix": "/more", "upstream": self.echo.url + "/echo",
                                     "strip_prefix": True}]
            self.assertEqual(get(gw.port, "/more/x", conn=conn).status, 404)
            write_gateway_config(self.sandbox, routes, rate_limits=per_address(10, window_s=120))
            gw.proc.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: any(r.get("msg") == "configuration reloaded"
                                 for r in log_records(gw.proc)), what="reload logged")
            r = get(gw.port, conn=conn)
            self.assertEqual(r.status, 200, "the new quota applies, the connection stays")
            self.assertEqual(r.header("RateLimit-Policy"), '"per-address";q=10;w=120')
            self.assertRegex(r.header("RateLimit"), r'^"per-address";r=4;t=7[12]$')
            r = get(gw.port, "/more/x", conn=conn)
            self.assertEqual(r.status, 200, "the new route serves")
            self.assertEqual(r.json()["target"], "/echo/x")
            config.write_text('{"routes": [], "rate_limits": ')
            gw.proc.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: any(r.get("msg", "").startswith("configuration not reloaded")
                                 for r in log_records(gw.proc)), what="bad file refused")
            self.assertEqual(get(gw.port, conn=conn).header("RateLimit-Policy"),
                             '"per-address";q=10;w=120', "the running limits stay")
        self.assertTrue(gw.alive())


class LoginLimitsTest(unittest.TestCase):
    """auth's own policies behind the gateway: per account (decided before the account is
    looked up) and per client address (the one the gateway signs)."""

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        limits = cls.sandbox.dir / "auth-limits.json"
        limits.write_text(json.dumps({"policies": [
            {"name": "login-per-account", "key": ["user"], "quota": 3, "window_s": 600},
            {"name": "login-per-address", "key": ["client_address"], "quota": 8,
             "window_s": 600, "match": [{"prefix": "/login", "methods": ["POST"]}]}]}))
        # The gateway believes X-Forwarded-For from this host, so that the test can play
        # clients at several addresses; auth learns each from the gateway's signature.
        gateway_limits = {"trusted_proxies": ["127.0.0.1"], "policies": [
            {"name": "api-per-address", "key": ["client_address"], "quota": 1000,
             "window_s": 60, "match": [{"prefix": "/api"}]}]}
        try:
            cls.p = Platform(cls.sandbox, {"VIGIL_RATELIMIT_CONFIG": str(limits)},
                             gateway_limits=gateway_limits)
        except BaseException:
            cls.sandbox.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()

    def attempts(self, email, n, headers=None):
        return [self.p.call("POST", "/auth/login", {"email": email, "password": "wrong-password"},
                            headers=headers) for _ in range(n)]

    def test_known_and_unknown_accounts_are_limited_alike(self):
        self.p.call("POST", "/auth/register", {"email": "known@example.com",
                                               "password": "correct horse battery"})
        address = {"X-Forwarded-For": "10.9.9.9"}
        known = self.attempts("known@example.com", 4, address)
        unknown = self.attempts("nobody@example.com", 4, address)
        self.assertEqual([s for s, _, _ in known], [401, 401, 401, 429])
        self.assertEqual([s for s, _, _ in unknown], [401, 401, 401, 429])
        for (_, headers, body) in (known[3], unknown[3]):
            self.assertEqual(body["type"], "urn:vigil:problem:quota-exceeded")
            self.assertIn("login-per-account", body["detail"])
            # auth's fields, not the gateway's api-per-address that also applied.
            self.assertEqual(headers.get("RateLimit-Policy"), '"login-per-account";q=3;w=600')
        self.assertEqual(known[3][2]["detail"], unknown[3][2]["detail"])
        # Eight logins from 10.9.9.9 so far: its next one meets the address limit...
        status, _, body = self.p.call("POST", "/auth/login",
                                      {"email": "third@example.com", "password": "x" * 12},
                                      headers=address)
        self.assertEqual(status, 429)
        self.assertIn("login-per-address", body["detail"])
        # ...while another address, vouched for by the gateway, is not limited.
        status, _, _ = self.p.call("POST", "/auth/login",
                                   {"email": "third@example.com", "password": "x" * 12},
                                   headers={"X-Forwarded-For": "10.8.8.8"})
        self.assertEqual(status, 401)

if __name__ == "__main__":
    unittest.main()

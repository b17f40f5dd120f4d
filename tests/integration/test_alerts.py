"""The alerting rules of ops/ against the running platform: the services under traffic, a
real Prometheus loaded with ops/prometheus/ (scraping and evaluating every second) and a
real Alertmanager with ops/alertmanager/, delivering to ops/alertmanager/receiver.py.

Every recording rule and every alert's expression (its thresholds relaxed) returns data on
the live scrape, and every metric name a rule reads is one a service exposes: a rule that
can never match a real series, or a renamed metric, fails here rather than on an on-call
night. Faults then travel the whole way: a rate-limit store that dies fires its alert into
the ticket receiver, a stopped service pages within 30 seconds. Alertmanager on its own
shows the inhibition rules at work. (test_alert_files.py checks the files themselves.)"""

import json
import re
import time
import unittest
import urllib.parse

from harness import (Platform, Redis, Sandbox, SentryReceiver, call_json, http_get,
                     make_certificate, metric_samples, start_gateway, wait_for)
from harness.monitoring import (RUNBOOKS_DIR, AlertReceiver, alerting_rules, exposition_names,
                                metric_names, post_alerts, query, recording_rules, relaxed,
                                start_alertmanager, start_ops_prometheus)
from harness.processes import ROOT

# The gateway's rate limits, so that its decisions are counted (through Redis).
GATEWAY_LIMITS = {"policies": [
    {"name": "api-per-address", "key": ["client_address"], "quota": 30000, "window_s": 60,
     "burst": 3000, "match": [{"prefix": "/api"}]}]}


class AlertmanagerTest(unittest.TestCase):
    """Alerts posted to Alertmanager as Prometheus would: routing and inhibition."""

    def setUp(self):
        self.sandbox = Sandbox()
        self.receiver = AlertReceiver(self.sandbox)
        self.alertmanager = start_alertmanager(self.sandbox, self.receiver)

    def tearDown(self):
        self.sandbox.close()

    def test_service_down_and_a_page_hold_back_what_they_explain(self):
        def alert(name, severity, service, **labels):
            return {"labels": {"alertname": name, "severity": severity, "service": service,
                               **labels},
                    "annotations": {"summary": f"{name} test", "description": "posted by a test",
                                    "runbook_url": f"ops/runbooks/{name}.md"}}
        burn = {"slo": "gateway-availability"}
        post_alerts(self.alertmanager, [
            alert("ServiceDown", "critical", "catalog"),
            alert("ServiceErrorRatioHigh", "warning", "catalog"),
            alert("ServiceErrorRatioHigh", "warning", "orders"),
            alert("GatewayAvailabilityBudgetBurn", "critical", "gateway", **burn),
            alert("GatewayAvailabilityBudgetBurn", "warning", "gateway", **burn)])

        def delivered(receiver, name, service):
            return [d for d in self.receiver.deliveries(receiver, name)
                    if d["labels"].get("service") == service and d["status"] == "FIRING"]
        wait_for(lambda: delivered("page", "ServiceDown", "catalog"), timeout=20,
                 what="ServiceDown paged")
        wait_for(lambda: delivered("ticket", "ServiceErrorRatioHigh", "orders"), timeout=20,
                 what="orders' error ratio ticketed")
        wait_for(lambda: delivered("page", "GatewayAvailabilityBudgetBurn", "gateway"),
                 timeout=20, what="the burn paged")

        _, _, body = http_get(self.alertmanager + "/api/v2/alerts")
        state = {(a["labels"]["alertname"], a["labels"]["service"], a["labels"]["severity"]):
                 a["status"] for a in json.loads(body)}
        for held in (("ServiceErrorRatioHigh", "catalog", "warning"),
                     ("GatewayAvailabilityBudgetBurn", "gateway", "warning")):
            self.assertEqual(state[held]["state"], "suppressed", held)
            self.assertTrue(state[held]["inhibitedBy"], held)
        self.assertEqual(state[("ServiceErrorRatioHigh", "orders", "warning")]["state"], "active")
        # Their groups were due with the others: they were held, not late.
        self.assertEqual(delivered("ticket", "ServiceErrorRatioHigh", "catalog"), [])
        self.assertEqual(delivered("ticket", "GatewayAvailabilityBudgetBurn", "gateway"), [])


class LiveAlertsTest(unittest.TestCase):
    """The platform with traffic, Redis for the rate limits, Prometheus and Alertmanager;
    the tests run in the order of their names (the last two break things)."""

    @classmethod
    def setUpClass(cls):
        cls.sandbox = Sandbox()
        try:
            cls.redis = Redis(cls.sandbox)
            # Error reports go to a receiver of their own, so that their counters exist.
            cls.sentry = SentryReceiver()
            cls.platform = Platform(cls.sandbox, env={"VIGIL_REDIS_URL": cls.redis.url,
                                                      "SENTRY_DSN": cls.sentry.dsn},
                                    gateway_limits=GATEWAY_LIMITS)
            # A second gateway serving HTTPS, scraped with the first: the certificate's
            # expiry gauge exists only on a TLS listener.
            cert, key = make_certificate(cls.sandbox.dir, "gateway", "vigil-alerts-test", 0xA2)
            cls.tls_gateway = start_gateway(
                cls.sandbox, [{"prefix": "/catalog",
                               "upstream": cls.platform.services["catalog"].url}],
                {"VIGIL_TLS_CERT_FILE": str(cert), "VIGIL_TLS_KEY_FILE": str(key),
                 "VIGIL_GATEWAY_AUTH": "false", "SENTRY_DSN": cls.sentry.dsn},
                name="gateway-tls")
            cls.receiver = AlertReceiver(cls.sandbox)
            cls.alertmanager = start_alertmanager(cls.sandbox, cls.receiver)
            targets = {name: f"127.0.0.1:{s.admin_port}"
                       for name, s in cls.platform.services.items()}
            targets["gateway"] = [targets["gateway"], f"127.0.0.1:{cls.tls_gateway.admin_port}"]
            cls.prometheus = start_ops_prometheus(cls.sandbox, targets, cls.alertmanager)
            # One test error report per service once Prometheus has scraped the counters, so
            # that the ratios of reports lost have a rate to divide by.
            wait_for(lambda: len(query(cls.prometheus, 'vigil_telemetry_exported_total'
                                                       '{signal="errors"}'))
                     == len(cls.platform.services) + 1,
                     what="the error report counters in Prometheus")
            for service in [*cls.platform.services.values(), cls.tls_gateway]:
                status, _, answer = call_json(service.admin + "/debug/sentry-test", "POST", raw=b"")
                if status != 202:
                    raise AssertionError(f"the test error report was refused: {answer}")
            cls.traffic = cls.sandbox.start(
                ["/usr/bin/python3", str(ROOT / "bench" / "traffic" / "traffic.py"), "--url",
                 cls.platform.gateway.url, "--rate", "4", "--seed", "23"], "traffic")
        except BaseException:
            if hasattr(cls, "sentry"):
                cls.sentry.close()
            cls.sandbox.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sandbox.close()
        cls.sentry.close()

    def live_names(self):
        names = set()
        for service in [*self.platform.services.values(), self.tls_gateway]:
            status, _, body = http_get(service.admin + "/metrics")
            if status == 200:
                names |= exposition_names(body.decode())
        return names

    def unexposed(self, names):
        """Those of `names` that no service's /metrics has, given the traffic 30 s to make
        the counters that appear on their first event."""
        missing = set(names)

        def all_there():
            missing.intersection_update(names - self.live_names())
            return not missing
        try:
            wait_for(all_there, timeout=30, interval=0.5, what="the metrics on /metrics")
        except TimeoutError:
            pass
        return missing

    def test_1_every_rule_returns_data_on_the_live_scrape(self):
        """Recording rules: at least one series with a number. Alerts: their expression
        with every threshold relaxed (harness.monitoring.relaxed) returns a series, so each
        selector and join meets real series; the thresholds are promtool's to prove."""
        pending = {}
        for rule in recording_rules():
            labels = ",".join(f'{k}="{v}"' for k, v in rule.get("labels", {}).items()
                              if k in ("slo", "service"))
            pending[f"record {rule['record']}{{{labels}}}"] = (
                f"{rule['record']}{{{labels}}}", True)
        for rule in alerting_rules():
            key = f"alert {rule['alert']} ({rule['labels']['severity']})"
            pending[key] = (relaxed(rule["expr"]), False)
        self.assertGreater(len(pending), 100)

        def drain():
            for key, (expr, needs_number) in list(pending.items()):
                result = query(self.prometheus, expr)
                if any(value == value for _, value in result) or (result and not needs_number):
                    del pending[key]
            return not pending
        try:
            wait_for(drain, timeout=60, interval=1, what="data for every rule")
        except TimeoutError:
            self.fail("no data on the live scrape for:\n  " + "\n  ".join(sorted(pending)))

    def test_1_every_dashboard_link_queries_live_series(self):
        urls = {rule["annotations"]["dashboard_url"] for rule in alerting_rules()}
        exprs = set()
        for url in urls:
            rendered = (url.replace("{{ $externalURL }}", self.prometheus)
                        .replace("{{ $labels.job }}", "gateway"))
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(rendered).query)
            exprs |= {v[0] for k, v in params.items() if k.endswith(".expr")}
        self.assertGreaterEqual(len(exprs), 5)
        for expr in exprs:
            wait_for(lambda: query(self.prometheus, expr), timeout=30, interval=0.5,
                     what=f"data for the dashboard query {expr}")

    def test_2_every_metric_a_rule_reads_is_exposed(self):
        recorded = {rule["record"] for rule in recording_rules()}
        used = set()
        for rule in recording_rules() + alerting_rules():
            used |= metric_names(rule["expr"])
        self.assertEqual(self.unexposed(used - recorded - {"up"}), set(),
                         "metrics the rules read that no service exposes")
        # Each one is written down where dashboards and alerts look names up.
        docs = ((ROOT / "docs" / "conventions.md").read_text()
                + (ROOT / "docs" / "operations.md").read_text())
        for name in sorted(used - recorded - {"up"}):
            base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
            self.assertIn(base, docs, f"{name} is in neither conventions.md nor operations.md")

    def test_2_every_runbook_query_runs_on_live_series(self):
        """The PromQL blocks of ops/runbooks/: Prometheus accepts each, and each metric it
        reads is exposed (or recorded), so a renamed metric breaks a test, not a runbook."""
        known = {rule["record"] for rule in recording_rules()} | {"up"}
        blocks = []
        for page in sorted(RUNBOOKS_DIR.glob("*.md")):
            blocks += [(page.name, " ".join(b.split()))
                       for b in re.findall(r"```promql\n(.*?)```", page.read_text(), re.S)]
        self.assertGreater(len(blocks), 40)
        for page, expr in blocks:
            with self.subTest(page=page, expr=expr):
                query(self.prometheus, expr)  # raises unless Prometheus accepts it
        read = set().union(*(metric_names(expr) for _, expr in blocks))
        self.assertEqual(self.unexposed(read - known), set(),
                         "metrics the runbooks query that no service exposes")

    def test_3_a_failing_rate_limit_store_fires_its_alert_end_to_end(self):
        gateway = self.platform.gateway.admin + "/metrics"
        self.assertEqual(metric_samples(http_get(gateway)[2].decode(),
                                        "vigil_ratelimit_store_up")[0][1], 1)
        self.redis.kill()

        def ticketed():
            return [d for d in self.receiver.deliveries("ticket", "RateLimitStoreDown")
                    if d["status"] == "FIRING" and d["labels"].get("service") == "gateway"
                    and d["labels"].get("store") == "redis"]
        wait_for(ticketed, timeout=30, interval=0.2, what="RateLimitStoreDown at the receiver")
        # The requests still went through: the limits fell back to memory.
        status, _, _ = self.platform.call("GET", "/catalog/items?limit=1")
        self.assertEqual(status, 200)

    def test_4_a_stopped_service_pages_within_30_seconds(self):
        catalog = self.platform.services["catalog"]
        stopped = time.monotonic()
        catalog.proc.stop()

        def paged():
            return [d for d in self.receiver.deliveries("page", "ServiceDown")
                    if d["status"] == "FIRING" and d["labels"].get("service") == "catalog"]
        wait_for(paged, timeout=30, interval=0.2, what="ServiceDown for catalog at the receiver")
        self.assertLess(time.monotonic() - stopped, 30)


if __name__ == "__main__":
    unittest.main()

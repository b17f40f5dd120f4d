"""The alerting files under ops/, checked by the tools that will load them and against each
other: the SLO rules are what ops/slo/generate.py writes from the spec; promtool accepts the
Prometheus configuration and rules and passes their unit tests, which make every alert fire
and stay silent and split each burn-rate alert into page and ticket; amtool accepts the
Alertmanager configuration and routes each kind of alert as ops/alertmanager/routes_test.txt
says; every alert carries what on-call needs and has its runbook, and every runbook an
alert. (test_alerts.py runs the same files against live services.)"""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

from harness.monitoring import (ALERTMANAGER_DIR, OPS, PROMETHEUS_CONFIG, RULE_TESTS_DIR,
                                RUNBOOKS_DIR, SEVERITIES, alerting_rules, metric_names,
                                relaxed, render_alertmanager, rule_files)
from harness.topology import HOST, SERVICES

RUNBOOK_SECTIONS = ("## What it means", "## Impact", "## Diagnose", "## Mitigate",
                    "## Escalate")


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def load_generator():
    spec = importlib.util.spec_from_file_location("generate", OPS / "slo" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def severities_by_alert():
    found = {}
    for rule in alerting_rules():
        found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    return found


class SloGeneratorTest(unittest.TestCase):
    def test_committed_rules_are_what_the_spec_generates(self):
        result = run([sys.executable, str(OPS / "slo" / "generate.py"), "--check"])
        self.assertEqual(result.returncode, 0,
                         "the SLO rules differ from ops/slo/slos.yaml; run "
                         "python3 ops/slo/generate.py\n" + result.stdout + result.stderr)

    def test_every_slo_has_rules_tests_and_a_burn_alert(self):
        generate = load_generator()
        slos = generate.load()
        self.assertGreaterEqual(len(slos), 7)
        ids = {s.id for s in slos}
        # What the issue asks at the least: availability of every service, auth's login
        # latency (the SLA), the gateway's latency and order creation.
        for service in SERVICES:
            self.assertIn(f"{service}-availability", ids)
        self.assertTrue({"auth-login-latency", "gateway-latency", "orders-creation"} <= ids, ids)
        alerts = severities_by_alert()
        for slo in slos:
            self.assertEqual(alerts.get(slo.alert), {"critical", "warning"}, slo.alert)
            self.assertTrue((RULE_TESTS_DIR / f"slo-{slo.id}_test.yml").exists(), slo.id)
            if "latency" in slo.name:
                self.assertIn('le="0.1"', slo.events, "latency SLIs read the 100 ms bucket")

    def test_the_generator_refuses_a_spec_it_cannot_honour(self):
        generate = load_generator()
        good = {"service": "auth", "name": "availability", "objective": "0.999",
                "description": "d", "sli": {"bad": 'x_total{code="5"}', "total": "x_total{}"},
                "test": [{"series": "x_total{}", "counts": "all"}]}
        cases = {
            "an objective as a float": {"objective": 0.999},
            # 14.4 times a 10% budget is more than every request failing.
            "an objective whose page could never fire": {"objective": "0.9"},
            "both good and bad": {"sli": {"bad": "a{}", "good": "b{}", "total": "c{}"}},
            "an expression for a selector": {"sli": {"bad": "sum(a{})", "total": "c{}"}},
            "an unknown key": {"owner": "team"},
        }
        for what, change in cases.items():
            with self.subTest(what), tempfile.TemporaryDirectory() as tmp:
                spec = Path(tmp) / "slos.yaml"
                spec.write_text(yaml.safe_dump({"window": "30d", "slos": [{**good, **change}]}))
                with self.assertRaises(generate.SpecError):
                    generate.load(spec)
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "slos.yaml"
            spec.write_text(yaml.safe_dump({"window": "30d", "slos": [good]}))
            self.assertEqual([s.id for s in generate.load(spec)], ["auth-availability"])


class PrometheusFilesTest(unittest.TestCase):
    def test_promtool_accepts_the_config_and_every_rule_file(self):
        result = run(["promtool", "check", "config", str(PROMETHEUS_CONFIG)])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"SUCCESS: {len(rule_files())} rule files found", result.stdout)
        result = run(["promtool", "check", "rules", *map(str, rule_files())])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_promtool_unit_tests_pass(self):
        tests = sorted(RULE_TESTS_DIR.glob("*_test.yml"))
        self.assertGreaterEqual(len(tests), 3)
        result = run(["promtool", "test", "rules", *map(str, tests)])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_alert_fires_and_stays_silent_in_a_unit_test(self):
        fired, silent, ticket_alone = {}, set(), set()
        for path in RULE_TESTS_DIR.glob("*_test.yml"):
            for case in yaml.safe_load(path.read_text())["tests"]:
                for check in case.get("alert_rule_test", []):
                    name = check["alertname"]
                    expected = {a["exp_labels"]["severity"] for a in check.get("exp_alerts") or []}
                    if not expected:
                        silent.add(name)
                    fired.setdefault(name, set()).update(expected)
                    if expected == {"warning"}:
                        ticket_alone.add(name)
        for alert, severities in severities_by_alert().items():
            with self.subTest(alert):
                self.assertEqual(fired.get(alert), severities,
                                 "a unit test fires each of its severities")
                self.assertIn(alert, silent, "a unit test where it stays silent")
                if severities == {"critical", "warning"}:
                    self.assertIn(alert, ticket_alone, "a burn that tickets without paging")

    def test_every_alert_carries_what_on_call_needs(self):
        for rule in alerting_rules():
            name = rule["alert"]
            with self.subTest(name):
                self.assertIn(rule["labels"].get("severity"), SEVERITIES)
                annotations = rule["annotations"]
                self.assertEqual(set(annotations),
                                 {"summary", "description", "runbook_url", "dashboard_url"})
                self.assertNotIn("{{", annotations["summary"], "the summary is static")
                self.assertIn("{{", annotations["description"], "the description is templated")
                self.assertEqual(annotations["runbook_url"], f"ops/runbooks/{name}.md")
                self.assertTrue(annotations["dashboard_url"].startswith(
                    "{{ $externalURL }}/graph?g0.expr="), annotations["dashboard_url"])
                # The service the alert is about: a label of the rule, or of the SLO's
                # recorded series it reads.
                if "service" not in rule["labels"]:
                    self.assertIn("slo:sli_error:ratio_rate", rule["expr"])
                # Thresholds are plain numbers, so that test_alerts.py can relax them.
                self.assertNotEqual(relaxed(rule["expr"]), rule["expr"])

    def test_prometheus_scrapes_each_service_on_its_admin_port(self):
        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        jobs = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
                for job in config["scrape_configs"]}
        self.assertEqual(jobs, {name: [f"{HOST}:{s['admin_port']}"]
                                for name, s in SERVICES.items()})
        self.assertEqual(config["storage"]["exemplars"]["max_exemplars"], 100000)
        self.assertEqual(config["rule_files"], ["rules/*.yml"])

    def test_metric_names_are_read_from_expressions(self):
        expr = ('sum by (job, le) (rate(a_bucket{le="0.1",x=~"y|z"}[5m])) / on (job) '
                'ignoring(le) b:c:rate5m > 0.5 and histogram_quantile(0.9, d) or up == 0 '
                'and time() - process_start_time_seconds > 1e3')
        self.assertEqual(metric_names(expr),
                         {"a_bucket", "b:c:rate5m", "d", "up", "process_start_time_seconds"})
        self.assertEqual(relaxed("a / 0.001 > 14.4 and b < 3 and c == 0"),
                         "a / 0.001 > -Inf and b < +Inf and c > -Inf")


class AlertmanagerFilesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.config = Path(self.tmp.name) / "alertmanager.yml"
        self.config.write_text(render_alertmanager("https://pager.example/hook",
                                                   "https://tickets.example/hook"))

    def tearDown(self):
        self.tmp.cleanup()

    def test_amtool_accepts_the_rendered_config(self):
        result = run(["amtool", "check-config", str(self.config)])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS", result.stdout)

    def test_routes_table(self):
        rows = []
        for line in (ALERTMANAGER_DIR / "routes_test.txt").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                receiver, *labels = line.split()
                rows.append((receiver, labels))
        for receiver, labels in rows:
            with self.subTest(" ".join(labels)):
                result = run(["amtool", "config", "routes", "test",
                              f"--config.file={self.config}", f"--verify.receivers={receiver}",
                              *labels])
                self.assertEqual(result.returncode, 0, f"went to {result.stdout.strip()}")
        # Every alert of the rules is in the table with each of its severities.
        listed = set()
        for _, labels in rows:
            fields = dict(label.split("=", 1) for label in labels)
            listed.add((fields["alertname"], fields.get("severity")))
        for alert, severities in severities_by_alert().items():
            for severity in severities:
                self.assertIn((alert, severity), listed)

    def test_render_refuses_to_leave_a_receiver_without_its_url(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_ALERT_")}
        env["VIGIL_ALERT_PAGE_URL"] = "https://pager.example/hook"
        out = Path(self.tmp.name) / "out.yml"
        result = run([sys.executable, str(ALERTMANAGER_DIR / "render.py"), "--out", str(out)],
                     env=env)
        self.assertEqual(result.returncode, 2)
        self.assertIn("VIGIL_ALERT_TICKET_URL", result.stderr)
        self.assertNotIn("VIGIL_ALERT_PAGE_URL", result.stderr)
        self.assertFalse(out.exists())
        env["VIGIL_ALERT_TICKET_URL"] = 'https://tickets.example/hook"\nglobal: {}'
        result = run([sys.executable, str(ALERTMANAGER_DIR / "render.py"), "--out", str(out)],
                     env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        # A value cannot add to the file's structure: it stays one string.
        urls = [w["url"] for r in yaml.safe_load(out.read_text())["receivers"]
                for w in r.get("webhook_configs", [])]
        self.assertEqual(urls, ["https://pager.example/hook",
                                'https://tickets.example/hook"\nglobal: {}'])


class RunbookTest(unittest.TestCase):
    def test_every_alert_has_a_runbook_and_every_runbook_an_alert(self):
        pages = {p.stem for p in RUNBOOKS_DIR.glob("*.md") if p.name != "README.md"}
        self.assertEqual(pages, set(severities_by_alert()))

    def test_each_runbook_says_what_on_call_needs(self):
        for page in RUNBOOKS_DIR.glob("*.md"):
            if page.name == "README.md":
                continue
            text = page.read_text()
            with self.subTest(page.name):
                self.assertTrue(text.startswith(f"# {page.stem}\n"), "titled by its alert")
                positions = [text.find(section) for section in RUNBOOK_SECTIONS]
                self.assertNotIn(-1, positions, f"sections {RUNBOOK_SECTIONS}")
                self.assertEqual(positions, sorted(positions), "sections in order")
                diagnose = text[positions[2]:positions[3]]
                self.assertIn("```promql", diagnose, "the PromQL to run")
                self.assertIn("trace_id", diagnose, "how to find the failing requests")
                self.assertRegex(diagnose, r"dashboard|graph", "the dashboard to open")
        index = (RUNBOOKS_DIR / "README.md").read_text()
        for alert in severities_by_alert():
            self.assertIn(f"({alert}.md)", index, f"README.md links {alert}")


if __name__ == "__main__":
    unittest.main()

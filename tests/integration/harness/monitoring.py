"""The alerting files under ops/ as the suites read them, and the monitoring stack they
describe started for real: Prometheus loaded with ops/prometheus/ (targets and intervals
set for a test), Alertmanager with ops/alertmanager/alertmanager.yml rendered, and the
webhook receiver of ops/alertmanager/receiver.py."""

import importlib.util
import json
import re
import sys
import urllib.parse
import urllib.request

import yaml

from .client import http_get
from .processes import ROOT, free_port, wait_for, wait_ready

OPS = ROOT / "ops"
PROMETHEUS_DIR = OPS / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
ALERTMANAGER_DIR = OPS / "alertmanager"
RUNBOOKS_DIR = OPS / "runbooks"
SEVERITIES = ("critical", "warning", "info")


# ---------------------------------------------------------------------------- the files

def rule_files():
    return sorted(RULES_DIR.glob("*.yml"))


def rules():
    """[(file name, rule)] of every rule of ops/prometheus/rules/, recording and alerting."""
    found = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(path.name, rule) for rule in group["rules"]]
    return found


def alerting_rules():
    return [rule for _, rule in rules() if "alert" in rule]


def recording_rules():
    return [rule for _, rule in rules() if "record" in rule]


# A comparison with a number: the threshold of an alert or of its traffic guard.
_THRESHOLD = re.compile(r"(>=|<=|==|!=|>|<)\s*(-?[0-9][0-9.e+]*)(?![\w.])")


def relaxed(expr):
    """`expr` with every comparison against a number made true for any number: what the
    expression selects and joins, whatever the thresholds. A rule whose relaxed expression
    returns nothing on a live platform can never fire."""
    def loosen(match):
        op = match.group(1)
        return "< +Inf" if op in ("<", "<=") else "> -Inf"
    return _THRESHOLD.sub(loosen, expr)


_FUNCTION_OR_KEYWORD = {"by", "without", "on", "ignoring", "group_left", "group_right", "and",
                        "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names `expr` selects (recorded series included), read off the PromQL
    text: strings, label matchers, ranges and grouping clauses removed, then every name
    that is not a function call or a keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        if name.lower() in _FUNCTION_OR_KEYWORD or text[match.end():].lstrip().startswith("("):
            continue
        names.add(name)
    return names


def exposition_names(text):
    """The sample names of a Prometheus text exposition."""
    return {re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0)
            for line in text.splitlines() if line and not line.startswith("#")}


# ---------------------------------------------------------------------------- the stack

def render_alertmanager(page_url, ticket_url, fast=False):
    """ops/alertmanager/alertmanager.yml through render.py's substitution; `fast` makes
    every wait of the route 1 s (group_wait, group_interval) so that a test sees a
    notification at once."""
    spec = importlib.util.spec_from_file_location("render", ALERTMANAGER_DIR / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = render.render((ALERTMANAGER_DIR / "alertmanager.yml").read_text(),
                         {"VIGIL_ALERT_PAGE_URL": page_url, "VIGIL_ALERT_TICKET_URL": ticket_url})
    if not fast:
        return text
    config = yaml.safe_load(text)
    config["route"].update(group_wait="1s", group_interval="1s")
    return yaml.safe_dump(config, sort_keys=False)


class AlertReceiver:
    """ops/alertmanager/receiver.py on a free port, its printed lines readable back."""

    def __init__(self, sandbox):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = sandbox.start([sys.executable, "-u", str(ALERTMANAGER_DIR / "receiver.py"),
                                   "--port", str(self.port)], "alert-receiver",
                                  {"NO_COLOR": "1"})
        wait_ready(self.proc, lambda: "listening" in self.proc.output(), "alert receiver")

    def deliveries(self, receiver, alertname):
        """The first lines of the alerts named `alertname` that came through `receiver`,
        as {"status", "labels"}."""
        found = []
        for line in self.proc.lines():
            fields = line.split()
            if (re.match(r"^\d\d:\d\d:\d\d ", line) and len(fields) >= 4
                    and fields[1] == receiver and fields[3] == alertname):
                labels = dict(f.split("=", 1) for f in fields[4:] if "=" in f
                              and re.match(r"^\w+=", f))
                found.append({"status": fields[2], "labels": labels})
        return found


def start_alertmanager(sandbox, receiver, fast=True):
    """Alertmanager with the rendered ops config, both receivers' webhooks on `receiver`
    (an AlertReceiver); returns its URL once ready."""
    port = free_port()
    config = sandbox.dir / "alertmanager.yml"
    config.write_text(render_alertmanager(receiver.url + "/page", receiver.url + "/ticket", fast))
    proc = sandbox.start(["prometheus-alertmanager", f"--config.file={config}",
                          f"--storage.path={sandbox.dir / 'am-data'}",
                          f"--web.listen-address=127.0.0.1:{port}",
                          "--cluster.listen-address="], "alertmanager")
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_get(url + "/-/ready")[0] == 200, "alertmanager /-/ready")
    return url


def post_alerts(alertmanager, alerts):
    """Posts alerts (each {"labels", "annotations"}) to Alertmanager's API, as Prometheus
    does."""
    req = urllib.request.Request(alertmanager + "/api/v2/alerts", json.dumps(alerts).encode(),
                                 {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        if r.status != 200:
            raise AssertionError(f"alertmanager refused the alerts: {r.status}")


def fast_rules(sandbox):
    """Copies of ops/prometheus/rules/ with every alert's `for` cut to 1 s: the durations
    are promtool's to prove (ops/prometheus/tests/); a live test proves that the expressions
    meet real series and that an alert reaches a receiver. Returns the directory."""
    out = sandbox.dir / "rules"
    out.mkdir()
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "1s"
        (out / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def start_ops_prometheus(sandbox, targets, alertmanager):
    """Prometheus with ops/prometheus/prometheus.yml, scraping and evaluating every second,
    each job's targets replaced by targets[job] ("host:port", or a list of them; every job of
    the file must be there), alerts sent to `alertmanager` and the rules of fast_rules().
    Returns its URL."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        job_targets = targets[job["job_name"]]
        job["static_configs"] = [{"targets": [job_targets] if isinstance(job_targets, str)
                                  else list(job_targets)}]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]
    config["rule_files"] = [str(fast_rules(sandbox) / "*.yml")]
    path = sandbox.dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    proc = sandbox.start(["prometheus", f"--config.file={path}",
                          f"--storage.tsdb.path={sandbox.dir / 'prom-data'}",
                          f"--web.listen-address=127.0.0.1:{port}",
                          "--enable-feature=exemplar-storage", "--rules.alert.resend-delay=1s"],
                         "prometheus")
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, lambda: http_get(url + "/-/ready")[0] == 200, "prometheus /-/ready")
    return url


def query(prometheus, expr):
    """The instant vector `expr` evaluates to now: [(labels, value as float)]."""
    status, _, body = http_get(f"{prometheus}/api/v1/query?"
                               + urllib.parse.urlencode({"query": expr}))
    answer = json.loads(body)
    if status != 200 or answer.get("status") != "success":
        raise AssertionError(f"query {expr!r}: {status} {answer.get('error', body[:300])}")
    return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]


def wait_for_series(prometheus, expr, timeout=30.0):
    return wait_for(lambda: query(prometheus, expr), timeout=timeout, interval=0.5,
                    what=f"a series of {expr}")

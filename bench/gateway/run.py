#!/usr/bin/python3
"""Gateway benchmark: vigil-gateway side by side with nginx and HAProxy.

Every case is measured with the same wrk settings against the same upstream (nginx answering
`return 200 "ok"`), one case after another, each after a short warm-up that is not counted:

  (a) upstream     the upstream alone, no proxy in front
  (b) nginx        nginx as reverse proxy: JSON access log to a file, limit_req (never limits),
                   upstream keepalive 64, HTTP/1.1 to the upstream
  (c) haproxy      HAProxy in http mode, keep-alive to the server, no logging
  (d) vigil-full   vigil-gateway with its JSON access log in a file, metrics, and every request
                   traced and exported over OTLP/HTTP to a local receiver (a second nginx)
  (e) vigil-off    vigil-gateway with VIGIL_ACCESS_LOG=false and OTEL_SDK_DISABLED=true
  (f) vigil-limit  (d) plus a rate limit per client address that never limits (quota
                   6 x 10^7 per 60 s on every path), decided in the gateway's memory store
  (g) vigil-redis  (f) with the limits shared through Redis (VIGIL_REDIS_URL): a local
                   redis-server, started once for the run, decides every request
  (h) vigil-sentry (d) with error reports on (SENTRY_DSN to the receiver): no request fails,
                   so what it costs is the reporter's per-request work (release-health
                   counts, the crash handler's request ids)

(f) and (g) fail when the gateway's vigil_ratelimit_decisions_total afterwards shows no
decision made by the store the case is about, or more than 1 % made by another.

With --rounds N (default 3) the cases run N times in turn (a b ... h, a b ... h, ...), so
that each ratio is taken between cases measured a minute apart, N times; the table shows
each case's median round and the targets use the median of each ratio over the rounds.

Prints a table, the target checks and the exact wrk command; writes <out>/gateway.json.
Two cores are shared by wrk, the upstream and the proxy: compare the ratios within one run,
not absolute figures across runs.

Exit status: 0 when every selected case ran (whether or not the targets are met), 1 when a
case could not run, 2 on bad arguments.

Usage: /usr/bin/python3 bench/gateway/run.py --build build/release --out build/bench/gateway
"""

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
from harness import (Redis, Sandbox, free_port, http_get, metric_samples,  # noqa: E402
                     proc_status, start_gateway, start_nginx, wait_ready)

ALL_CASES = ["a", "b", "c", "d", "e", "f", "g", "h"]
CASE_NAMES = {
    "a": "upstream direct (nginx return 200)",
    "b": "nginx proxy (JSON log, limit_req)",
    "c": "haproxy proxy (no log)",
    "d": "vigil-gateway, full telemetry",
    "e": "vigil-gateway, telemetry off",
    "f": "vigil-gateway, full telemetry + rate limit (memory)",
    "g": "vigil-gateway, full telemetry + rate limit (Redis)",
    "h": "vigil-gateway, full telemetry + error reports",
}
# The gateway's cases; those with full telemetry; those rate limited, by the store that
# must decide.
GATEWAY_CASES = "defgh"
FULL_TELEMETRY_CASES = "dfgh"
LIMIT_STORE = {"f": "memory", "g": "redis"}
# Per client address (wrk's one), on every path, never reached: the most a policy may allow
# (one request a microsecond, a minute's worth at once), so a refusal would take over a
# million requests a second for a minute.
NEVER_LIMITS = {"policies": [{"name": "bench-per-address", "key": ["client_address"],
                              "quota": 60_000_000, "window_s": 60,
                              "match": [{"prefix": "/"}]}]}
MIB = 1024 * 1024
READY_TIMEOUT_S = 20.0

# Prints wrk's figures in microseconds, exactly, once the run is over. Only done() is defined,
# so wrk keeps its static request and never enters Lua per request: the script costs nothing
# while measuring.
WRK_REPORT_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'VIGIL_WRK {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"status_errors":%d,' ..
    '"mean_us":%.1f,"stdev_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


class CaseError(Exception):
    """A case could not run (a program did not start, or wrk failed)."""


# ---------------------------------------------------------------------------- processes


def failure_output(proc, lines=15):
    """The last lines `proc` (a harness Process) wrote, to explain why it failed."""
    text = "\n".join(proc.lines()[-lines:])
    return f"--- {proc.name} output (last lines) ---\n{text}" if text else ""


def case_error(label, error, proc):
    """A CaseError for a program that did not start or get ready. The harness' error names
    what was awaited, and holds the output when the program exited; else it is added."""
    detail = f"\n{failure_output(proc)}" if isinstance(error, TimeoutError) and proc else ""
    return CaseError(f"{label} did not start: {error}{detail}")


def start_or_fail(sandbox, label, start):
    """Runs `start()`, a harness start that waits for readiness (CaseError if it fails)."""
    try:
        return start()
    except (AssertionError, TimeoutError, OSError) as e:
        raise case_error(label, e, sandbox.processes[-1] if sandbox.processes else None) from e


def wait_ok(proc, label, url):
    """Polls `url` until it answers 200 (through a proxy: the path to the upstream works)."""
    try:
        wait_ready(proc, lambda: http_get(url, timeout=1.0)[0] == 200, f"GET {url} -> 200",
                   timeout=READY_TIMEOUT_S)
    except (AssertionError, TimeoutError) as e:
        raise case_error(label, e, proc) from e


def proc_tree(pid):
    """pid and all its descendants (nginx: master + workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


class RssSampler(threading.Thread):
    """Samples the summed VmRSS of a process tree every 100 ms while the load runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []
        self.threads = 0  # most threads seen across the tree (processes x threads)
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.wait(0.1):
            total = threads = 0
            for p in proc_tree(self.pid):
                total += proc_status(p, "VmRSS") or 0
                threads += proc_status(p, "Threads") or 0
            if total:
                self.samples.append(total)
                self.threads = max(self.threads, threads)

    def finish(self):
        self.stop_event.set()
        self.join()
        if not self.samples:
            return {}
        s = sorted(self.samples)
        return {"rss_load_max_kib": s[-1], "rss_load_median_kib": s[len(s) // 2],
                "rss_load_samples": len(s), "threads_max": self.threads}


# ---------------------------------------------------------------------------- configs

# Every nginx of the run is a master and its workers, as deployed, accepting a burst of
# connections at once and closing no kept-alive connection during a run.
NGINX_EVENTS = "worker_connections 8192; multi_accept on;"
NGINX_KEEPALIVE = "keepalive_timeout 65s;\n  keepalive_requests 10000000;"


def start_upstream(sandbox):
    return start_nginx(sandbox, """    location / {
      default_type text/plain;
      return 200 "ok\\n";
    }""", name="upstream", http_body="access_log off;\n  " + NGINX_KEEPALIVE,
                       listen_options="backlog=4096", master=True, events=NGINX_EVENTS)


def sink_log(sandbox):
    return sandbox.dir / "sink" / "access.log"


def start_sink(sandbox):
    # The OTLP/HTTP receiver: answers every export with 200 and logs one line per POST so the
    # exports can be counted. Bodies are discarded, never stored.
    http = ("log_format sink '$request_method $uri $status $request_length $content_length';\n"
            f"  access_log {sink_log(sandbox)} sink;\n  client_max_body_size 0;\n"
            f"  {NGINX_KEEPALIVE}")
    return start_nginx(sandbox, """    location /v1/traces { return 200; }
    location /v1/logs { return 200; }
    location /v1/metrics { return 200; }
    location /api/ { return 200; }
    location / { return 404; }""", name="sink", http_body=http, master=True,
                       events=NGINX_EVENTS)


def nginx_proxy_log(sandbox):
    return sandbox.dir / "nginx-proxy" / "access.log"


def start_nginx_proxy(sandbox, upstream_port, workers):
    http = f"""log_format json escape=json
    '{{"time":"$time_iso8601","remote_addr":"$remote_addr","request_id":"$request_id",'
    '"method":"$request_method","uri":"$request_uri","protocol":"$server_protocol",'
    '"status":$status,"bytes_sent":$body_bytes_sent,"request_time":$request_time,'
    '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
    '"upstream_response_time":"$upstream_response_time","user_agent":"$http_user_agent"}}';
  access_log {nginx_proxy_log(sandbox)} json;
  # Far above anything wrk can reach: the zone is consulted on every request, never limits.
  limit_req_zone $binary_remote_addr zone=perip:10m rate=10000000r/s;
  {NGINX_KEEPALIVE}
  upstream backend {{
    server 127.0.0.1:{upstream_port};
    keepalive 64;
    keepalive_requests 10000000;
  }}"""
    return start_nginx(sandbox, """    location / {
      limit_req zone=perip burst=10000000 nodelay;
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
    }""", name="nginx-proxy", http_body=http, listen_options="backlog=4096",
                       workers=workers, master=True, events=NGINX_EVENTS)


def haproxy_conf(port, upstream_port, workers):
    return f"""global
  nbthread {workers}
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend fe
  bind 127.0.0.1:{port}
  option forwardfor
  default_backend be

backend be
  http-reuse always
  server up 127.0.0.1:{upstream_port}
"""


# ---------------------------------------------------------------------------- wrk


def wrk_argv(args, lua, url, duration):
    return ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s",
            "--latency", "-s", lua, url]


def run_wrk(args, lua, url, duration, tmp, label):
    argv = wrk_argv(args, lua, url, duration)
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=duration + 60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CaseError(f"wrk failed for {label}: {e}") from e
    text = r.stdout.decode("utf-8", "replace")
    with open(os.path.join(tmp, f"wrk-{label}.txt"), "w") as f:
        f.write(text + r.stderr.decode("utf-8", "replace"))
    m = re.search(r"^VIGIL_WRK (\{.*\})$", text, re.M)
    if r.returncode != 0 or not m:
        raise CaseError(f"wrk failed for {label} (status {r.returncode}):\n{text}\n"
                        + r.stderr.decode("utf-8", "replace"))
    res = json.loads(m.group(1))
    # wrk's own text, as a cross-check of the Lua figures.
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    res["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    res["rps"] = res["requests"] * 1e6 / res["duration_us"] if res["duration_us"] else 0.0
    res["errors"] = (res["connect_errors"] + res["read_errors"] + res["write_errors"]
                     + res["timeouts"] + max(res["status_errors"], res["non_2xx_3xx"]))
    res["wrk_output"] = "\n".join(l for l in text.splitlines()
                                  if not l.startswith("VIGIL_WRK"))
    return res


# ---------------------------------------------------------------------------- results


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def sink_stats(sandbox):
    posts = ok = bytes_in = 0
    try:
        with open(sink_log(sandbox)) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and parts[0] == "POST":
                    posts += 1
                    ok += parts[2] == "200"
                    # The body is discarded unread by `return`, so $request_length may miss
                    # it; the declared Content-Length is the size of the export.
                    clen = parts[4] if len(parts) >= 5 else ""
                    bytes_in += int(clen) if clen.isdigit() else 0
    except OSError:
        pass
    return {"posts": posts, "posts_200": ok, "request_bytes": bytes_in}


def metric_sums(text, names):
    """Sums of the samples of each metric in names, by label set 'signal'/'reason'/'exporter'/
    'store'/'decision'."""
    out = {}
    for name in names:
        for labels, value in metric_samples(text, name):
            sub = ",".join(f"{k}={labels[k]}" for k in ("signal", "reason", "exporter", "store",
                                                        "decision")
                           if k in labels)
            key = name + ("{" + sub + "}" if sub else "")
            out[key] = out.get(key, 0.0) + value
    return out


# ---------------------------------------------------------------------------- cases


# Long-lived processes of the run (the upstream, the OTLP receiver): name -> pid, so each case
# can tell their CPU apart from the proxy's and from whatever else the machine is doing.
BACKGROUND = {}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid):
    """(user, system) CPU seconds of a live process tree (threads included)."""
    user = system = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return user / CLK_TCK, system / CLK_TCK


def tree_threads(pid):
    """Per thread name across a live process tree: [CPU seconds, involuntary context
    switches]. The name tells a proxy's request threads from its background ones (the
    gateway's `vigil-spans` and `vigil-log`)."""
    out = {}
    for p in proc_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
                fields = rest.split()
                cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
                switches = 0
                with open(f"/proc/{p}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith("nonvoluntary_ctxt_switches:"):
                            switches = int(line.split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the thread ended meanwhile
            entry = out.setdefault(head.split("(", 1)[1], [0.0, 0])
            entry[0] += cpu
            entry[1] += switches
    return out


def machine_busy_s():
    """(busy, total, irq, steal) CPU seconds of the whole machine since boot, from
    /proc/stat. irq (hard + soft interrupts) is mostly the loopback TCP traffic of this
    benchmark, which the kernel charges to no process; steal is time the hypervisor gave
    this machine's virtual CPUs to someone else."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    idle = v[3] + v[4]
    return ((sum(v) - idle - v[7]) / CLK_TCK, sum(v) / CLK_TCK, (v[5] + v[6]) / CLK_TCK,
            v[7] / CLK_TCK)


class CpuMeter:
    """CPU used during the measured run by the proxy, the upstream, the receiver, wrk and
    everything else on the machine. CPU per request stays meaningful when the machine is
    shared; 'other' shows how much the run was disturbed."""

    def __init__(self, proxy_pid):
        self.pids = dict(BACKGROUND)
        if proxy_pid is not None:
            self.pids["proxy"] = proxy_pid

    def snapshot(self):
        proxy = self.pids.get("proxy")
        return ({k: tree_cpu_s(p) for k, p in self.pids.items()},
                resource.getrusage(resource.RUSAGE_CHILDREN),
                resource.getrusage(resource.RUSAGE_SELF), machine_busy_s(),
                tree_threads(proxy) if proxy is not None else {})

    @staticmethod
    def diff(before, after, requests, seconds):
        (t0, c0, s0, m0, h0), (t1, c1, s1, m1, h1) = before, after
        out = {f"cpu_{k}_s": round(sum(t1[k]) - sum(t0[k]), 3) for k in t0}
        # wrk is the only child reaped during the measured run.
        out["cpu_wrk_s"] = round((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime), 3)
        own = (s1.ru_utime + s1.ru_stime) - (s0.ru_utime + s0.ru_stime)
        busy, total, irq, steal = (m1[i] - m0[i] for i in range(4))
        ours = sum(v for k, v in out.items()) + own
        out["cpu_irq_s"] = round(irq, 3)
        out["cpu_steal_s"] = round(steal, 3)
        out["cpu_other_s"] = round(max(0.0, busy - ours - irq), 3)
        out["cpu_machine_busy_pct"] = round(100.0 * busy / total, 1) if total else None
        if "cpu_proxy_s" in out and requests:
            out["proxy_cpu_us_per_req"] = round(out["cpu_proxy_s"] * 1e6 / requests, 2)
            out["proxy_user_us_per_req"] = round(
                (t1["proxy"][0] - t0["proxy"][0]) * 1e6 / requests, 2)
        if requests and seconds > 0:
            # Threads present at both ends (a proxy starts none during the run).
            out["proxy_threads"] = {
                name: {"cpu_us_per_req": round((h1[name][0] - h0[name][0]) * 1e6 / requests, 2),
                       "involuntary_switches_per_s": round((h1[name][1] - h0[name][1]) / seconds)}
                for name in sorted(h1) if name in h0}
        return out


def measure(args, tmp, lua, label, url, proc, measure_rss):
    # Warm-up: connections, caches, lazily built paths; not counted.
    if args.warmup > 0:
        run_wrk(args, lua, url, args.warmup, tmp, f"{label}-warmup")
    sampler = RssSampler(proc.pid) if (proc is not None and measure_rss) else None
    meter = CpuMeter(proc.pid if proc is not None else None)
    if sampler:
        sampler.start()
    before = meter.snapshot()
    try:
        res = run_wrk(args, lua, url, args.duration, tmp, label)
        after = meter.snapshot()
    finally:
        extra = sampler.finish() if sampler else {}
    res.update(extra)
    res.update(CpuMeter.diff(before, after, res["requests"], res["duration_us"] / 1e6))
    if proc is not None:
        if proc.proc.poll() is not None:
            raise CaseError(f"{label}: the proxy exited with status {proc.proc.returncode} "
                            "during the run\n" + failure_output(proc))
        hwm = sum(proc_status(p, "VmHWM") or 0 for p in proc_tree(proc.pid))
        if hwm:
            res["vmhwm_kib"] = hwm
    return res


def decisions_by_store(metrics):
    """vigil_ratelimit_decisions_total summed by store, from metric_sums' output."""
    out = {}
    for key, value in metrics.items():
        m = re.match(r"vigil_ratelimit_decisions_total\{.*store=(\w+)", key)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def check_store(case, metrics):
    """CaseError unless the case's store made its decisions: some, and all but 1 %."""
    want = LIMIT_STORE[case]
    by_store = decisions_by_store(metrics)
    total = sum(by_store.values())
    mine = by_store.get(want, 0.0)
    if mine <= 0 or mine < 0.99 * total:
        raise CaseError(f"({case}) expected the rate-limit decisions to be made by store "
                        f"\"{want}\", the gateway counted {by_store or 'none'}")


def run_case(case, args, sandbox, lua, up_port, sink_port, redis_url=None):
    label = {"a": "upstream", "b": "nginx-proxy", "c": "haproxy", "d": "vigil-full",
             "e": "vigil-off", "f": "vigil-limit", "g": "vigil-redis", "h": "vigil-sentry"}[case]
    tmp = sandbox.dir
    if case == "a":
        url = f"http://127.0.0.1:{up_port}/"
        res = measure(args, tmp, lua, label, url, None, False)
        res["url"] = url
        return res

    info = {}
    # The case's own log files and its share of the receiver's (all kept across rounds).
    gateway_log = tmp / "gateway.log"
    for path in (nginx_proxy_log(sandbox), gateway_log):
        path.unlink(missing_ok=True)
    sink_before = sink_stats(sandbox)
    if case == "b":
        proxy = start_or_fail(sandbox, label,
                              lambda: start_nginx_proxy(sandbox, up_port, args.workers))
        p, url = proxy.proc, proxy.url + "/"
    elif case == "c":
        port = free_port()
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(haproxy_conf(port, up_port, args.workers))
        p = start_or_fail(sandbox, label,
                          lambda: sandbox.start(["haproxy", "-db", "-f", str(cfg)], label))
        url = f"http://127.0.0.1:{port}/"
    else:
        routes = [{"prefix": "/", "upstream": f"http://127.0.0.1:{up_port}", "timeout_ms": 5000}]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTEL_", "VIGIL_", "SENTRY_"))}
        env.update({"VIGIL_BIND": "127.0.0.1", "VIGIL_WORKERS": str(args.workers),
                    "OTEL_SERVICE_NAME": "gateway"})
        if case in FULL_TELEMETRY_CASES:
            env.update({"VIGIL_ACCESS_LOG": "true", "VIGIL_LOG_FILE": str(gateway_log),
                        "OTEL_TRACES_SAMPLER": "always_on",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"})
        else:
            env.update({"VIGIL_ACCESS_LOG": "false", "OTEL_SDK_DISABLED": "true"})
        if case == "g":
            env["VIGIL_REDIS_URL"] = redis_url
        if case == "h":
            env["SENTRY_DSN"] = f"http://bench@127.0.0.1:{sink_port}/1"
            env["VIGIL_SENTRY_OUTBOX"] = str(tmp / "crashes")
        limits = NEVER_LIMITS if case in LIMIT_STORE else None
        gateway = start_or_fail(sandbox, label, lambda: start_gateway(
            sandbox, routes, env, label, inherit_env=False, program=args.gateway,
            rate_limits=limits))
        p, url, admin = gateway.proc, gateway.url + "/", gateway.admin
        info["env"] = {k: v for k, v in env.items() if k.startswith(("OTEL_", "VIGIL_", "SENTRY_"))}
    wait_ok(p, label, url)

    try:
        res = measure(args, tmp, lua, label, url, p, True)
        if case in GATEWAY_CASES:
            try:
                status, _, body = http_get(admin + "/metrics", timeout=5.0)
            except OSError as e:  # urllib's URLError included
                status, body = None, str(e)
            if status == 200:
                info["metrics"] = metric_sums(body.decode("utf-8", "replace"), {
                    "vigil_telemetry_exported_total", "vigil_telemetry_dropped_total",
                    "http_server_request_duration_seconds_count",
                    "http_client_request_duration_seconds_count",
                    "vigil_ratelimit_decisions_total", "vigil_ratelimit_store_errors_total"})
            else:
                info["metrics_error"] = f"GET /metrics -> {status} {body!r:.200}"
            if case in LIMIT_STORE:
                check_store(case, info.get("metrics", {}))
    finally:
        rc = p.stop(timeout=15.0)
    info["exit_status"] = rc
    if case in GATEWAY_CASES and rc != 0:
        info["problem"] = (f"vigil-gateway exited with status {rc} on SIGTERM\n"
                           + failure_output(p))
    if case == "b":
        info["access_log_lines"] = count_lines(nginx_proxy_log(sandbox))
    if case in FULL_TELEMETRY_CASES:
        # Counted after the gateway stopped: its last batch is flushed on SIGTERM.
        info["access_log_lines"] = count_lines(gateway_log)
        after = sink_stats(sandbox)
        info["otlp_sink"] = {k: after[k] - sink_before[k] for k in after}
    res.update(info)
    res["url"] = url
    return res


# ---------------------------------------------------------------------------- report


def fmt_ms(us):
    return f"{us / 1000:.2f} ms"


def median(values):
    """The middle value (the lower of the two middle ones for an even count)."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def representative(rounds, order):
    """Each case's round with the median req/s: a row that was really measured."""
    out = {}
    for c in order:
        runs = [r[c] for r in rounds if c in r]
        if runs:
            mid = median([r["rps"] for r in runs])
            out[c] = next(r for r in runs if r["rps"] == mid)
    return out


def ratio_rounds(rounds, x, y, key="rps"):
    """x/y of `key` in every round that measured both cases."""
    return [r[x][key] / r[y][key] for r in rounds if x in r and y in r and r[y][key]]


def print_table(results, rounds, order):
    hdr = ["case", "req/s", "p50", "p99", "max", "errors", "vs (b)", "vs (c)", "vs (d)",
           "proxy CPU/req", "of it user", "other CPU", "steal"]
    rows = []
    def vs(c, base):
        ratios = ratio_rounds(rounds, c, base)
        return f"{median(ratios):.2f}x" if ratios else "-"
    for c in order:
        r = results.get(c)
        if r is None:
            continue
        rows.append([f"({c}) {CASE_NAMES[c]}", f"{r['rps']:,.0f}", fmt_ms(r["p50_us"]),
                     fmt_ms(r["p99_us"]), fmt_ms(r["max_us"]), str(r["errors"]),
                     vs(c, "b"), vs(c, "c"), vs(c, "d"),
                     f"{r['proxy_cpu_us_per_req']:.1f} µs"
                     if "proxy_cpu_us_per_req" in r else "-",
                     f"{r['proxy_user_us_per_req']:.1f} µs"
                     if "proxy_user_us_per_req" in r else "-",
                     f"{r['cpu_other_s'] / (r['duration_us'] / 1e6):.2f} cores"
                     if r.get("duration_us") else "-",
                     f"{r['cpu_steal_s'] / (r['duration_us'] / 1e6):.2f} cores"
                     if r.get("duration_us") else "-"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    def line(cells):
        return "| " + " | ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
            for i, c in enumerate(cells)) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))
    print("proxy CPU/req: the proxy's user+system CPU per request (less sensitive to a shared "
          "machine than req/s), and the user-space part of it;\nother CPU: cores busy with "
          "processes outside this benchmark during the measured run; steal: virtual CPU time "
          "the hypervisor gave to other guests (both noise).")
    if len(rounds) > 1:
        print(f"Each row is the case's median round of {len(rounds)}; vs (b), (c) and (d) are "
              "medians of the ratios within each round.")
        print()
        print("Rounds (req/s, proxy CPU/req):")
        for c in order:
            runs = [r[c] for r in rounds if c in r]
            if runs:
                print(f"  ({c}) " + "  ".join(
                    f"{r['rps']:,.0f} ({r['proxy_cpu_us_per_req']:.1f} µs)"
                    if "proxy_cpu_us_per_req" in r else f"{r['rps']:,.0f}" for r in runs))


def target_checks(results, rounds, rss_limit_mib):
    """The issue's targets. Ratios are medians over the rounds of the ratio within each
    round; `results` holds each case's median round. RSS is checked on the round with the
    highest peak, errors are summed over the rounds."""
    checks = []
    def add(name, ok, detail):
        checks.append({"target": name, "met": bool(ok), "detail": detail})
    def median_ratio(x, y, key="rps"):
        """The median of x/y over the rounds, and the rounds' ratios as text."""
        ratios = ratio_rounds(rounds, x, y, key)
        text = "" if len(ratios) < 2 else " (rounds: " + ", ".join(f"{v:.2f}" for v in ratios) + ")"
        return median(ratios), text
    def rps_at_least(x, y, name, least, as_times=False, digits=2):
        """The target that x's req/s be at least `least` times y's (when both ran)."""
        rx, ry = results.get(x), results.get(y)
        if not (rx and ry):
            return
        ratio, text = median_ratio(x, y)
        between = "vs" if as_times else "/"
        add(name, ratio >= least, f"{rx['rps']:,.0f} {between} {ry['rps']:,.0f}: "
            f"{ratio:.{digits}f}{'x' if as_times else ''}{text}")
    c, d = results.get("c"), results.get("d")
    rps_at_least("d", "b", "(d)/(b) req/s >= 1.5", 1.5)
    rps_at_least("d", "c", "(d) req/s >= (c) req/s", 1.0, as_times=True)
    if d and c:
        ratio, text = median_ratio("d", "c", "p99_us")
        add("(d) p99 <= (c) p99", ratio <= 1.0,
            f"{fmt_ms(d['p99_us'])} vs {fmt_ms(c['p99_us'])}: {ratio:.2f}x{text}")
    rps_at_least("d", "e", "(d)/(e) req/s >= 0.95", 0.95, digits=3)
    rps_at_least("f", "d", "(f)/(d) req/s >= 0.97 (a rate limit in memory)", 0.97, digits=3)
    rps_at_least("g", "d", "(g)/(d) req/s >= 0.8 (a rate limit through Redis)", 0.8, digits=3)
    rps_at_least("h", "d", "(h)/(d) req/s >= 0.97 (error reports on, no errors)", 0.97,
                 digits=3)
    rps_at_least("f", "b", "(f) req/s >= (b) req/s (nginx with limit_req)", 1.0, as_times=True)
    if d and "vmhwm_kib" in d:
        worst = max((r["d"] for r in rounds if "d" in r), key=lambda r: r.get("vmhwm_kib", 0))
        hwm = worst["vmhwm_kib"] / 1024
        load = worst.get("rss_load_max_kib", 0) / 1024
        add(f"gateway peak RSS (d) <= {rss_limit_mib} MiB", hwm <= rss_limit_mib,
            f"VmHWM {hwm:.1f} MiB, RSS under load max {load:.1f} MiB / median "
            f"{worst.get('rss_load_median_kib', 0) / 1024:.1f} MiB")
    for k in GATEWAY_CASES:
        errors = sum(r[k]["errors"] for r in rounds if k in r)
        if any(k in r for r in rounds):
            add(f"({k}) every response 200", errors == 0, f"{errors} errors")
    return checks


def machine_info():
    info = {"nproc": os.cpu_count()}
    try:
        info["loadavg_before"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    for prog, argv in (("nginx", ["nginx", "-v"]), ("haproxy", ["haproxy", "-v"]),
                       ("wrk", ["wrk", "-v"])):
        try:
            r = subprocess.run(argv, capture_output=True, timeout=5)
            out = (r.stdout + r.stderr).decode("utf-8", "replace").strip().splitlines()
            info[prog] = out[0] if out else ""
        except (OSError, subprocess.TimeoutExpired):
            info[prog] = None
    return info


# ---------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="vigil-gateway vs nginx and HAProxy under wrk (see the module docstring)")
    ap.add_argument("--build", default="build/release",
                    help="build directory holding services/gateway/vigil-gateway")
    ap.add_argument("--gateway", help="gateway binary (default: <build>/services/gateway/"
                    "vigil-gateway)")
    ap.add_argument("--out", default="build/bench/gateway", help="directory for gateway.json")
    ap.add_argument("--duration", type=int, default=10, help="seconds measured per case")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of uncounted warm-up")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c")
    ap.add_argument("--threads", type=int, default=1, help="wrk -t")
    ap.add_argument("--workers", type=int, default=1,
                    help="workers of every proxy: nginx worker_processes, HAProxy nbthread, "
                    "VIGIL_WORKERS (the upstream always has 1)")
    ap.add_argument("--cases", default="".join(ALL_CASES),
                    help="which cases to run, e.g. abc (default abcdefgh; f and g are "
                    "compared with d and b, g needs redis-server)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times the cases run in turn; ratios are medians over the rounds")
    ap.add_argument("--rss-limit-mib", type=float, default=64.0)
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (configs, logs, wrk output)")
    a = ap.parse_args(argv)
    cases = [c for c in ALL_CASES if c in a.cases]
    if not cases or any(c not in ALL_CASES for c in a.cases):
        ap.error(f"--cases takes letters from {''.join(ALL_CASES)}")
    if (a.duration < 1 or a.warmup < 0 or a.connections < 1 or a.threads < 1 or a.workers < 1
            or a.rounds < 1):
        ap.error("--duration, --connections, --threads, --workers and --rounds must be >= 1")
    if a.connections < a.threads:
        ap.error("--connections must be >= --threads")
    a.case_list = cases
    a.gateway = os.path.abspath(a.gateway or os.path.join(a.build, "services", "gateway",
                                                          "vigil-gateway"))
    return a


def main(argv):
    args = parse_args(argv)
    needed = ["wrk", "nginx", "haproxy"] + (["redis-server"] if "g" in args.case_list else [])
    missing = [p for p in needed if shutil.which(p) is None]
    if missing:
        print(f"gateway bench: missing programs: {' '.join(missing)} "
              f"(Debian packages: {' '.join(missing)})", file=sys.stderr)
        return 1
    needs_gateway = any(c in GATEWAY_CASES for c in args.case_list)
    if needs_gateway and not os.access(args.gateway, os.X_OK):
        print(f"gateway bench: {args.gateway} is not built (build the vigil-gateway target, "
              "or pass --cases abc)", file=sys.stderr)
        return 1

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    # Every child in its own session: a Ctrl-C reaches this script only, which then stops
    # them in order instead of having them race it.
    sandbox = Sandbox(prefix="vigil-gw-bench-", keep=args.keep, new_sessions=True)
    rounds, failures = [], {}
    lua = str(sandbox.dir / "report.lua")
    with open(lua, "w") as f:
        f.write(WRK_REPORT_LUA)
    started = time.time()
    machine = machine_info()
    rc = 0
    try:
        up = start_or_fail(sandbox, "upstream", lambda: start_upstream(sandbox))
        wait_ok(up.proc, "upstream", up.url + "/")
        BACKGROUND["upstream"] = up.pid
        sink_port = redis_url = None
        if any(c in FULL_TELEMETRY_CASES for c in args.case_list):
            sink = start_or_fail(sandbox, "sink", lambda: start_sink(sandbox))
            BACKGROUND["sink"] = sink.pid
            sink_port = sink.port
        if "g" in args.case_list:
            # One server for the run, its CPU counted apart like the upstream's.
            redis = start_or_fail(sandbox, "redis", lambda: Redis(sandbox))
            BACKGROUND["redis"] = redis.proc.pid
            redis_url = redis.url
        for n in range(args.rounds):
            rounds.append({})
            for c in args.case_list:
                if c in failures:
                    continue
                print(f"==> round {n + 1}/{args.rounds} ({c}) {CASE_NAMES[c]}: "
                      f"{args.warmup}s warm-up + {args.duration}s", file=sys.stderr, flush=True)
                try:
                    rounds[-1][c] = run_case(c, args, sandbox, lua, up.port, sink_port,
                                             redis_url)
                except CaseError as e:
                    failures[c] = str(e)
                    print(f"    case ({c}) could not run: {e}", file=sys.stderr, flush=True)
                if not up.alive():
                    raise CaseError(f"the upstream nginx exited ({up.proc.proc.returncode})\n"
                                    + failure_output(up.proc))
    except CaseError as e:
        failures["setup"] = str(e)
        print(f"gateway bench: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("gateway bench: interrupted, stopping", file=sys.stderr)
        rc = 130
    finally:
        sandbox.close()
    if rc:
        return rc

    results = representative(rounds, args.case_list)
    example = " ".join(shlex.quote(x) for x in
                       wrk_argv(args, "report.lua", "http://127.0.0.1:PORT/", args.duration))
    print()
    print(f"Gateway benchmark: {args.connections} connections, {args.threads} wrk thread(s), "
          f"{args.duration}s per case after {args.warmup}s warm-up, proxy workers "
          f"{args.workers}, {machine['nproc']} cores shared by wrk, upstream and proxy, "
          f"{len(rounds)} round(s)")
    print()
    print_table(results, rounds, args.case_list)
    print()
    for c in FULL_TELEMETRY_CASES:
        r = results.get(c)
        if not r:
            continue
        sink = r.get("otlp_sink", {})
        print(f"({c}) telemetry: access log {r.get('access_log_lines')} lines, OTLP receiver "
              f"got {sink.get('posts', 0)} POSTs ({sink.get('posts_200', 0)} answered 200, "
              f"{sink.get('request_bytes', 0) / MIB:.1f} MiB)")
        if r.get("metrics"):
            print("    gateway metrics after the run: " + ", ".join(
                f"{k}={v:g}" for k, v in sorted(r["metrics"].items())))
    for c in args.case_list:
        threads = results.get(c, {}).get("proxy_threads")
        if threads:
            print(f"({c}) proxy threads, CPU per request (involuntary context switches/s): " + ", ".join(
                f"{name} {v['cpu_us_per_req']:.1f} µs ({v['involuntary_switches_per_s']:,})"
                for name, v in threads.items()))
    g = results.get("g")
    if g and g.get("requests") and "cpu_redis_s" in g:
        print(f"(g) redis-server CPU per request: {g['cpu_redis_s'] * 1e6 / g['requests']:.1f} µs "
              f"(the gateway's: {g.get('proxy_cpu_us_per_req', 0):.1f} µs)")
    busy = [f"({c}) {results[c]['cpu_machine_busy_pct']:.1f} %" for c in args.case_list
            if results.get(c, {}).get("cpu_machine_busy_pct") is not None]
    if busy:
        print("Machine busy during each case's run (both cores): " + ", ".join(busy))
    for c in GATEWAY_CASES:
        r = results.get(c)
        if r and "vmhwm_kib" in r:
            print(f"({c}) gateway RSS: peak (VmHWM) {r['vmhwm_kib'] / 1024:.1f} MiB, under load "
                  f"max {r.get('rss_load_max_kib', 0) / 1024:.1f} MiB")
        if r and r.get("problem"):
            print(f"({c}) problem: {r['problem']}")
    for c, r in ((c, r) for rnd in rounds for c, r in rnd.items()):
        if r["errors"]:
            print(f"({c}) errors: non-2xx/3xx {max(r['status_errors'], r['non_2xx_3xx'])}, "
                  f"connect {r['connect_errors']}, read {r['read_errors']}, "
                  f"write {r['write_errors']}, timeout {r['timeouts']}")
    checks = target_checks(results, rounds, args.rss_limit_mib)
    if checks:
        print()
        print("Targets:")
        for ch in checks:
            print(f"  [{'met' if ch['met'] else 'NOT MET'}] {ch['target']}: {ch['detail']}")
    print()
    print(f"Command per case: {example}")
    print(f"Run: /usr/bin/python3 {' '.join(shlex.quote(a) for a in sys.argv)}")
    for c, msg in failures.items():
        print(f"\nCASE {c} FAILED: {msg}")

    os.makedirs(args.out, exist_ok=True)
    out_file = os.path.join(args.out, "gateway.json")
    with open(out_file, "w") as f:
        json.dump({
            "started_unix": started,
            "settings": {"connections": args.connections, "threads": args.threads,
                         "duration_s": args.duration, "warmup_s": args.warmup,
                         "workers": args.workers, "rounds": args.rounds,
                         "gateway": args.gateway,
                         "gateway_mtime": (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
                             os.path.getmtime(args.gateway)))
                             if os.path.exists(args.gateway) else None),
                         "wrk_command": example},
            "machine": machine,
            # Each case's median round; every round's figures are in "rounds".
            "cases": {c: dict(r, name=CASE_NAMES[c]) for c, r in results.items()},
            "rounds": rounds,
            "targets": checks,
            "failures": failures,
        }, f, indent=2)
    print(f"JSON: {out_file}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Service benchmark: the platform's auth endpoints and catalog reads, through the gateway.

Starts the whole platform (gateway, auth, catalog, orders on SQLite, full telemetry: JSON
access logs, metrics, every request traced to a file) exactly as the integration tests do,
then measures, one after another:

  login      open loop: a constant 20 logins/s for --login-seconds (each login is one
             argon2id verification, which is the point of a password hash); p50/p95/p99
  hash       the time of one argon2id hash/verification, from auth's own histogram
  refresh    closed loop, wrk -c64: every request spends a refresh token and gets a new one
  me         closed loop, wrk -c64: GET /api/auth/me with a bearer token (the gateway
             verifies the JWT, auth reads the user)
  jwks       closed loop, wrk -c64: GET /api/auth/.well-known/jwks.json
  catalog    closed loop, wrk -c64: GET /api/catalog/items/{id} over 100 items
  rss        each service's resident memory, idle after start and idle after the load

Targets (issue: services): every auth endpoint p95 < 100 ms; catalog reads p95 < 5 ms;
idle RSS <= 20 MiB per service. Two cores are shared by wrk and four services: the figures
are for this machine class, one run.

Usage: /usr/bin/python3 bench/services/run.py --build build/release --out build/bench/services
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from harness import Platform, Sandbox, http_get, metric_samples, proc_status  # noqa: E402

MIB = 1024 * 1024

# wrk reports p95 only through Lua. `init` takes the bodies to send from a file (one per
# line) when WRK_BODIES is set: each request spends one refresh token and its response
# gives the next, so the closed loop never reuses a token.
WRK_LUA = r"""
local queue, head, tail = {}, 1, 0
local function push(v) tail = tail + 1; queue[tail] = v end
local function pop() if head > tail then return nil end local v = queue[head]; queue[head] = nil; head = head + 1; return v end
local bodies = os.getenv("WRK_BODIES")
if bodies then for line in io.lines(bodies) do push(line) end end
wrk.headers["Content-Type"] = "application/json"
request = function()
  if not bodies then return wrk.format(nil) end
  local token = pop()
  if token == nil then token = "exhausted" end
  return wrk.format("POST", nil, nil, '{"refresh_token":"' .. token .. '"}')
end
if bodies then
  response = function(status, headers, body)
    local t = body:match('"refresh_token":"([^"]+)"')
    if t then push(t) end
  end
end
done = function(summary, latency, requests)
  io.write(string.format('VIGIL_WRK {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def percentile(values, p):
    values = sorted(values)
    if not values:
        return 0.0
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def rss_mib(pid):
    kib = proc_status(pid, "VmRSS")
    return kib / 1024.0 if kib is not None else float("nan")


def pss_mib(pid):
    """Proportional set size: shared library pages divided among the processes sharing them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def wrk(url, tmp, duration, connections, headers=(), bodies=None):
    lua = Path(tmp) / "bench.lua"
    lua.write_text(WRK_LUA)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua)]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    env = dict(os.environ)
    if bodies:
        env["WRK_BODIES"] = str(bodies)
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60)
    for line in out.stdout.splitlines():
        if line.startswith("VIGIL_WRK "):
            r = json.loads(line[len("VIGIL_WRK "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["command"] = " ".join(argv)
            return r
    raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")


def login_open_loop(p, email, password, rate, seconds):
    """Starts one login every 1/rate s, each on its own thread and connection (open loop:
    a slow answer does not delay the next start). Returns latencies (ms) and failures."""
    latencies, failures, threads = [], [], []
    lock = threading.Lock()

    def one():
        start = time.monotonic()
        status, _, _ = p.call("POST", "/auth/login", {"email": email, "password": password})
        elapsed = (time.monotonic() - start) * 1000
        with lock:
            (latencies if status == 200 else failures).append(elapsed if status == 200 else status)

    begin = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = begin + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=one)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return latencies, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "build" / "bench" / "services"))
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk case")
    ap.add_argument("--login-seconds", type=int, default=15)
    ap.add_argument("--login-rate", type=float, default=20.0)
    args = ap.parse_args()
    os.environ["VIGIL_BUILD_DIR"] = str(Path(args.build).resolve())

    results = {}
    sandbox = Sandbox()
    try:
        # Auth's own policies, with quotas the benchmark's one account and one address
        # never reach: each login still pays for both decisions.
        limits = sandbox.dir / "limits.json"
        limits.write_text(json.dumps({"policies": [
            {"name": "login-per-account", "key": ["user"], "quota": 10 ** 8, "window_s": 60},
            {"name": "login-per-address", "key": ["client_address"], "quota": 10 ** 8,
             "window_s": 60, "match": [{"prefix": "/login", "methods": ["POST"]}]}]}))
        p = Platform(sandbox, {"VIGIL_RATELIMIT_CONFIG": str(limits)})
        time.sleep(2)  # let start-up allocations settle before reading idle memory
        results["rss_idle_start_mib"] = {n: rss_mib(s.pid) for n, s in p.services.items()}

        email, password = "bench@example.com", "bench password 1"
        p.call("POST", "/auth/register", {"email": email, "password": password})
        print(f"login: open loop, {args.login_rate:g}/s for {args.login_seconds} s", flush=True)
        lat, failed = login_open_loop(p, email, password, args.login_rate, args.login_seconds)
        results["login"] = {"rate": args.login_rate, "count": len(lat), "failed": len(failed),
                            "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
                            "p99_ms": percentile(lat, 99), "max_ms": max(lat) if lat else 0}
        _, _, body = http_get(p.services["auth"].admin + "/metrics")
        text = body.decode()
        total = sum(v for _, v in metric_samples(text, "vigil_auth_password_hash_seconds_sum"))
        count = sum(v for _, v in metric_samples(text, "vigil_auth_password_hash_seconds_count"))
        results["hash_ms"] = 1000 * total / count if count else float("nan")

        tmp = tempfile.mkdtemp(prefix="vigil-bench-", dir=sandbox.dir)
        seeds = Path(tmp) / "refresh-tokens.txt"
        tokens = [p.login(email, password) for _ in range(96)]
        seeds.write_text("\n".join(t["refresh_token"] for t in tokens) + "\n")
        access = tokens[-1]["access_token"]
        api = p.api
        print("refresh, me, jwks: wrk -c64", flush=True)
        results["refresh"] = wrk(api + "/auth/refresh", tmp, args.duration, 64, bodies=seeds)
        results["me"] = wrk(api + "/auth/me", tmp, args.duration, 64,
                            headers=[f"Authorization: Bearer {access}"])
        results["jwks"] = wrk(api + "/auth/.well-known/jwks.json", tmp, args.duration, 64)

        ids = []
        for i in range(100):
            status, _, item = p.call("POST", "/catalog/items", {
                "name": f"Bench item {i}", "category": "bench", "price_cents": 100 + i,
                "stock": 1000}, access)
            if status == 201:
                ids.append(item["id"])
        print("catalog reads: wrk -c64 through the gateway", flush=True)
        results["catalog"] = wrk(api + f"/catalog/items/{ids[0]}", tmp, args.duration, 64)
        time.sleep(12)  # idle: past the services' periodic return of freed memory (10 s)
        results["rss_idle_after_mib"] = {n: rss_mib(s.pid) for n, s in p.services.items()}
        results["pss_idle_after_mib"] = {n: pss_mib(s.pid) for n, s in p.services.items()}
    finally:
        sandbox.close()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "services.json").write_text(json.dumps(results, indent=2))
    login = results["login"]
    print()
    print(f"{'case':<34}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    print(f"{'login, open loop %g/s' % login['rate']:<34}{login['rate']:>9.0f}{login['p50_ms']:>9.1f}"
          f"{login['p95_ms']:>9.1f}{login['p99_ms']:>9.1f}{login['failed']:>9}")
    for key, label in [("refresh", "refresh, wrk -c64"), ("me", "/me, wrk -c64"),
                       ("jwks", "JWKS, wrk -c64"), ("catalog", "catalog item read, wrk -c64")]:
        r = results[key]
        print(f"{label:<34}{r['rps']:>9.0f}{r['p50_us'] / 1000:>9.2f}{r['p95_us'] / 1000:>9.2f}"
              f"{r['p99_us'] / 1000:>9.2f}{r['non2xx'] + r['socket_errors']:>9}")
    print(f"\nargon2id (m=19 MiB, t=2, p=1): {results['hash_ms']:.1f} ms per hash (mean, auth's histogram)")
    print("idle RSS MiB (after start / after load): " + ", ".join(
        f"{n} {results['rss_idle_start_mib'][n]:.1f}/{results['rss_idle_after_mib'][n]:.1f}"
        for n in results["rss_idle_start_mib"]))
    print("idle PSS MiB after load (shared pages divided among the processes): " + ", ".join(
        f"{n} {v:.1f}" for n, v in results["pss_idle_after_mib"].items()))
    checks = [
        ("every auth endpoint p95 < 100 ms",
         max(login["p95_ms"], *(results[k]["p95_us"] / 1000 for k in ("refresh", "me", "jwks"))) < 100),
        ("catalog reads p95 < 5 ms", results["catalog"]["p95_us"] / 1000 < 5),
        ("idle RSS <= 20 MiB per service",
         max(max(results["rss_idle_start_mib"].values()), max(results["rss_idle_after_mib"].values())) <= 20),
        ("no failed request", login["failed"] == 0 and all(
            results[k]["non2xx"] + results[k]["socket_errors"] == 0 for k in ("refresh", "me", "jwks", "catalog"))),
    ]
    print()
    for name, ok in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {name}")
    print(f"\nwrk command: {results['me']['command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Traffic for a running Vigil platform, so that metrics, traces and dashboards have data.

Each journey is what a user does: register, log in, browse the catalog, look at an item,
order it, list their orders, now and then refresh the session; a few journeys send what
clients get wrong (malformed JSON, a forged token, an unknown route, a missing item) so
that the 4xx panels and alerts have something to show. Journeys start at a constant rate
(open loop), on a bounded pool of threads; a progress line shows counts and latency.

    python3 bench/traffic/traffic.py [--url GATEWAY] --rate 5 [--duration 60]

(--url defaults to where ./vigil up starts the gateway: services/topology.json.)
"""
import argparse
import random
import signal
import string
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
from harness import call_json  # noqa: E402
from harness.topology import gateway_url  # noqa: E402

CATEGORIES = ["home", "garden", "books", "tools", "kitchen"]
WORDS = ["Lamp", "Chair", "Kettle", "Rake", "Novel", "Drill", "Pan", "Shelf", "Vase", "Saw"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_class = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "error": 0}
        self.latencies = []
        self.journeys = 0
        self.dropped = 0

    def record(self, status, seconds):
        key = "error" if status == 0 else f"{status // 100}xx"
        with self.lock:
            self.by_class[key] = self.by_class.get(key, 0) + 1
            self.latencies.append(seconds)

    def line(self):
        with self.lock:
            lat = sorted(self.latencies[-2000:])
            p95 = lat[int(len(lat) * 0.95) - 1] * 1000 if lat else 0.0
            c = self.by_class
            return (f"journeys {self.journeys}  requests {sum(c.values())}  2xx {c['2xx']}  "
                    f"3xx {c['3xx']}  4xx {c['4xx']}  5xx {c['5xx']}  errors {c['error']}  "
                    f"skipped {self.dropped}  p95 {p95:.1f} ms")


class Client:
    def __init__(self, base, stats):
        self.base = base
        self.stats = stats
        self.token = None

    def call(self, method, path, body=None, raw=None, headers=None):
        """(status, parsed JSON or None); status 0 when no answer came."""
        start = time.monotonic()
        status, parsed = 0, None
        try:
            status, _, parsed = call_json(self.base + path, method, body, self.token, headers,
                                          raw)
        except OSError:  # urllib's URLError included
            pass
        self.stats.record(status, time.monotonic() - start)
        return status, parsed


def journey(base, stats, rng):
    c = Client(base, stats)
    email = "".join(rng.choices(string.ascii_lowercase, k=10)) + "@traffic.example"
    password = "pw-" + "".join(rng.choices(string.ascii_letters, k=12))
    c.call("POST", "/api/auth/register", {"email": email, "password": password})
    status, tokens = c.call("POST", "/api/auth/login", {"email": email, "password": password})
    if status != 200 or not tokens:
        return
    c.token = tokens["access_token"]
    status, page = c.call("GET", "/api/catalog/items?limit=20")
    items = (page or {}).get("items", []) if status == 200 else []
    if len(items) < 5 or rng.random() < 0.2:
        status, item = c.call("POST", "/api/catalog/items", {
            "name": f"{rng.choice(WORDS)} {rng.randint(1, 999)}",
            "category": rng.choice(CATEGORIES),
            "price_cents": rng.randint(100, 20000),
            "stock": rng.randint(50, 500)})
        if status == 201 and item:
            items.append(item)
    c.call("GET", "/api/catalog/items?category=" + rng.choice(CATEGORIES))
    if items:
        item = rng.choice(items)
        c.call("GET", "/api/catalog/items/" + item["id"])
        key = "".join(rng.choices(string.ascii_letters, k=16))
        order = {"lines": [{"item_id": item["id"], "quantity": rng.randint(1, 3)}]}
        c.call("POST", "/api/orders", order, headers={"Idempotency-Key": key})
        if rng.random() < 0.2:  # a client retrying after a lost response
            c.call("POST", "/api/orders", order, headers={"Idempotency-Key": key})
    c.call("GET", "/api/orders")
    c.call("GET", "/api/auth/me")
    if rng.random() < 0.3:
        c.call("POST", "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    if rng.random() < 0.15:  # what clients get wrong
        bad = rng.choice(["json", "token", "route", "item", "field"])
        if bad == "json":
            c.call("POST", "/api/catalog/items", raw=b'{"name": ')
        elif bad == "token":
            c.token = tokens["access_token"][:-4] + "AAAA"
            c.call("GET", "/api/orders")
        elif bad == "route":
            c.call("GET", "/api/nowhere")
        elif bad == "item":
            c.call("GET", "/api/catalog/items/" + "0" * 28)
        else:
            c.call("POST", "/api/catalog/items", {"name": "x", "category": "home",
                                                   "price_cents": -5, "stock": 1})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=gateway_url(), help="the gateway's base URL")
    ap.add_argument("--rate", type=float, default=5.0, help="journeys started per second")
    ap.add_argument("--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)")
    ap.add_argument("--concurrency", type=int, default=16, help="journeys in flight at most")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    # `./vigil up` stops its children with SIGTERM: end as Ctrl-C does, with the summary.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.rate <= 0:
        ap.error("--rate must be above 0")
    rng = random.Random(args.seed)
    stats = Stats()
    in_flight = threading.Semaphore(args.concurrency)
    tty = sys.stdout.isatty()
    started = time.monotonic()
    next_start, next_report = started, started + 1

    def run_one(seed):
        try:
            journey(args.url, stats, random.Random(seed))
        finally:
            with stats.lock:
                stats.journeys += 1
            in_flight.release()

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        try:
            while not args.duration or time.monotonic() - started < args.duration:
                now = time.monotonic()
                if now >= next_report:
                    print(("\r" if tty else "") + "traffic: " + stats.line(),
                          end="" if tty else "\n", flush=True)
                    next_report += 1
                if now < next_start:
                    time.sleep(min(next_start, next_report) - now)
                    continue
                next_start += 1.0 / args.rate
                # Open loop: a journey that cannot start now (all slots busy) is skipped
                # and counted, never queued, so a slow platform is not hidden by backlog.
                if in_flight.acquire(blocking=False):
                    pool.submit(run_one, rng.getrandbits(32))
                else:
                    with stats.lock:
                        stats.dropped += 1
        except KeyboardInterrupt:
            pass
    print(("\n" if tty else "") + "traffic done: " + stats.line(), flush=True)


if __name__ == "__main__":
    main()

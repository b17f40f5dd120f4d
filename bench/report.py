#!/usr/bin/env python3
"""Prints the medians of `./vigil bench` runs (build/bench/*.json) as a Markdown table:
benchmark, median wall time, median CPU time and any counters (items/s, drops)."""

import json
import sys
from pathlib import Path


def fmt_time(value, unit):
    ns = value * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns / 1e6:.2f} ms"


def fmt_counter(name, value):
    if name.endswith("per_second"):
        return f"{name.replace('_per_second', '/s')}={value / 1e6:.2f} M"
    return f"{name}={value:g}"


def main(directory):
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        sys.exit(f"no benchmark results in {directory}; run ./vigil bench first")
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
            "iterations", "real_time", "cpu_time", "time_unit", "aggregate_name",
            "aggregate_unit", "family_index", "per_family_instance_index", "error_occurred",
            "error_message"}
    print("| benchmark | median wall | median CPU | counters |")
    print("|---|---|---|---|")
    for f in files:
        data = json.loads(f.read_text())
        for b in data["benchmarks"]:
            if b.get("aggregate_name") != "median":
                continue
            counters = ", ".join(fmt_counter(k, v) for k, v in b.items()
                                 if k not in skip and isinstance(v, (int, float)))
            print(f"| {b['run_name']} | {fmt_time(b['real_time'], b['time_unit'])} | "
                  f"{fmt_time(b['cpu_time'], b['time_unit'])} | {counters} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench")

"""``make tune``: batching off against batching as the service sizes it, under a short load.

    python bench/tune.py --duration 5 --warmup 1

Starts the service twice on free loopback ports, with ``APP_MAX_BATCH_SIZE=1`` (off) and with
``APP_MAX_BATCH_SIZE=auto`` (measured at start-up), and loads each in turn with
``bench/load.py`` at 1, 16 and 64 connections, so that a change of the machine's speed touches
both alike; only one is loaded at a time. Prints the numbers and a recommendation. Every run is
bounded by ``--duration`` plus ``--warmup`` seconds of load; pass ``--env NAME=VALUE`` for other
settings (``--env APP_MODEL_PATH=path/to/model``, say). Needs ``wrk`` or ``hey``, as ``make bench``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
CONNECTIONS = (1, 16, 64)
MODES = {"off": "APP_MAX_BATCH_SIZE=1", "chosen": "APP_MAX_BATCH_SIZE=auto"}
# Differences smaller than this are within what two runs of the same setting differ by.
NOISE = 0.05


def recommend(results: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """What to set, and why, from the runs at the lowest and the highest concurrency."""
    low, high = CONNECTIONS[0], CONNECTIONS[-1]
    chosen = results["chosen", high]["max_batch_size"]
    off_high, on_high = results["off", high], results["chosen", high]
    gain = on_high["requests_per_s"] / off_high["requests_per_s"]
    p99 = on_high["p99_ms"] / off_high["p99_ms"]
    p50 = results["chosen", low]["p50_ms"] / results["off", low]["p50_ms"]
    lines = [
        f"measured at start-up: at most {chosen} rows per model call"
        + (" (batching off for this model)" if chosen == 1 else ""),
        f"at {high} connections, as chosen against off: {gain:.2f}x req/s, p99 {p99:.2f}x;"
        f" at {low} connection: p50 {p50:.2f}x",
    ]
    errors = sum(r["non_2xx"] + r["socket_errors"] for r in results.values())
    if errors:
        lines.append(f"{errors} requests failed (non-2xx or socket errors): see the table")
    if chosen > 1 and gain < 1 - NOISE:
        lines.append("recommendation: APP_MAX_BATCH_SIZE=1: batching cost throughput here")
    elif chosen > 1 and p50 > 1 + NOISE:
        lines.append(
            "recommendation: keep the default (empty), but one caller's p50 rose by more"
            f" than {NOISE * 100:.0f} percent: run again on a quiet machine, or set"
            " APP_MAX_BATCH_SIZE=1 if it stays"
        )
    elif chosen == 1:
        lines.append(
            "recommendation: keep the default (empty): a row costs no less in a batch for this"
            " model, so the service does not batch it"
        )
    else:
        lines.append(
            "recommendation: keep the default (APP_MAX_BATCH_SIZE empty, measured at start-up)"
        )
    return lines


def measure(args: argparse.Namespace) -> dict[tuple[str, int], dict[str, Any]]:
    """Both services up, then each connection count on one and then the other."""
    sys.path.insert(0, str(BENCH))
    load = importlib.import_module("load")  # bench/load.py, beside this file
    seconds = 2 * len(CONNECTIONS) * (args.warmup + args.duration)
    results: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        with ExitStack() as stack:
            served = {}
            for mode, setting in MODES.items():
                options = load.parse_args(
                    ["--duration", str(args.duration), "--warmup", str(args.warmup)]
                    + ["--tool", args.tool, "--env", setting]
                    + [item for extra in args.env for item in ("--env", extra)]
                )
                print(f"starting the service with batching {mode} ...", flush=True)
                served[mode] = (options, stack.enter_context(load.serving(options, seconds)))
            for connections in CONNECTIONS:
                for mode, (options, service) in served.items():
                    print(f"{connections} connections, batching {mode} ...", flush=True)
                    options.concurrency = connections
                    result = load.load(service.server.url, service.headers, options)
                    results[mode, connections] = asdict(result)
    except load.BenchError as exc:
        sys.exit(f"error: {exc}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load before each")
    parser.add_argument("--tool", choices=["auto", "wrk", "hey"], default="auto")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    results = measure(args)
    tool = results["off", CONNECTIONS[0]]["tool"]
    print(f"\nPOST /predict, 1 row per request, {args.duration} s per run with {tool}\n")
    header = f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'rows/call':>9}"
    print(f"  {'':<32} {header}")
    for connections in CONNECTIONS:
        for mode in MODES:
            r = results[mode, connections]
            label = f"{connections} connections, batching {mode}"
            print(
                f"  {label:<32} {r['requests_per_s']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}"
                f" {r['non_2xx'] + r['socket_errors']:7d} {r['max_batch_size']:9d}"
            )
    print()
    for line in recommend(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

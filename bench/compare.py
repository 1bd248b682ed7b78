"""``make bench``: the baked default project against a naive baseline, under the same load.

1. Bakes the default project into build/bench and installs it (uv).
2. iris, 64 connections: the naive app (bench/naive_app.py) and then the baked service, one
   after the other, each pinned to CPU 0 with the load generator on CPU 1, driven by the baked
   project's own bench/load.py (wrk or hey). Ratios: req/s baked/baseline, p99 baseline/baked.
   The baked service runs with its defaults (batching sized at start-up) and with batching off
   (APP_MAX_BATCH_SIZE=1), at 64 connections and at 1; beside them a bare ASGI app on the same
   server (bench/bare_app.py), the HTTP stack's ceiling, and the service with 2 workers.
3. The same service sent named records (objects by feature name) instead of positional rows.
4. A DataFrame pipeline with string categories (bench/frame_model.py), and the ONNX variant's
   demo model: each with its defaults and with batching off, their gains beside the sklearn
   demo's; the pipeline also beside the rate of its own ``predict`` on a one-row DataFrame.
5. Two more kinds of model (bench/kinds_model.py), trained here from data scikit-learn ships or
   makes: a text pipeline (TfidfVectorizer + LogisticRegression) sent one document per request,
   and a Ridge regressor on two targets; each at 64 connections with its defaults, its cost per
   request (the server's core time: 1 / req/s) beside the demo's, and its model's own share.
6. A 32-feature gradient-boosting model (bench/slow_model.py): the rows/s it reaches in-process
   one row at a time, against the baked service at 64 connections with batching as sized and
   off; and the same two at concurrency 1.
7. What watching the model costs: the auth=none project with ``use_opentelemetry``, with traces
   and input-drift counting off (the reference), drift counted, and traces sampled at 1% and at
   100% and exported to an OTLP sink (bench/otlp_sink.py) on the load's CPU. Eight rounds of 5 s
   runs, each setting twice in each place of a round; each cost is the median over the rounds
   of that round's ratio to the reference.

The numbers are only as steady as the machine: on a shared or busy one, compare ratios from
the same run, not absolute figures between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
READY_TIMEOUT_S = 120.0


def run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def pinned(cpus: str) -> list[str]:
    taskset = shutil.which("taskset")
    if taskset is None or len(os.sched_getaffinity(0)) < 2:
        return []
    return [taskset, "-c", cpus]


def bake_and_install(folder: str = "project", **answers: str) -> tuple[Path, Path]:
    """A project (the default one, or with ``answers``), baked fresh, with a virtual
    environment; returns (project, python)."""
    shutil.rmtree(BUILD / folder, ignore_errors=True)
    project = Path(
        cookiecutter(
            str(ROOT), no_input=True, output_dir=str(BUILD / folder), extra_context=answers
        )
    )
    uv = [sys.executable, "-m", "uv"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    run([*uv, "venv", "--quiet", "--python", sys.executable, str(project / ".venv")], env=env)
    python = project / ".venv" / "bin" / "python"
    # Byte code compiled once, as the image's build does and as a first run leaves it behind:
    # start-up is measured as every later start sees it, whatever PYTHONDONTWRITEBYTECODE says.
    install = [*uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    run([*install, "-e", str(project)], env=env)
    run([str(python), "-m", "compileall", "-q", str(project / "src")])
    return project, python


def bench(project: Path, python: Path, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """One run of the project's load script; its JSON result."""
    command = [str(python), "bench/load.py", "--json", "--tool", args.tool]
    command += ["--duration", str(args.duration), "--warmup", str(args.warmup), *extra]
    result: dict[str, Any] = json.loads(run(command, cwd=project).strip().splitlines()[-1])
    return result


# One call of the demo model's predict on one row, as the service makes it (scikit-learn's
# configuration included): the median over many calls, in seconds.
MODEL_TIME = """
import json, statistics, time
import numpy as np, sklearn
from {slug}.model.loader import load_predictor
estimator = load_predictor(None, "iris")._estimator
row = np.array([[5.1, 3.5, 1.4, 0.2]])
times = []
with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
    for _ in range(3000):
        started = time.perf_counter()
        estimator.predict(row)
        times.append(time.perf_counter() - started)
print(json.dumps({{"t_model": statistics.median(times)}}))
"""


def model_time(project: Path, python: Path) -> float:
    script = MODEL_TIME.format(slug=project.name)
    result: float = json.loads(run([*pinned("0"), str(python), "-c", script], cwd=project))[
        "t_model"
    ]
    return result


# Where start-up goes: importing the model's libraries, then the rest of the service. Each in a
# fresh interpreter, the median of three.
IMPORT_TIME = """
import json, sys, time
started = time.perf_counter()
import sklearn.base, skops.io
libraries = time.perf_counter()
import {slug}.main, {slug}.cli
print(json.dumps({{"libraries": libraries - started, "service": time.perf_counter() - libraries}}))
"""


def import_times(project: Path, python: Path) -> dict[str, float]:
    script = IMPORT_TIME.format(slug=project.name)
    runs = [json.loads(run([str(python), "-c", script], cwd=project)) for _ in range(3)]
    return {key: sorted(r[key] for r in runs)[1] for key in ("libraries", "service")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def background(command: list[str], log_name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running while the block runs, its output in build/bench; stopped by PID."""
    log = (BUILD / log_name).open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_until_up(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    """Poll ``url`` until anything answers over HTTP, within READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{name} did not start; see its log in build/bench")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.2)


def naive_baseline(
    project: Path, python: Path, args: argparse.Namespace, app: str = "naive_app.py"
) -> dict[str, Any]:
    """Start a baseline app (bench/naive_app.py, or bench/bare_app.py) on CPU 0, load it like
    the baked service, stop it by PID."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*pinned("0"), str(python), str(ROOT / "bench" / app), "--port", str(port)]
    with background(command, f"{app}.log") as server:
        wait_until_up(server, f"{url}/health/ready", app)
        concurrency = str(args.concurrency)
        return bench(project, python, args, "--url", url, "--features", "4", "-c", concurrency)


# The observability runs: the settings of each, beside those every run shares.
WATCHING: dict[str, list[str]] = {
    "reference": ["OTEL_SDK_DISABLED=true", "APP_MONITOR_MAX_FEATURES=0"],
    "drift": ["OTEL_SDK_DISABLED=true"],
    "traces_1": [
        "OTEL_TRACES_SAMPLER=traceidratio",
        "OTEL_TRACES_SAMPLER_ARG=0.01",
        "APP_MONITOR_MAX_FEATURES=0",
    ],
    "traces_100": ["OTEL_TRACES_SAMPLER=always_on", "APP_MONITOR_MAX_FEATURES=0"],
}
WATCHING_ROUNDS = 8  # twice in each place of a round


def watching(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """The auth=none project with tracing, run in each of WATCHING's settings, round after
    round and in turns, so that a drift of the machine's speed touches every setting alike."""
    project, python = bake_and_install("project-otel", auth="none", use_opentelemetry="true")
    port = free_port()
    sink = [*pinned("1"), sys.executable, str(ROOT / "bench" / "otlp_sink.py"), "--port", str(port)]
    shared = [
        f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{port}",
        "OTEL_SERVICE_NAME=bench",
    ]
    # Many short runs rather than a few long ones: the median of many ratios is what steadies
    # a cost of a few percent on a machine whose speed wanders by more than that.
    quick = argparse.Namespace(**{**vars(args), "duration": 5, "warmup": 2})
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in WATCHING}
    with background(sink, "otlp_sink.log") as receiver:
        wait_until_up(receiver, f"http://127.0.0.1:{port}/", "the OTLP sink")
        modes = list(WATCHING)
        for round_ in range(WATCHING_ROUNDS):
            # Each setting takes each place in a round in turn: none always runs first or last.
            for mode in modes[round_ % len(modes) :] + modes[: round_ % len(modes)]:
                print(f"  round {round_ + 1}: {mode} ...", flush=True)
                env = [arg for setting in [*shared, *WATCHING[mode]] for arg in ("--env", setting)]
                runs[mode].append(bench(project, python, quick, "-c", str(args.concurrency), *env))
    return runs


def cost(runs: dict[str, list[dict[str, Any]]], mode: str) -> float:
    """The share of the reference's req/s that ``mode`` gives up: the median of the rounds."""
    ratios = [
        run["requests_per_s"] / reference["requests_per_s"]
        for run, reference in zip(runs[mode], runs["reference"], strict=True)
    ]
    return 1 - statistics.median(ratios)


# Batching off, as the service ran by default before it sized its batches itself.
OFF = ("--env", "APP_MAX_BATCH_SIZE=1")


def gain(results: dict[str, Any], on: str, off: str) -> float:
    """req/s with batching as sized over req/s with batching off."""
    return float(results[on]["requests_per_s"] / results[off]["requests_per_s"])


def chosen(result: dict[str, Any]) -> str:
    """What the service chose, as GET /model told bench/load.py."""
    size = result.get("max_batch_size", 0)
    return f"{size} rows per call ({result.get('batching_source', '?')})" if size else "not told"


def load_columns(result: dict[str, Any]) -> str:
    """req/s, p50, p99 and errors of one load run, as every table prints them."""
    return (
        f"{result['requests_per_s']:9.1f} {result['p50_ms']:9.2f} "
        f"{result['p99_ms']:9.2f} {result['non_2xx'] + result['socket_errors']:8d}"
    )


def row(label: str, result: dict[str, Any]) -> str:
    probe = f"{result.get('probe_max_ms', 0.0):9.1f}"
    if result.get("probes_failed"):
        probe += f" ({result['probes_failed']} failed)"
    return f"  {label:<40} {load_columns(result)} {probe}"


# bench/kinds_model.py's models, as the table names them.
KINDS = {
    "text": "text (TfidfVectorizer + LogisticRegression), 1 document",
    "ridge2": "Ridge on two targets (diabetes), 1 row",
}


def cost_line(label: str, result: dict[str, Any], t_model: float) -> str:
    """req/s, p50, p99 and what one request costs the server's core, the model's share in it."""
    per_request = 1e6 / result["requests_per_s"]
    return f"  {label:<58} {load_columns(result)} {per_request:9.0f} {t_model * 1e6:9.0f}"


# "ready max": the slowest GET /health/ready, polled every 100 ms during the run.
HEADER = f"  {'':<40} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>8} {'ready max':>9}"


def worker_scaling(one: dict[str, Any], two: dict[str, Any]) -> str:
    """What the two-worker run says once the load generator's share of the cores is counted.

    Both runs measure the server's and the load generator's core seconds (bench/load.py). The
    server's cost per request tells whether a second worker does its share (the same cost:
    no lock or shared state between workers slows them); the load generator's cost per request
    bounds what two workers can serve on a machine whose two cores it shares with them.
    """
    if not (one.get("server_cpu_s") and two.get("server_cpu_s")):
        return "  (no CPU figures: the load script predates them)"
    server_1 = one["server_cpu_s"] / one["requests"]
    server_2 = two["server_cpu_s"] / two["requests"]
    client_2 = two["client_cpu_s"] / two["requests"]
    ceiling = 2 / (server_1 + client_2)  # both cores, the server at one worker's cost
    return (
        f"  server core time per request: 1 worker {server_1 * 1e6:.0f} us,"
        f" 2 workers {server_2 * 1e6:.0f} us ({server_1 / server_2:.2f} of one worker's"
        f" efficiency); the load generator: {client_2 * 1e6:.0f} us per request"
        f" ({two['client_cpu_s'] / two['seconds']:.2f} cores)\n"
        f"  on 2 cores shared with the load generator, 2 workers can serve at most"
        f" {ceiling:.0f} req/s = {ceiling / one['requests_per_s']:.2f}x one worker;"
        f" measured {two['requests_per_s'] / ceiling:.0%} of that"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tool", choices=["auto", "wrk", "hey"], default="auto")
    parser.add_argument("--iris-only", action="store_true", help="skip the 32-feature model")
    parser.add_argument(
        "--no-watching", action="store_true", help="skip what watching the model costs (step 6)"
    )
    args = parser.parse_args()
    BUILD.mkdir(parents=True, exist_ok=True)
    print("baking and installing the default project into build/bench ...", flush=True)
    project, python = bake_and_install()
    results: dict[str, Any] = {}
    c = str(args.concurrency)

    print(f"iris, {c} connections: naive baseline ...", flush=True)
    results["naive"] = naive_baseline(project, python, args)
    print(f"iris, {c} connections: baked service ...", flush=True)
    results["baked"] = bench(project, python, args, "-c", c)
    print(f"iris, {c} connections: baked service, batching off ...", flush=True)
    results["baked_off"] = bench(project, python, args, "-c", c, *OFF)
    print("iris, 1 connection: baked service, batching as sized and off ...", flush=True)
    results["baked_c1"] = bench(project, python, args, "-c", "1")
    results["baked_off_c1"] = bench(project, python, args, "-c", "1", *OFF)
    print(f"iris, {c} connections: baked service, named records ...", flush=True)
    results["records"] = bench(project, python, args, "-c", c, "--records")
    print(f"iris, {c} connections: bare ASGI app on the same server ...", flush=True)
    results["bare"] = naive_baseline(project, python, args, "bare_app.py")
    results["t_model"] = model_time(project, python)
    results["imports"] = import_times(project, python)
    print(f"iris, {c} connections: baked service, 2 workers on both CPUs ...", flush=True)
    results["workers2"] = bench(
        project, python, args, "-c", c, "--workers", "2",
        "--server-cpus", "0,1", "--client-cpus", "0,1",
    )  # fmt: skip
    print("baking and installing the auth=none project ...", flush=True)
    plain, plain_python = bake_and_install("project-none", auth="none")
    print(f"iris, {c} connections: baked service with auth=none ...", flush=True)
    results["none"] = bench(plain, plain_python, args, "-c", c)

    frame_dir = BUILD / "frame-model"
    print("training the DataFrame pipeline ...", flush=True)
    churn = Path(
        run([str(python), str(ROOT / "bench" / "frame_model.py"), "train", str(frame_dir)]).strip()
    )
    speed = [*pinned("0"), str(python), str(ROOT / "bench" / "frame_model.py"), "speed"]
    results["frame_in_process"] = json.loads(run([*speed, str(churn)]))
    print(f"DataFrame pipeline, {c} connections, batching as sized and off ...", flush=True)
    frame_model = ["--env", f"APP_MODEL_PATH={churn}", "--body-file", str(frame_dir / "body.json")]
    results["frame"] = bench(project, python, args, "-c", c, *frame_model)
    results["frame_off"] = bench(project, python, args, "-c", c, *frame_model, *OFF)
    print("baking and installing the onnx project ...", flush=True)
    onnx, onnx_python = bake_and_install("project-onnx", model_framework="onnx")
    print(f"ONNX demo, {c} connections, batching as sized and off ...", flush=True)
    results["onnx"] = bench(onnx, onnx_python, args, "-c", c)
    results["onnx_off"] = bench(onnx, onnx_python, args, "-c", c, *OFF)

    if not args.iris_only:
        model_dir = BUILD / "slow-model"
        artifact = model_dir / "model.skops"
        if not artifact.is_file():
            print("training the 32-feature model ...", flush=True)
            run([str(python), str(ROOT / "bench" / "slow_model.py"), "train", str(model_dir)])
        print("in-process speed of the 32-feature model ...", flush=True)
        speed = [*pinned("0"), str(python), str(ROOT / "bench" / "slow_model.py"), "speed"]
        results["in_process"] = json.loads(run([*speed, str(artifact)]))
        model = f"APP_MODEL_PATH={artifact}"
        for connections in (c, "1"):
            for batch in ("auto", "1"):
                print(f"32 features, {connections} connections, batch {batch} ...", flush=True)
                results[f"slow_c{connections}_b{batch}"] = bench(
                    project, python, args, "-c", connections,
                    "--env", model, "--env", f"APP_MAX_BATCH_SIZE={batch}",
                )  # fmt: skip

    print("training the text model and the two-target regressor ...", flush=True)
    kinds_dir = BUILD / "kinds-model"
    kinds = [str(python), str(ROOT / "bench" / "kinds_model.py")]
    run([*kinds, "train", str(kinds_dir)])
    for kind in KINDS:
        artifact = kinds_dir / f"{kind}.skops"
        print(f"{KINDS[kind]}, {c} connections ...", flush=True)
        served = ["--env", f"APP_MODEL_PATH={artifact}"]
        served += ["--body-file", str(kinds_dir / f"{kind}-body.json")]
        results[kind] = bench(project, python, args, "-c", c, *served)
        speed = json.loads(run([*pinned("0"), *kinds, "speed", str(artifact)]))
        results[f"{kind}_t_model"] = speed["t_model"]

    if not args.no_watching:
        print(f"what watching the model costs, {c} connections ...", flush=True)
        results["watching"] = watching(args)

    (BUILD / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    naive, baked = results["naive"], results["baked"]
    tool = baked["tool"]
    print(f"\nPOST /predict, 1 row per request, {args.duration} s per run with {tool}")
    print("server pinned to CPU 0, load on CPU 1; a shared machine makes every number noisy\n")
    print(f"iris (StandardScaler + LogisticRegression), {c} connections\n{HEADER}")
    print(row("naive baseline (bench/naive_app.py)", naive))
    print(row("baked default project (jwt, metrics)", baked))
    rps = baked["requests_per_s"] / naive["requests_per_s"]
    p99 = baked["p99_ms"] / naive["p99_ms"]
    failed = baked["non_2xx"] + baked["socket_errors"]
    print(f"  req/s baked/baseline: {rps:.2f} (goal >= 8)", end="   ")
    print(f"p99 baked/baseline: {p99:.2f} (goal <= 0.15)   failed: {failed} (goal 0)")
    print(f"  batching: {chosen(baked)}")
    off = results["baked_off"]
    print(row("baked, batching off (APP_MAX_BATCH_SIZE=1)", off))
    print(
        f"  req/s off/baseline: {off['requests_per_s'] / naive['requests_per_s']:.2f};"
        f" batching as sized / off: {gain(results, 'baked', 'baked_off'):.2f}"
    )
    none = results["none"]
    print(row("baked, auth=none (metrics)", none))
    ratio = none["requests_per_s"] / naive["requests_per_s"]
    print(f"  req/s auth=none/baseline: {ratio:.2f}   (goal >= 3.5)")
    bare, t_model = results["bare"], results["t_model"]
    print(row("bare ASGI app, fixed JSON (bench/bare_app.py)", bare))
    share = baked["requests_per_s"] / bare["requests_per_s"]
    print(f"  baked default project at {share:.1%} of the bare app's req/s on the same core")
    t_bare = 1 / bare["requests_per_s"]
    limit = 1 / (t_bare + t_model)
    print(
        f"  t_bare {t_bare * 1e6:.0f} us + t_model {t_model * 1e6:.0f} us: limit {limit:.0f} req/s;"
        f" baked at {baked['requests_per_s'] / limit:.0%} of it (goal >= 40%)"
    )
    workers2 = results["workers2"]
    print(row("baked, --workers 2, server and load on both CPUs", workers2))
    scale = workers2["requests_per_s"] / baked["requests_per_s"]
    print(f"  2 workers / 1 worker: {scale:.2f}   (goal >= 1.8)")
    print(worker_scaling(baked, workers2))
    print(
        f"  start-up to ready: {baked['ready_s']:.2f} s (goal <= 2);"
        f" peak RSS per worker: {baked['peak_rss_mb']:.0f} MB"
        f" (2 workers: {workers2['peak_rss_mb']:.0f} MB)"
    )
    imports = results["imports"]
    print(
        f"  of which importing scikit-learn and skops: {imports['libraries']:.2f} s;"
        f" the rest of the service's imports: {imports['service']:.2f} s"
    )
    records = results["records"]
    print(row("baked, named records instead of rows", records))
    extra = baked["requests_per_s"] / records["requests_per_s"] - 1
    print(f"  cost of named records per request: {extra:+.1%}   (goal: at most +15%)")
    single, single_off = results["baked_c1"], results["baked_off_c1"]
    print(f"\niris, 1 connection\n{HEADER}")
    print(row("baked default project", single))
    print(row("baked, batching off", single_off))
    slower = single["p50_ms"] / single_off["p50_ms"] - 1
    print(f"  p50 as sized against off: {slower:+.1%}   (goal: at most +5%)")
    frame, frame_speed = results["frame"], results["frame_in_process"]["one_row"]
    print(f"\nDataFrame pipeline (2 scaled numbers, 2 one-hot string columns), {c} connections")
    print(HEADER)
    print(row("baked default project, one record", frame))
    print(row("baked, one record, batching off", results["frame_off"]))
    print(f"  batching: {chosen(frame)}")
    print(f"  in-process predict on a one-row DataFrame: {frame_speed:9.1f} per s")
    served = frame["requests_per_s"] / frame_speed
    print(f"  served req/s / in-process predictions/s: {served:.2f}")
    overhead = 1 / frame["requests_per_s"] - 1 / frame_speed
    print(f"  server time per request beyond the model's: {overhead * 1e3:.2f} ms (goal <= 0.25)")
    onnx = results["onnx"]
    print(f"\nONNX demo (the onnx variant's iris model, onnxruntime), {c} connections\n{HEADER}")
    print(row("baked onnx project", onnx))
    print(row("baked onnx project, batching off", results["onnx_off"]))
    print(f"  batching: {chosen(onnx)}")
    print(
        f"\nbatching as sized / off at {c} connections (req/s):"
        f" sklearn demo {gain(results, 'baked', 'baked_off'):.2f},"
        f" DataFrame pipeline {gain(results, 'frame', 'frame_off'):.2f},"
        f" ONNX demo {gain(results, 'onnx', 'onnx_off'):.2f}"
    )
    print("  ready max: the slowest of the GET /health/ready polled every 100 ms during the run")
    print(f"\nCost per request by kind of model, {c} connections, defaults (batching as sized)")
    print(
        f"  {'':<58} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>8}"
        f" {'us/req':>9} {'model us':>9}"
    )
    print(cost_line("iris demo (StandardScaler + LogisticRegression), 1 row", baked, t_model))
    for kind, label in KINDS.items():
        print(cost_line(label, results[kind], results[f"{kind}_t_model"]))
    for kind in KINDS:
        relative = baked["requests_per_s"] / results[kind]["requests_per_s"]
        print(f"  {kind}: {relative:.2f}x the demo's cost per request;", end="")
        print(f" batching: {chosen(results[kind])}")
    print(
        "  us/req: the server's core time per request (1 / req/s, one core);"
        " model us: one in-process predict of that one instance alone (batches share it)"
    )
    if not args.iris_only:
        speed = results["in_process"]
        print(f"\n32-feature HistGradientBoostingClassifier\n{HEADER}")
        for connections in (c, "1"):
            for batch in ("auto", "1"):
                label = f"{connections} connections, APP_MAX_BATCH_SIZE={batch}"
                print(row(label, results[f"slow_c{connections}_b{batch}"]))
        print(f"  batching: {chosen(results[f'slow_c{c}_bauto'])}")
        print(f"  in-process, one row per call:   {speed['one_row']:9.1f} rows/s")
        print(f"  in-process, 64 rows per call:   {speed['batch_64']:9.1f} rows/s")
        served = results[f"slow_c{c}_bauto"]["requests_per_s"] / speed["one_row"]
        print(f"  served with batching / in-process one row at a time: {served:.2f}")
    if args.no_watching:
        print(f"\nraw results: {(BUILD / 'results.json').relative_to(ROOT)}")
        return
    runs = results["watching"]
    print(
        f"\nWhat watching the model costs: auth=none with use_opentelemetry, {c} connections,"
        f" {WATCHING_ROUNDS} rounds in turns (req/s of each round, cost: median of the ratios)"
    )
    labels = {
        "reference": "traces off (OTEL_SDK_DISABLED), drift off",
        "drift": "input drift counted (4 features)",
        "traces_1": "traces sampled at 1%, exported",
        "traces_100": "traces sampled at 100%, exported",
    }
    for mode, label in labels.items():
        rates = " ".join(f"{run['requests_per_s']:7.0f}" for run in runs[mode])
        line = f"  {label:<44}{rates}"
        if mode != "reference":
            line += f"   cost {cost(runs, mode):6.1%}"
        if mode == "traces_1":
            line += " (goal <= 10%)"
        print(line)
    print(f"\nraw results: {(BUILD / 'results.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()

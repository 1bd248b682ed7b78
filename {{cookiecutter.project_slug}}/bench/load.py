"""Load test: start the service, drive ``POST /predict`` with wrk or hey, print the numbers.

    python bench/load.py --concurrency 64 --duration 15 --rows 1

The service runs from this checkout (``python -m {{ cookiecutter.project_slug }} serve``) on a free
loopback port{% if cookiecutter.auth == "jwt" %}, with a throw-away user database and a fresh token{% elif cookiecutter.auth == "api_key" %}, with a throw-away key database and a fresh key{% elif cookiecutter.auth == "oidc" %}, with a local identity provider and its token{% endif %}. Settings pass through
from the environment or ``--env NAME=VALUE``, e.g. ``--env APP_MAX_BATCH_SIZE=64``. With
``--url`` it drives a service that is already running instead.

The server is pinned to one CPU and the load generator to another (``taskset``), so that they do
not compete for a core; even so, numbers from a shared or busy machine are only rough.
Needs ``wrk`` or ``hey`` on the PATH (Debian and Ubuntu package both).
"""

from __future__ import annotations

import argparse
import json
{%- if cookiecutter.auth == "jwt" %}
import math
{%- endif %}
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
{%- if cookiecutter.auth == "jwt" %}
import urllib.parse
{%- endif %}
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
{%- if cookiecutter.auth == "jwt" %}
from secrets import token_hex
{%- elif cookiecutter.auth == "oidc" %}
from typing import Any
{%- endif %}

PACKAGE = "{{ cookiecutter.project_slug }}"
PROJECT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why."""


@dataclass
class Result:
    tool: str
    concurrency: int
    rows: int
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    # GET /health/ready every 100 ms during the measured run: the slowest answer, how many
    # probes there were, and how many did not answer 200 (the event loop must stay free).
    probe_max_ms: float = 0.0
    probes: int = 0
    probes_failed: int = 0
    # A service started here: seconds from process start to ready, and the largest peak
    # resident memory of its processes (each worker's own high-water mark), in MB.
    ready_s: float = 0.0
    peak_rss_mb: float = 0.0
    # The service's batching, as GET /model reports it: the most rows per model call (0: not
    # reported) and where that came from ("measured" at start-up, or "settings").
    max_batch_size: int = 0
    batching_source: str = ""
    # Core seconds used during the measured run by the service's processes (a service started
    # here) and by the load generator: with both on one machine, they share its cores.
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0


# --- talking to the service -------------------------------------------------------------------


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request with the standard library; any HTTP status is an answer, not an exception."""
    if not url.startswith(("http://", "https://")):
        raise BenchError(f"not an HTTP URL: {url}")
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpus: str) -> list[str]:
    """A ``taskset`` prefix that pins a command to ``cpus``, or nothing if that is not possible."""
    taskset = shutil.which("taskset")
    if not cpus or taskset is None:
        return []
    return [taskset, "-c", cpus]


class Server:
    """The service in a child process, stopped by its PID however the benchmark ends."""

    def __init__(self, env: dict[str, str], port: int, workers: int, cpus: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", PACKAGE, "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*pinned(cpus), *command],
            cwd=PROJECT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-4000:]

    def wait_ready(self) -> float:
        """Poll readiness; the seconds from process start to the first 200."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise BenchError(f"the service exited with {code}:\n{self.output()}")
            try:
                if http("GET", f"{self.url}/health/ready")[0] == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass  # not listening yet
            time.sleep(0.01)
        raise BenchError(f"not ready after {READY_TIMEOUT_S:.0f} s:\n{self.output()}")

    def peak_rss_mb(self) -> float:
        """The largest peak resident memory (VmHWM) among the service's processes (Linux)."""
        peak = 0
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) != self.process.pid:  # process group
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                continue
        return peak / 1024

    def cpu_s(self) -> float:
        """Core seconds the service's running processes have used so far (Linux)."""
        ticks = 0
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:  # process group
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, ValueError, IndexError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, as an orchestrator would; SIGKILL the process group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run one of the service's own commands and return what it printed."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", PACKAGE, *args],
        cwd=PROJECT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()
{%- if cookiecutter.auth == "jwt" %}


def credentials(env: dict[str, str], url: str) -> dict[str, str]:
    """Add a user with the CLI, log in, and return the bearer header for the load."""
    name, password = f"bench-{token_hex(4)}", token_hex(16)
    cli(env, "users", "add", name, "--scope", "predict", stdin=password + "\n")
    form = urllib.parse.urlencode({"username": name, "password": password}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = http("POST", f"{url}/token", form, headers)
    if status != 200:
        raise BenchError(f"POST /token answered {status}: {body.decode(errors='replace')}")
    return {"Authorization": f"Bearer {json.loads(body)['access_token']}"}
{%- elif cookiecutter.auth == "api_key" %}


def credentials(env: dict[str, str], url: str) -> dict[str, str]:
    """Create an API key with the CLI and return the header for the load."""
    key = cli(env, "keys", "add", f"bench-{os.getpid()}", "--scope", "predict")
    return {"X-API-Key": key}
{%- elif cookiecutter.auth == "oidc" %}


def identity_provider(env: dict[str, str]) -> Any:
    """Start the tests' identity provider on loopback and point the service at it."""
    sys.path.insert(0, str(PROJECT))
    from tests.identity_provider import AUDIENCE, IdentityProvider

    provider = IdentityProvider()
    env["APP_OIDC_ISSUER"] = provider.issuer
    env["APP_OIDC_AUDIENCE"] = AUDIENCE
    return provider


def credentials(provider: Any, seconds: float) -> dict[str, str]:
    """A token from the provider that outlives the run."""
    token = provider.token(exp=int(time.time() + seconds + 600))
    return {"Authorization": f"Bearer {token}"}
{%- endif %}


def service_env(extra: list[str], seconds: float, scratch: Path) -> dict[str, str]:
    """The environment for the service: ours, then ``--env``, then benchmark defaults."""
    env = dict(os.environ)
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BenchError(f"--env wants NAME=VALUE, not {item!r}")
        env[name] = value
{%- if cookiecutter.auth in ["jwt", "api_key"] %}
    env.setdefault("APP_DATABASE_URL", f"sqlite:///{scratch / 'bench.db'}")
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    env.setdefault("APP_SECRET_KEY", token_hex(32))
    # The token must outlive the run.
    env.setdefault("APP_TOKEN_EXPIRE_MINUTES", str(min(24 * 60, math.ceil(seconds / 60) + 5)))
{%- endif %}
    return env


# --- the request and the load ------------------------------------------------------------------


def request_body(rows: int, names: list[str], records: bool) -> bytes:
    """Deterministic, plausible feature values, so that every run sends the same bytes.

    As positional rows, or with ``records`` as objects by feature name.
    """
    instances: list[object] = []
    for row in range(rows):
        values = [
            round(0.5 + ((7 * row + 3 * column) % 50) / 10, 2) for column in range(len(names))
        ]
        instances.append(dict(zip(names, values, strict=True)) if records else values)
    return json.dumps({"instances": instances}).encode()


def feature_names(url: str, headers: dict[str, str]) -> list[str]:
    status, body = http("GET", f"{url}/model", headers=headers)
    if status != 200:
        raise BenchError(f"GET /model answered {status}; pass --features")
    names: list[str] = json.loads(body)["features"]
    return names


def batching(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """The batch size the service chose, and whether it measured it; (0, "") if not told."""
    status, body = http("GET", f"{url}/model", headers=headers)
    if status != 200:
        return 0, ""
    info = json.loads(body).get("batching") or {}
    return int(info.get("max_batch_size", 0)), str(info.get("source", ""))


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(
    wrk: str, url: str, body: bytes, headers: dict[str, str], args: argparse.Namespace
) -> Result:
    lines = "\n".join(f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT.format(body=body.decode(), headers=lines))
        script.flush()
        threads = 1 if args.client_cpus else min(2, args.concurrency)
        command = [wrk, "-t", str(threads), "-c", str(args.concurrency)]
        command += ["-d", f"{args.duration}s", "--timeout", "30s", "-s", script.name, url]
        output = run_tool([*pinned(args.client_cpus), *command])
    match = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)$", output, re.MULTILINE)
    if match is None:
        raise BenchError(f"unexpected wrk output:\n{output}")
    requests, micros, non_2xx, socket_errors = (int(g) for g in match.groups()[:4])
    seconds = micros / 1e6
    return Result(
        tool="wrk",
        concurrency=args.concurrency,
        rows=args.rows,
        seconds=seconds,
        requests=requests,
        requests_per_s=requests / seconds,
        p50_ms=float(match[5]) / 1000,
        p99_ms=float(match[6]) / 1000,
        non_2xx=non_2xx,
        socket_errors=socket_errors,
    )


def run_hey(
    hey: str, url: str, body: bytes, headers: dict[str, str], args: argparse.Namespace
) -> Result:
    command = [hey, "-z", f"{args.duration}s", "-c", str(args.concurrency), "-t", "30"]
    command += ["-m", "POST", "-T", "application/json", "-d", body.decode()]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = run_tool([*pinned(args.client_cpus), *command, url])

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        if match is None:
            raise BenchError(f"unexpected hey output (no {pattern!r}):\n{output}")
        return float(match[1])

    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", output)}
    errors = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", output)
    socket_errors = sum(int(n) for n in re.findall(r"\[(\d+)\]", errors[1])) if errors else 0
    seconds = number(r"Total:\s+([\d.]+) secs")
    requests = sum(statuses.values())
    return Result(
        tool="hey",
        concurrency=args.concurrency,
        rows=args.rows,
        seconds=seconds,
        requests=requests,
        requests_per_s=requests / seconds,
        p50_ms=number(r"50%+ in ([\d.]+) secs") * 1000,
        p99_ms=number(r"99%+ in ([\d.]+) secs") * 1000,
        non_2xx=sum(n for s, n in statuses.items() if not 200 <= s < 300),
        socket_errors=socket_errors,
    )


def run_tool(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"{Path(command[0]).name} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


class ReadinessProbe:
    """Polls ``/health/ready`` in a thread while the load runs, as an orchestrator would."""

    INTERVAL_S = 0.1

    def __init__(self, url: str) -> None:
        self._url = f"{url}/health/ready"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.latencies_ms: list[float] = []
        self.failed = 0

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            started = time.perf_counter()
            try:
                status = http("GET", self._url)[0]
            except OSError:
                status = 0
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.failed += status != 200

    def __enter__(self) -> ReadinessProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def children_cpu_s() -> float:
    """Core seconds used by this process's finished children (the load generator's runs)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def load(
    url: str, headers: dict[str, str], args: argparse.Namespace, server: Server | None = None
) -> Result:
    """Check that one request works, warm up, then measure."""
    if args.body_file:
        body = args.body_file.read_bytes()
    else:
        names = [f"x{i}" for i in range(args.features)] or feature_names(url, headers)
        body = request_body(args.rows, names, args.records)
    headers = {**headers, "Content-Type": "application/json"}
    status, answer = http("POST", f"{url}/predict", body, headers)
    if status != 200:
        raise BenchError(f"POST /predict answered {status}: {answer.decode(errors='replace')}")
    tools = {name: shutil.which(name) for name in ("wrk", "hey")}
    name = args.tool if args.tool != "auto" else next((n for n, p in tools.items() if p), "")
    path = tools.get(name)
    if path is None:
        raise BenchError("needs wrk or hey on the PATH (apt-get install wrk, or hey)")
    drive = run_wrk if name == "wrk" else run_hey
    if args.warmup > 0:
        warmup = argparse.Namespace(**{**vars(args), "duration": args.warmup})
        drive(path, f"{url}/predict", body, headers, warmup)
        # The load generator hangs up at the end of the warm-up, but the requests it left in
        # the service's queue still run. One more request waits behind them all (the queue is
        # first in, first out); without it they count against the measured run's queue limit,
        # and a few of its requests see 503.
        http("POST", f"{url}/predict", body, headers)
    server_before, client_before = (server.cpu_s() if server else 0.0), children_cpu_s()
    with ReadinessProbe(url) as probe:
        result = drive(path, f"{url}/predict", body, headers, args)
    result.client_cpu_s = children_cpu_s() - client_before
    if server is not None:
        result.server_cpu_s = server.cpu_s() - server_before
    result.max_batch_size, result.batching_source = batching(url, headers)
    result.probes = len(probe.latencies_ms)
    result.probe_max_ms = max(probe.latencies_ms, default=0.0)
    result.probes_failed = probe.failed
    return result


def report(result: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result)))
        return
    print(
        f"POST /predict, {result.rows} row(s) per request, {result.concurrency} connections, "
        f"{result.seconds:.1f} s with {result.tool}\n"
        f"  requests/s     {result.requests_per_s:10.1f}\n"
        f"  p50            {result.p50_ms:10.2f} ms\n"
        f"  p99            {result.p99_ms:10.2f} ms\n"
        f"  non-2xx        {result.non_2xx:10d}\n"
        f"  socket errors  {result.socket_errors:10d}\n"
        f"  readiness      {result.probe_max_ms:10.2f} ms at most, over {result.probes} probes"
        f" ({result.probes_failed} not 200)"
    )
    if result.max_batch_size:
        size, source = result.max_batch_size, result.batching_source
        print(f"  batching       {size:10d} rows per model call at most ({source})")
    if result.ready_s:
        print(
            f"  start-up       {result.ready_s:10.2f} s to ready\n"
            f"  peak RSS       {result.peak_rss_mb:10.1f} MB (largest process)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--concurrency", "-c", type=int, default=64, help="open connections")
    add("--duration", "-d", type=int, default=15, help="seconds of measured load")
    add("--warmup", type=int, default=3, help="seconds of load before measuring")
    add("--rows", type=int, default=1, help="instances per request")
    add("--features", type=int, default=0, help="values per row (default: ask GET /model)")
    add("--records", action="store_true", help="instances as objects by feature name")
    add("--body-file", type=Path, help="send this JSON body instead of generated rows")
    add("--workers", type=int, default=1, help="server worker processes")
    add("--env", action="append", default=[], metavar="NAME=VALUE", help="a service setting")
    add("--server-cpus", default="0", help="taskset CPU list for the server ('' = any)")
    add("--client-cpus", default="1", help="taskset CPU list for the load ('' = any)")
    add("--tool", choices=["auto", "wrk", "hey"], default="auto", help="load generator")
    add("--url", help="drive this running service instead of starting one")
    add("--header", action="append", default=[], metavar="NAME:VALUE", help="with --url")
    add("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if min(args.concurrency, args.duration, args.rows, args.workers) < 1 or args.warmup < 0:
        parser.error("--concurrency, --duration, --rows and --workers must be positive")
    if len(os.sched_getaffinity(0)) < 2:
        args.server_cpus = args.client_cpus = ""  # one CPU: pinning would only serialise them
    return args


@dataclass
class Served:
    """A service started here, with the credentials its load sends."""

    server: Server
    headers: dict[str, str]
    ready_s: float


@contextmanager
def serving(args: argparse.Namespace, seconds: float) -> Iterator[Served]:
    """A fresh service with ``args``' settings, ready, and credentials valid for ``seconds``;
    stopped by its PID when the block ends."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        env = service_env(args.env, seconds, Path(scratch))
{%- if cookiecutter.auth == "oidc" %}
        provider = identity_provider(env)
{%- endif %}
        server = Server(env, free_port(), args.workers, args.server_cpus)
        try:
            ready_s = server.wait_ready()
{%- if cookiecutter.auth == "none" %}
            yield Served(server, {}, ready_s)
{%- elif cookiecutter.auth == "oidc" %}
            yield Served(server, credentials(provider, seconds), ready_s)
{%- else %}
            yield Served(server, credentials(env, server.url), ready_s)
{%- endif %}
        finally:
            server.stop()
{%- if cookiecutter.auth == "oidc" %}
            provider.stop()
{%- endif %}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.url:
            pairs = [header.partition(":") for header in args.header]
            headers = {name.strip(): value.strip() for name, _, value in pairs}
            result = load(args.url.rstrip("/"), headers, args)
        else:
            with serving(args, args.warmup + args.duration) as served:
                result = load(served.server.url, served.headers, args, served.server)
                result.ready_s = served.ready_s
                result.peak_rss_mb = served.server.peak_rss_mb()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures for the template's tests: one bake fixture, and helpers for baked services."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cookiecutter.main import cookiecutter
from uv import find_uv_bin

from tests.variants import DEFAULTS, SUPPORTED, variant_id

ROOT = Path(__file__).resolve().parent.parent


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub) kept as {"Ref": ...} mappings."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node)}
    return {name: loader.construct_mapping(node)}  # type: ignore[arg-type]


CfnLoader.add_multi_constructor("!", _intrinsic)

# The binary itself: `python -m uv` starts an interpreter first, a tenth of a second a call.
UV = [find_uv_bin()]


@dataclass
class Baked:
    """A baked project and the answers that made it."""

    path: Path
    context: dict[str, Any]

    @property
    def name(self) -> str:
        return variant_id(self.context)

    @property
    def slug(self) -> str:
        return self.path.name


def baked_with(cookies: Any, **context: Any) -> Baked:
    """Bake the template with ``cookies`` (pytest-cookies' fixture, per test or per session) and
    the given answers; fail with the variant's name if it breaks."""
    result = cookies.bake(extra_context=context)
    name = variant_id(context)
    exc = result.exception
    where = f" in {exc.filename}, line {exc.lineno}" if hasattr(exc, "lineno") else ""
    assert exc is None, f"[{name}] bake failed{where}: {exc!r}"
    assert result.exit_code == 0, f"[{name}] bake exit code {result.exit_code}"
    return Baked(Path(result.project_path), context)


def shared_bake(run_dir: Path, **context: Any) -> Baked:
    """The project these answers bake, made once per run and shared by every xdist worker.

    For tests that only read the baked tree (the static checks): baking costs about a second
    (rendering, the hook's lock cut, ``git init``), and five such tests per variant baked it
    five times. Tests that write into the tree bake their own with ``bake``.
    """
    answers = {**DEFAULTS, **context}  # the same bake, however its answers are spelled
    key = hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:12]
    folder = run_dir / "bakes" / key
    with locked(run_dir / "bakes" / f"{key}.lock"):
        done = folder / ".baked"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            try:
                project = cookiecutter(
                    str(ROOT), no_input=True, output_dir=str(folder), extra_context=context
                )
            except Exception as exc:  # any failure of the bake is the variant's failure
                pytest.fail(f"[{variant_id(context)}] bake failed: {exc!r}")
            done.write_text(project, encoding="utf-8")
        return Baked(Path(done.read_text(encoding="utf-8")), context)


@pytest.fixture
def bake(cookies: Any) -> Callable[..., Baked]:
    """Bake the template with the given answers; fail with the variant's name if it breaks."""
    return functools.partial(baked_with, cookies)


def run(cmd: list[str], *, cwd: Path, what: str, timeout: float = 600, **kwargs: Any) -> str:
    """Run a command; on failure, fail the test with its output and ``what`` it was for."""
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(
            f"{what}: `{' '.join(cmd)}` exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result.stdout


def add_user(
    python: Path, project: Path, env: dict[str, str], name: str, password: str, what: str
) -> None:
    """Add a user with scope predict through the baked CLI, the password piped on stdin."""
    run(
        [str(python), "-m", project.name, "users", "add", name, "--scope", "predict"],
        cwd=project,
        what=f"{what} users add",
        env=env,
        input=password + "\n",
        timeout=120,
    )


def make_venv(project: Path, what: str) -> Path:
    """Install the baked project with its dev extras into ``project/.venv``; return its python."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    venv = project / ".venv"
    uv = UV
    run(
        [*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        cwd=project,
        what=what,
        env=env,
    )
    python = venv / "bin" / "python"
    run(
        [*uv, "pip", "install", "--quiet", "--python", str(python), "-e", ".[dev]"],
        cwd=project,
        what=f"{what}: install",
        env=env,
    )
    return python


def dependencies(project: Path, extras: tuple[str, ...] = ("dev",)) -> list[str]:
    """The requirements a baked project declares: its dependencies plus the given extras."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = meta.get("optional-dependencies", {})
    return sorted(
        {*meta["dependencies"], *(r for extra in extras for r in optional.get(extra, []))}
    )


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (shared by every xdist worker of the run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_venv(root: Path, requirements: list[str], what: str) -> Path:
    """A virtual environment with ``requirements`` installed, made once per run and reused.

    Keyed on the requirement set, so variants that declare the same dependencies share one
    environment (the Python version answer does not matter: everything runs on this
    interpreter). Installs come from uv's cache, shared by all environments.
    """
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    venv = root / f"venv-{key}"
    python = venv / "bin" / "python"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    uv = UV
    with locked(root / f"venv-{key}.lock"):
        if not (venv / ".complete").exists():
            run(
                [*uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)],
                cwd=root,
                what=what,
                env=env,
            )
            run(
                [*uv, "pip", "install", "--quiet", "--python", str(python), *requirements],
                cwd=root,
                what=f"{what}: install {len(requirements)} requirements",
                env=env,
            )
            (venv / ".complete").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return python


def install_project(
    root: Path, baked: Baked, extras: list[str] | None = None
) -> tuple[Path, dict[str, str]]:
    """Install ``baked`` into the shared environment for its dependency set (plus ``extras``).

    Returns the python to use and the environment to run it with. The project is installed
    editable (so its build is exercised), and ``PYTHONPATH`` puts this variant's ``src`` first:
    variants that share the environment then never import each other's code.
    """
    what = f"[{baked.name}]"
    python = shared_venv(root, dependencies(baked.path) + (extras or []), what)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    with locked(python.parent.parent.with_suffix(".lock")):
        run(
            [*UV, "pip", "install", "--quiet", "--python", str(python), "--no-deps", "-e", "."],
            cwd=baked.path,
            what=f"{what} install the project",
            env=env,
        )
    return python, {"PYTHONPATH": str(baked.path / "src")}


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A directory shared by all xdist workers of this run (venvs, locks, caches)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """A baked service running as a real process on a loopback port."""

    process: subprocess.Popen[str]
    port: int
    log: Path
    what: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kwargs)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-6000:]

    def wait_ready(self, deadline_s: float = 120) -> float:
        """Poll /health/ready until 200; return how long it took."""
        started = time.monotonic()
        with self.client() as client:
            while time.monotonic() - started < deadline_s:
                if self.process.poll() is not None:
                    pytest.fail(f"{self.what}: exited {self.process.returncode}\n{self.output()}")
                try:
                    if client.get("/health/ready").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # poll interval, not synchronisation: the deadline decides
        pytest.fail(f"{self.what}: not ready within {deadline_s}s\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        """Signal the process (and its workers) by PID; kill it if it does not exit in time."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        _reap_group(self.process.pid)
        return self.process.returncode


# Every process group start_service made in this worker, for the end-of-session safety net.
_STARTED: list[subprocess.Popen[str]] = []


def _reap_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (workers that outlived their parent)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_all_started() -> list[int]:
    """Kill every service process group this worker started and that still runs; return PIDs."""
    leaked = []
    for process in _STARTED:
        if process.poll() is None:
            leaked.append(process.pid)
        _reap_group(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    return leaked


atexit.register(stop_all_started)  # last resort if the session is interrupted


def start_service(
    python: Path, project: Path, env: dict[str, str], what: str, *args: str
) -> Service:
    port = free_port()
    log = project / f"serve-{port}.log"
    process = subprocess.Popen(
        [
            str(python),
            "-m",
            project.name,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        cwd=project,
        env={**os.environ, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so stop() reaches every worker
    )
    _STARTED.append(process)
    return Service(process, port, log, what)


SCHEMATHESIS_HOOKS = ROOT / "tests" / "schemathesis_hooks.py"


def run_schemathesis(
    service: Service, folder: Path, what: str, *options: str, max_examples: int = 40
) -> None:
    """Every check schemathesis has against ``service``'s own OpenAPI document, with no
    allowance: the infer route's rules that JSON Schema cannot say are kept by the hooks in
    tests/schemathesis_hooks.py, and the protocol's routes are sent the served model's name and
    version (made-up ones only ever meet the 404 before the body is read). Fails the test with
    schemathesis's report if it finds anything, or if it ran no operation."""
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with service.client() as client:
        model = client.get("/model")
    assert model.status_code == 200, f"{what}: GET /model answered {model.status_code}"
    report = folder / "junit.xml"
    config = folder / "schemathesis.toml"
    name, version = json.dumps(model.json()["name"]), json.dumps(model.json()["version"])
    config.write_text(
        "\n".join(
            [
                "[[operations]]",
                'include-path-regex = "^/v2/models/\\\\{name\\\\}(/ready|/infer)?$"',
                f'parameters = {{ "path.name" = {name} }}',
                "[[operations]]",  # the routes of each kept version: the one serving
                'include-path-regex = "^/v2/models/\\\\{name\\\\}/versions/"',
                f'parameters = {{ "path.name" = {name}, "path.version" = {version} }}',
                "",
            ]
        )
    )
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(SCHEMATHESIS_HOOKS),
        "OIP_INPUTS": json.dumps(model.json()["inputs"]),
    }
    run(
        [
            str(schemathesis),
            "--config-file",
            str(config),
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(max_examples),
            "--seed",
            "1",
            *options,
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        cwd=folder,
        what=f"{what}: schemathesis",
        env=env,
        timeout=600,
    )
    assert "<testcase" in report.read_text(encoding="utf-8"), f"{what}: ran no operation"


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Services a test starts; each is stopped by PID when the test ends, pass or fail."""
    started: list[Service] = []
    yield started
    errors = []
    for service in started:
        try:
            service.stop()
        except Exception as exc:  # stop the others anyway, then report
            errors.append(f"{service.what}: {exc!r}")
    assert not errors, errors


@pytest.fixture(scope="session", autouse=True)
def no_leaked_services() -> Iterator[None]:
    """Safety net: at the end of the session, kill any service a test failed to stop."""
    yield
    leaked = stop_all_started()
    if leaked:
        sys.stderr.write(f"\nkilled services left running by tests: PIDs {leaked}\n")


# --- the order of the run ----------------------------------------------------------------------
# The modules that take longest, longest first (from the slowest list at the end of a run): the
# workers take tests in collection order, and a long module taken last leaves the other worker
# idle while it runs. Everything else keeps its order after these.
LONGEST_FIRST = (
    "test_versions_boot.py",
    "test_model_kinds_boot.py",
    "test_models_boot.py",
    "test_container.py",
    "test_runtime_boot.py",
    "test_auth_boot.py",
    "test_security_boot.py",
    "test_observability.py",
    "test_boot.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a module, the order stays as written


# --- one line per variant, for the template's CI --------------------------------------------
# The per-variant tests, by the column they count in. A variant's column sums the seconds of its
# tests (setup, which bakes or installs, included) and fails if one of them failed.
COLUMNS = ("baked", "lint", "types", "tests", "boot")
VARIANT_TESTS = {
    "test_no_template_leftovers": "baked",
    "test_optional_files_match_answers": "baked",
    "test_disabled_features_leave_no_trace": "baked",
    "test_data_files_parse": "baked",
    "test_answers_are_recorded": "baked",
    "test_ruff_and_compile": "lint",
    "test_mypy_strict": "types",
    # Its install and the baked project's own tests count as "tests" (see phase()), the rest
    # (serve and probe) as "boot".
    "test_install_test_boot_and_probe": "boot",
}
_RUNNING: list[pytest.Item] = []
_RESULTS: dict[str, dict[str, list[Any]]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time part of the running test as its own column of the per-variant summary."""
    started = time.monotonic()
    ok = False
    try:
        yield
        ok = True
    finally:
        if _RUNNING:
            seconds = round(time.monotonic() - started, 2)
            _RUNNING[-1].user_properties.append(("phase", [name, seconds, ok]))


def _variant_of(nodeid: str) -> tuple[str, str] | None:
    """(column, variant id) of a per-variant test's node id, else None."""
    name, _, param = nodeid.rpartition("::")[2].partition("[")
    column = VARIANT_TESTS.get(name)
    return (column, param.removesuffix("]")) if column and param else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    found = _variant_of(report.nodeid)
    if found is None or (report.when == "teardown" and report.passed):
        return
    column, variant = found
    cells = _RESULTS.setdefault(variant, {})
    seconds = report.duration
    if column == "boot" and report.when == "setup":
        column = "tests"  # the install
    if column == "boot" and report.when == "call":
        for key, value in report.user_properties:
            if key == "phase" and value[0] == "tests":
                _add(cells, "tests", value[1], "pass" if value[2] else "FAIL")
                seconds -= value[1]
                if not value[2]:
                    _add(cells, "boot", 0.0, "-")
                    return
    outcome = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}[report.outcome]
    _add(cells, column, seconds, outcome)


def _add(cells: dict[str, list[Any]], column: str, seconds: float, outcome: str) -> None:
    cell = cells.setdefault(column, [0.0, outcome])
    cell[0] += seconds
    rank = ["-", "skip", "pass", "FAIL"]
    if rank.index(outcome) > rank.index(cell[1]):
        cell[1] = outcome


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per variant: each column pass, FAIL, skip or - (not run), with its seconds."""
    if not _RESULTS:
        return
    terminalreporter.section("per variant: " + ", ".join(COLUMNS) + " (seconds)")
    terminalreporter.line("  ".join(f"{c:<11}" for c in COLUMNS) + "  variant")
    order = [variant_id(v) for v in SUPPORTED]
    for variant, cells in sorted(
        _RESULTS.items(),
        key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
    ):
        line = "  ".join(
            f"{cells[c][1]:<4} {cells[c][0]:6.1f}" if c in cells else f"{'-':<11}" for c in COLUMNS
        )
        failed = any(cell[1] == "FAIL" for cell in cells.values())
        terminalreporter.line(f"{line}  {variant}", red=failed, bold=failed)

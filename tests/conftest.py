"""Fixtures for the template's tests: one bake fixture, and helpers for baked services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.variants import variant_id

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def bake(cookies: Any) -> Callable[..., Baked]:
    """Bake the template with the given answers; fail with the variant's name if it breaks."""

    def _bake(**context: Any) -> Baked:
        result = cookies.bake(extra_context=context)
        name = variant_id(context)
        assert result.exception is None, f"[{name}] bake failed: {result.exception!r}"
        assert result.exit_code == 0, f"[{name}] bake exit code {result.exit_code}"
        return Baked(Path(result.project_path), context)

    return _bake


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


def make_venv(project: Path, what: str) -> Path:
    """Install the baked project with its dev extras into ``project/.venv``; return its python."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    venv = project / ".venv"
    uv = [sys.executable, "-m", "uv"]
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
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

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
        return self.process.returncode


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
    return Service(process, port, log, what)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Services a test starts; each is stopped by PID when the test ends, pass or fail."""
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()

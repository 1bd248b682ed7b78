"""The serving runtime of baked services, over real HTTP: overload, deadline, micro-batching,
graceful shutdown, several workers, and the Open Inference Protocol as Triton's client speaks it.

A scikit-learn or ONNX model fast enough for the demo gives no requests in flight to observe, so
the checks that need slow inference serve a brute-force nearest-neighbour model that the test
trains and exports with the baked project's own ``export``: every prediction really is slow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import ROOT, Service, add_user, make_venv, run, start_service

pytestmark = pytest.mark.slow

# Iris rows with the demo model's answer; three of each class.
IRIS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [5.4, 3.9, 1.7, 0.4],
    [7.0, 3.2, 4.7, 1.4],
    [5.9, 3.0, 4.2, 1.5],
    [5.7, 2.8, 4.1, 1.3],
    [6.3, 3.3, 6.0, 2.5],
    [6.7, 3.0, 5.2, 2.3],
    [7.7, 2.6, 6.9, 2.3],
]
SECRET = "runtime-boot-secret-key-0123456789abcdef"
PASSWORD = "runtime boot password"
# Rows per request to the slow model: enough for each request to take a noticeable time.
SLOW_ROWS = 60

SLOW_MODEL = """
import sys
import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from {slug}.model.{framework} import export

rng = np.random.default_rng(0)
x = rng.normal(size=(50_000, 4))
model = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(x, np.where(x[:, 0] > 0, 1, 0))
open(sys.argv[1], "wb").write(export(model))
"""


@dataclass
class Installed:
    path: Path
    python: Path
    slug: str
    slow_model: Path
    what: str

    def start(self, *args: str, **settings: str) -> Service:
        env = {
            "APP_LOG_LEVEL": "warning",
            "APP_SECRET_KEY": SECRET,
            "APP_DATABASE_URL": f"sqlite:///{self.path / 'data' / 'runtime.db'}",
            **{f"APP_{key.upper()}": value for key, value in settings.items()},
        }
        return start_service(self.python, self.path, env, self.what, *args)


def install(tmp: Path, **context: Any) -> Installed:
    what = "[" + ",".join(f"{k}={v}" for k, v in context.items()) + "]"
    project = Path(
        cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp), extra_context=context)
    )
    python = make_venv(project, what)
    framework = context.get("model_framework", "sklearn")
    suffix = ".skops" if framework == "sklearn" else ".onnx"
    slow_model = project / f"slow{suffix}"
    run(
        [str(python), "-c", SLOW_MODEL.format(slug=project.name, framework=framework), slow_model],
        cwd=project,
        what=f"{what} train the slow model",
    )
    return Installed(project, python, project.name, slow_model, what)


@pytest.fixture(scope="module", params=["sklearn", "onnx"])
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """One installed auth=none variant per framework, shared by the checks of this module."""
    tmp = tmp_path_factory.mktemp(f"runtime-{request.param}")
    return install(tmp, auth="none", model_framework=request.param)


@pytest.fixture
def serve(services: list[Service]) -> Callable[..., Service]:
    """Start a service of an installed variant, ready to serve; stopped by PID after the test."""

    def start(installed: Installed, *args: str, **settings: str) -> Service:
        service = installed.start(*args, **settings)
        services.append(service)
        service.wait_ready()
        return service

    return start


def slow_body(seed: int = 0, rows: int = SLOW_ROWS) -> dict[str, Any]:
    """Distinct random rows: the slow model takes its time over each."""
    values = np.random.default_rng(seed).normal(size=(rows, 4))
    return {"instances": values.round(3).tolist()}


def post_all(service: Service, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send every body at once, each from its own connection; answers in the bodies' order."""

    def post(body: dict[str, Any]) -> httpx.Response:
        with service.client(timeout=60) as client:
            return client.post("/predict", json=body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def in_progress(service: Service) -> float:
    """Requests the service is handling now, as its own metrics count them (less this one)."""
    with service.client() as client:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("http_requests_in_progress "):
                return float(line.rsplit(" ", 1)[1]) - 1
    pytest.fail("no http_requests_in_progress in /metrics")


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)  # poll interval; the deadline decides


def test_overload_is_refused_with_retry_after_never_500(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    service = serve(
        installed,
        model_path=str(installed.slow_model),
        max_concurrency="1",
        max_queue="2",
        max_body_bytes="10000000",
    )
    probes: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        answers = pool.submit(post_all, service, [slow_body(i, 4 * SLOW_ROWS) for i in range(50)])
        with service.client(timeout=5) as client:
            # The model runs in threads, so the event loop answers probes during the burst.
            while not answers.done():
                probes.append(client.get("/health/ready").status_code)
                probes.append(client.get("/health/live").status_code)
        responses = answers.result(timeout=120)
    assert probes and set(probes) == {200}, probes

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429, 503}, f"{installed.what} {statuses}\n{service.output()}"
    assert 200 in statuses and (429 in statuses or 503 in statuses), statuses
    for response in responses:
        if response.status_code != 200:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["detail"]
    with service.client() as client:
        assert client.get("/health/ready").status_code == 200
        assert client.post("/predict", json=slow_body()).status_code == 200
        assert 'inference_rejected_total{reason="queue_full"}' in client.get("/metrics").text


def test_inference_slower_than_the_timeout_is_504(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    service = serve(
        installed,
        model_path=str(installed.slow_model),
        inference_timeout_s="0.001",
        max_body_bytes="10000000",
    )
    with service.client() as client:
        response = client.post("/predict", json=slow_body())
        assert response.status_code == 504, response.text
        assert response.json()["detail"]
        assert client.get("/health/ready").status_code == 200


def test_batched_requests_each_get_their_own_answers(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    service = serve(installed, max_batch_size="16", max_concurrency="1", max_batch_wait_ms="5")
    with service.client() as client:
        expected = [
            client.post("/predict", json={"instances": [row]}).json()["predictions"][0]
            for row in IRIS
        ]
    assert len(set(expected)) == 3, expected

    picks = [[(i + k) % len(IRIS) for k in range(1 + i % 2)] for i in range(90)]
    responses = post_all(service, [{"instances": [IRIS[j] for j in pick]} for pick in picks])
    for pick, response in zip(picks, responses, strict=True):
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == [expected[j] for j in pick]

    with service.client() as client:
        metrics = client.get("/metrics").text
    batches = {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(("model_batch_size_count", "model_batch_size_sum"))
    }
    rows = len(IRIS) + sum(len(pick) for pick in picks)
    assert batches["model_batch_size_sum"] == rows
    assert batches["model_batch_size_count"] < len(IRIS) + len(picks), (
        "no two requests were ever stacked into one batch"
    )


def serve_long_requests(
    installed: Installed, serve: Callable[..., Service], shutdown_grace_s: str
) -> Service:
    """The slow model, one request at a time, with room for requests of thousands of rows."""
    return serve(
        installed,
        model_path=str(installed.slow_model),
        max_concurrency="1",
        max_rows="20000",
        max_body_bytes="100000000",
        inference_timeout_s="100",
        shutdown_grace_s=shutdown_grace_s,
    )


def test_sigterm_finishes_requests_in_flight_and_exits_0(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    service = serve_long_requests(installed, serve, shutdown_grace_s="100")
    with ThreadPoolExecutor(max_workers=2) as pool:
        # A long request holds the only slot, so the next seven are surely in flight too. It
        # must outlast sending them on a busy machine: 8,000 rows take seconds (3,600 once
        # finished first under load), hence the long inference timeout.
        first = pool.submit(post_all, service, [slow_body(0, 8_000)])
        wait_for(lambda: in_progress(service) >= 1, "the long request to start")
        others = pool.submit(post_all, service, [slow_body(i) for i in range(1, 8)])
        wait_for(lambda: in_progress(service) >= 8, "requests to be in flight")
        code = service.stop(signal.SIGTERM, timeout_s=60)
        responses = first.result(timeout=60) + others.result(timeout=60)
    assert code == 0, service.output()
    assert [r.status_code for r in responses] == [200] * 8, [r.text[:80] for r in responses]
    with pytest.raises(httpx.TransportError), service.client(timeout=5) as client:
        client.get("/health/live")  # stopped: no new work accepted


def test_requests_cut_by_the_end_of_the_grace_period_get_json_503(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    """Requests still running when APP_SHUTDOWN_GRACE_S is over are cut, with a JSON 503 (the
    server's own answer would be a plain-text 500)."""
    service = serve_long_requests(installed, serve, shutdown_grace_s="1")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Three long requests, one at a time (seconds each): the last cannot finish within a
        # second of grace.
        bodies = [slow_body(seed, 16_000) for seed in range(3)]
        answers = pool.submit(post_all, service, bodies)
        wait_for(lambda: in_progress(service) >= 3, "the requests to be in flight")
        service.stop(signal.SIGTERM, timeout_s=60)
        responses = answers.result(timeout=60)
    cut = [r for r in responses if r.status_code != 200]
    assert cut, [r.status_code for r in responses]
    for response in cut:
        assert response.status_code == 503, response.text[:200]
        assert response.json()["detail"].startswith("the service stopped"), response.text
        assert response.headers["retry-after"] == "1"


def test_sigterm_turns_readiness_off_at_once_and_serves_through_the_drain_delay(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    """With APP_DRAIN_DELAY_S the port stays open after SIGTERM: readiness says 503 at once,
    predictions still answer 200, and the process exits 0 once the delay and drain are over."""
    service = serve(installed, drain_delay_s="3")
    os.killpg(service.process.pid, signal.SIGTERM)
    signalled = time.monotonic()
    with service.client(timeout=10) as client:
        wait_for(lambda: client.get("/health/ready").status_code == 503, "readiness 503", 2)
        assert client.get("/health/ready").json() == {"status": "draining"}
        answer = client.post("/predict", json={"instances": [IRIS[0]]})
        assert answer.status_code == 200, answer.text
        assert client.get("/health/live").status_code == 200
    assert service.process.wait(timeout=60) == 0, service.output()
    assert time.monotonic() - signalled >= 3 - 0.5, "stopped before the drain delay was over"


def worker_pids(supervisor: int) -> list[int]:
    """Worker processes started by uvicorn's supervisor (spawned interpreters)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_two_workers_serve_and_stop_cleanly(
    installed: Installed, serve: Callable[..., Service]
) -> None:
    service = serve(installed, "--workers", "2")
    wait_for(lambda: len(worker_pids(service.process.pid)) == 2, "two worker processes")
    responses = post_all(service, [{"instances": [row]} for row in IRIS * 4])
    assert [r.status_code for r in responses] == [200] * len(IRIS) * 4
    assert service.stop(signal.SIGTERM) == 0, service.output()


@pytest.fixture(scope="module")
def default_installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The default variant (jwt, sklearn), installed."""
    return install(tmp_path_factory.mktemp("runtime-default"))


@pytest.fixture(scope="module")
def default_service(default_installed: Installed) -> Iterator[tuple[Service, str]]:
    """The default variant, serving, with a bearer token of scope predict."""
    installed = default_installed
    env = {**os.environ, "APP_SECRET_KEY": SECRET}
    env["APP_DATABASE_URL"] = f"sqlite:///{installed.path / 'data' / 'runtime.db'}"
    add_user(installed.python, installed.path, env, "triton", PASSWORD, "[default]")
    service = installed.start()
    try:
        service.wait_ready()
        with service.client() as client:
            response = client.post("/token", data={"username": "triton", "password": PASSWORD})
            assert response.status_code == 200, response.text
        yield service, response.json()["access_token"]
    finally:
        service.stop()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_triton_client_infers(default_service: tuple[Service, str], dtype: Any) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    service, token = default_service
    headers = {"Authorization": f"Bearer {token}"}
    client = triton.InferenceServerClient(url=f"127.0.0.1:{service.port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        with service.client(headers=headers) as http:
            name = http.get("/model").json()["name"]
        metadata = client.get_model_metadata(name, headers=headers)
        assert metadata["inputs"][0]["shape"] == [-1, 4]
        assert client.is_model_ready(name, headers=headers)

        rows = np.asarray([IRIS[0], IRIS[4], IRIS[8]])
        if dtype is np.int64:
            rows = rows.round()
        datatype = {np.float32: "FP32", np.float64: "FP64", np.int64: "INT64"}[dtype]
        tensor = triton.InferInput("input-0", list(rows.shape), datatype)
        tensor.set_data_from_numpy(rows.astype(dtype), binary_data=False)
        output = triton.InferRequestedOutput("predict", binary_data=False)
        result = client.infer(name, [tensor], outputs=[output], headers=headers, request_id="r1")
        labels = [
            label.decode() if isinstance(label, bytes) else label
            for label in result.as_numpy("predict").tolist()
        ]
        assert len(labels) == 3
        if dtype is not np.int64:
            assert labels == ["setosa", "versicolor", "virginica"]
        assert result.get_response()["id"] == "r1"

        with pytest.raises(InferenceServerException, match="unknown model"):
            client.infer("no-such-model", [tensor], headers=headers)
        with pytest.raises(InferenceServerException):
            client.infer(name, [tensor])  # no credentials
    finally:
        client.close()


@pytest.mark.skipif(
    not (shutil.which("wrk") or shutil.which("hey")), reason="needs wrk or hey (apt)"
)
def test_the_benchmark_script_drives_its_own_service(default_installed: Installed) -> None:
    """bench/load.py (make bench) starts the service with a fresh user and token, loads it,
    probes readiness meanwhile, stops it, and reports numbers that add up."""
    options = ["--json", "-c", "4", "--duration", "2", "--warmup", "1"]
    done = run(
        [str(default_installed.python), "bench/load.py", *options],
        cwd=default_installed.path,
        what=f"{default_installed.what} bench/load.py",
    )
    result = json.loads(done.strip().splitlines()[-1])
    assert result["requests"] > 0 and result["requests_per_s"] > 0, result
    assert result["non_2xx"] == 0 and result["socket_errors"] == 0, result
    assert 0 < result["p50_ms"] <= result["p99_ms"], result
    assert result["probes"] >= 5 and result["probes_failed"] == 0, result
    assert result["probe_max_ms"] > 0, result
    assert 0 < result["ready_s"] < 120, result
    assert 30 < result["peak_rss_mb"] < 4000, result  # a Python process with a model loaded


@pytest.mark.skipif(
    not (shutil.which("wrk") or shutil.which("hey")), reason="needs wrk or hey (apt)"
)
def test_make_tune_compares_batching_off_and_as_sized(default_installed: Installed) -> None:
    """bench/tune.py (make tune) loads a fresh service per setting and connection count, and
    prints what the service chose and a recommendation."""
    done = run(
        [str(default_installed.python), "bench/tune.py", "--duration", "1", "--warmup", "0"],
        cwd=default_installed.path,
        what=f"{default_installed.what} bench/tune.py",
    )
    for connections in (1, 16, 64):
        for mode in ("off", "chosen"):
            assert f"{connections} connections, batching {mode}" in done, done
    assert "measured at start-up: at most" in done, done
    assert "recommendation: " in done, done

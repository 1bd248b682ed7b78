"""The serving runtime: overload, deadline, micro-batching and draining, with stand-in models."""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model.base import Label, ModelError, ModelMetadata, Prediction
from {{ cookiecutter.project_slug }}.model.runner import (
    InferenceRunner,
    InferenceTimeout,
    Overloaded,
)
from {{ cookiecutter.project_slug }}.model.signature import Feature, Signature
from {{ cookiecutter.project_slug }}.model.sizing import BatchPlan
from {{ cookiecutter.project_slug }}.state import ServiceState, drain_on_signals

from .conftest import IRIS_ROW


class Echo:
    """Labels each row with its first value, so callers can tell whose rows they got back.

    ``gate`` holds every call until set, so that requests pile up behind a busy worker.
    """

    def __init__(self) -> None:
        signature = Signature(features=(Feature("id"),), task="regression")
        self.metadata = ModelMetadata("echo", "1", "test", signature)
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[int] = []

    def predict(self, rows: npt.NDArray[np.float64], probabilities: bool) -> Prediction:
        self.gate.wait(timeout=30)
        self.calls.append(len(rows))
        if (rows < 0).any():
            raise ModelError("negative ids", rejected_input=True)
        return Prediction([int(row[0]) for row in rows])


class Recorder:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.rejections: list[str] = []

    def model_loaded(self, predictor: object) -> None:
        pass

    def inference_done(self, seconds: float, rows: int) -> None:
        pass

    def predicted(self, rows: object, prediction: object) -> None:
        pass

    def answered(self, rows: int, timings: object) -> None:
        pass

    def batch_formed(self, size: int) -> None:
        self.batches.append(size)

    def batching_chosen(self, plan: object) -> None:
        pass

    def rejected(self, reason: str) -> None:
        self.rejections.append(reason)


def rows_of(*ids: int) -> npt.NDArray[np.float64]:
    return np.asarray([[float(i)] for i in ids], dtype=np.float64)


def runner_for(
    model: Echo, observer: Recorder, max_batch_size: int = 1, **options: Any
) -> InferenceRunner:
    settings: dict[str, Any] = {
        "batching": BatchPlan(max_batch_size, "settings"),
        "max_rows": 100,
        "max_concurrency": 1,
        "max_queue": 100,
        "timeout_s": 30.0,
        "observer": observer,
        **options,
    }
    return InferenceRunner(model, **settings)


async def wait_until(condition: Callable[[], bool], deadline_s: float = 10) -> None:
    """Poll a condition with a deadline: the tests never sleep a fixed time to synchronise."""
    with anyio.fail_after(deadline_s):
        while not condition():  # noqa: ASYNC110 - a counter to watch, not an event to await
            await anyio.sleep(0.001)


def test_overload_is_rejected_beyond_concurrency_plus_queue() -> None:
    model, observer = Echo(), Recorder()
    model.gate.clear()

    async def main() -> None:
        async with runner_for(model, observer, max_concurrency=1, max_queue=2) as runner:
            results: list[list[Label]] = []

            async def call(i: int) -> None:
                results.append((await runner.predict(rows_of(i))).values)

            async with anyio.create_task_group() as tasks:
                for i in range(3):
                    tasks.start_soon(call, i)
                await wait_until(lambda: runner.pending == 3)
                with pytest.raises(Overloaded) as raised:
                    await runner.predict(rows_of(99))
                assert raised.value.retry_after_s >= 1
                model.gate.set()
            assert sorted(results) == [[0], [1], [2]]

    anyio.run(main)
    assert observer.rejections == ["queue_full"]


def test_deadline_covers_queue_wait_and_inference() -> None:
    model, observer = Echo(), Recorder()
    model.gate.clear()

    async def main() -> None:
        async with runner_for(model, observer, timeout_s=0.05) as runner:
            with pytest.raises(InferenceTimeout):
                await runner.predict(rows_of(1))
            assert runner.pending == 0
            model.gate.set()

    anyio.run(main)
    assert observer.rejections == ["timeout"]


def test_a_cancelled_request_leaves_the_queue() -> None:
    model, observer = Echo(), Recorder()
    model.gate.clear()

    async def main() -> None:
        runner = runner_for(model, observer, max_concurrency=1)
        async with runner, anyio.create_task_group() as tasks:
            tasks.start_soon(runner.predict, rows_of(1))  # holds the only worker
            await wait_until(lambda: runner.pending == 1)
            with anyio.CancelScope() as doomed:
                async with anyio.create_task_group() as waiting:
                    waiting.start_soon(runner.predict, rows_of(2))
                    await wait_until(lambda: runner.pending == 2)
                    doomed.cancel()
            await wait_until(lambda: runner.pending == 1)
            model.gate.set()

    anyio.run(main)
    assert model.calls == [1], "the cancelled request still reached the model"


def test_concurrent_callers_get_their_own_rows_in_order() -> None:
    model, observer = Echo(), Recorder()
    model.gate.clear()
    answers: dict[int, list[Label]] = {}

    async def main() -> None:
        async with runner_for(model, observer, max_batch_size=16, max_batch_wait_ms=1) as runner:

            async def call(caller: int) -> None:
                ids = [caller * 10 + k for k in range(1 + caller % 3)]
                answers[caller] = (await runner.predict(rows_of(*ids))).values

            async with anyio.create_task_group() as tasks:
                for caller in range(60):
                    tasks.start_soon(call, caller)
                await wait_until(lambda: runner.pending == 60)
                model.gate.set()

    anyio.run(main)
    for caller, labels in answers.items():
        assert labels == [caller * 10 + k for k in range(1 + caller % 3)]
    assert len(answers) == 60
    assert sum(observer.batches) == sum(1 + c % 3 for c in range(60))
    assert max(observer.batches) > 3, "queued requests were not stacked into batches"
    assert max(observer.batches) <= 16


def test_an_idle_runner_does_not_wait_to_fill_a_batch() -> None:
    model, observer = Echo(), Recorder()

    async def main() -> None:
        async with runner_for(model, observer, max_batch_size=64, max_batch_wait_ms=60_000) as r:
            with anyio.fail_after(10):  # far below the configured batch wait of a minute
                for i in range(5):
                    assert (await r.predict(rows_of(i))).values == [i]

    anyio.run(main)
    assert observer.batches == [1, 1, 1, 1, 1]


def test_a_batch_size_of_one_runs_every_request_alone() -> None:
    model, observer = Echo(), Recorder()
    model.gate.clear()

    async def main() -> None:
        runner = runner_for(model, observer, max_concurrency=2)
        async with runner, anyio.create_task_group() as tasks:
            for i in range(10):
                tasks.start_soon(runner.predict, rows_of(i, i))
            await wait_until(lambda: runner.pending == 10)
            model.gate.set()

    anyio.run(main)
    assert observer.batches == [2] * 10


def test_a_model_error_reaches_its_caller_as_a_model_error() -> None:
    class Broken(Echo):
        def predict(self, rows: npt.NDArray[np.float64], probabilities: bool) -> Prediction:
            raise RuntimeError("broken model")

    async def main() -> None:
        async with runner_for(Broken(), Recorder()) as runner:
            with pytest.raises(ModelError, match="broken model") as raised:
                await runner.predict(rows_of(1))
            assert not raised.value.rejected_input

    anyio.run(main)


def test_bad_rows_fail_only_their_own_request_of_a_batch() -> None:
    """A batch that fails runs again request by request: the neighbours still get answers."""
    model, observer = Echo(), Recorder()
    model.gate.clear()
    answers: dict[int, Any] = {}

    async def main() -> None:
        async with runner_for(model, observer, max_batch_size=16, max_batch_wait_ms=1) as runner:

            async def call(caller: int) -> None:
                try:
                    rows = rows_of(-1 if caller == 3 else caller)
                    answers[caller] = (await runner.predict(rows)).values
                except ModelError as exc:
                    answers[caller] = exc

            async with anyio.create_task_group() as tasks:
                for caller in range(8):
                    tasks.start_soon(call, caller)
                await wait_until(lambda: runner.pending == 8)
                model.gate.set()

    anyio.run(main)
    assert max(observer.batches) > 1, "the requests were not batched"
    assert isinstance(answers.pop(3), ModelError)
    assert answers == {caller: [caller] for caller in range(8) if caller != 3}


class Gated:
    """Wraps the served model; holds every prediction until ``gate`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.metadata = inner.metadata
        self.gate = threading.Event()

    def predict(self, rows: npt.NDArray[np.float64], probabilities: bool) -> Prediction:
        self.gate.wait(timeout=30)
        answer: Prediction = self.inner.predict(rows, probabilities)
        return answer


@pytest.fixture
def gated(make_settings: Any, auth_headers: dict[str, str]) -> Any:
    """Build a started client whose model waits for a gate; settings given by the caller."""

    def make(**overrides: Any) -> tuple[TestClient, Gated]:
        client = TestClient(create_app(make_settings(**overrides)))
        client.__enter__()
        opened.append(client)
        client.headers.update(auth_headers)
        runner = client.app.state.service.runner  # type: ignore[attr-defined]
        model = Gated(runner.predictor)
        runner.predictor = model
        return client, model

    opened: list[TestClient] = []
    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_start_up_freezes_what_it_loaded_out_of_the_garbage_collectors_way(
    make_settings: Any,
) -> None:
    gc.unfreeze()
    with TestClient(create_app(make_settings())) as started:
        assert started.get("/health/ready").status_code == 200
        assert gc.get_freeze_count() > 0


def test_inference_timeout_is_504_json(gated: Any) -> None:
    client, model = gated(inference_timeout_s=0.05)
    try:
        response = client.post("/predict", json={"instances": [IRIS_ROW]})
        assert response.status_code == 504, response.text
        assert "timeout" in response.json()["detail"]
{%- if cookiecutter.use_open_inference_protocol %}
        name = client.get("/model").json()["name"]
        tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
        response = client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
        assert response.status_code == 504, response.text
        assert set(response.json()) == {"error"}
{%- endif %}
    finally:
        model.gate.set()


def test_overload_is_503_with_retry_after_and_probes_still_answer(gated: Any) -> None:
    client, model = gated(max_concurrency=1, max_queue=0)
    runner = client.app.state.service.runner
    with ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(client.post, "/predict", json={"instances": [IRIS_ROW]})
        try:
            deadline = time.monotonic() + 10
            while runner.pending < 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            assert runner.pending == 1
            assert client.get("/health/ready").status_code == 200
            assert client.get("/health/live").status_code == 200
            response = client.post("/predict", json={"instances": [IRIS_ROW]})
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) >= 1
            assert "busy" in response.json()["detail"]
{%- if cookiecutter.use_open_inference_protocol %}
            name = client.get("/model").json()["name"]
            tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
            response = client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
            assert response.status_code == 503, response.text
            assert set(response.json()) == {"error"}
            assert "Retry-After" in response.headers
{%- endif %}
        finally:
            model.gate.set()
        assert busy.result(timeout=30).status_code == 200


def test_batched_service_answers_each_request_with_its_own_rows(gated: Any) -> None:
    client, model = gated(max_batch_size=16, max_concurrency=1)
    model.gate.set()
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    expected = [client.post("/predict", json={"instances": [r]}).json() for r in rows]
    assert len({e["predictions"][0] for e in expected}) == 3

    def ask(i: int) -> tuple[int, Any]:
        response = client.post("/predict", json={"instances": [rows[i % 3]] * (1 + i % 2)})
        return i, response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        for i, answer in pool.map(ask, range(48)):
            want = expected[i % 3]["predictions"] * (1 + i % 2)
            assert answer["predictions"] == want, answer


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """Stands in for uvicorn's SIGTERM and SIGINT handlers; yields the signals they received."""
    received: list[int] = []

    def handler(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    originals = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, original in originals.items():
            signal.signal(sig, original)


def test_drain_on_signals_turns_readiness_off_then_calls_the_servers_handler(
    server_handler: list[int],
) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    state = ServiceState()
    with drain_on_signals(state):
        signal.raise_signal(signal.SIGTERM)
        assert state.draining
        assert not state.ready
    assert server_handler == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is handler


def test_drain_delay_keeps_serving_not_ready_then_calls_the_servers_handler(
    server_handler: list[int],
) -> None:
    async def main() -> None:
        state = ServiceState()
        with drain_on_signals(state, delay_s=0.2):
            signal.raise_signal(signal.SIGTERM)
            assert state.draining
            assert server_handler == []
            await wait_until(lambda: server_handler == [signal.SIGTERM])

    anyio.run(main)


def test_a_second_signal_stops_without_waiting_for_the_drain_delay(
    server_handler: list[int],
) -> None:
    async def main() -> None:
        with drain_on_signals(ServiceState(), delay_s=60):
            signal.raise_signal(signal.SIGTERM)
            assert server_handler == []
            signal.raise_signal(signal.SIGINT)
            assert server_handler == [signal.SIGINT]

    anyio.run(main)

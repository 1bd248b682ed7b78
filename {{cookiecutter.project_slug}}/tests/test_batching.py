"""Adaptive batching: answers in a batch are the answers alone, and the batch size the service
measures for itself (or is told)."""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris
from sklearn.linear_model import Ridge

from {{ cookiecutter.project_slug }}.api.signature_schema import predict_schema
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model import sizing
from {{ cookiecutter.project_slug }}.model.base import ModelMetadata, Prediction, Predictor, Rows
from {{ cookiecutter.project_slug }}.model.loader import load_predictor
from {{ cookiecutter.project_slug }}.model.runner import InferenceRunner
from {{ cookiecutter.project_slug }}.model.signature import Feature, Signature
from {{ cookiecutter.project_slug }}.model.sizing import BatchPlan, choose, measure
from {{ cookiecutter.project_slug }}.settings import Settings

from .conftest import IRIS_ROW

DEADLINE_S = 30.0
# Numbers may differ in their last digits between a batch and one row: a matrix product adds
# in another order. A model that computes in float32 keeps about 7 digits.
RTOL, ATOL = 1e-5, 1e-7
# This variant's model library: how it saves an artifact, and the artifact's suffix.
framework = importlib.import_module("{{ cookiecutter.project_slug }}.model.{{ cookiecutter.model_framework }}")


class Counted:
    """Wraps a predictor: holds every call until ``gate`` is set, and records each call's rows,
    so that requests pile up and are taken as batches."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.metadata = inner.metadata
        self.gate = threading.Event()
        self.calls: list[int] = []

    def predict(self, rows: Rows, probabilities: bool) -> Prediction:
        self.gate.wait(timeout=DEADLINE_S)
        self.calls.append(len(rows))
        answer: Prediction = self.inner.predict(rows, probabilities)
        return answer


def validated(predictor: Predictor, instances: list[Any]) -> Rows:
    """Rows as the service hands them to the model: parsed and checked against the signature."""
    body = json.dumps({"instances": instances}).encode()
    rows, _ = predict_schema(predictor.metadata, 1000).parse(body)
    return rows


def assert_batched_answers_are_the_answers_alone(
    predictor: Predictor, requests: list[list[Any]]
) -> None:
    """Each request (a list of instances) answered alone, then all of them at once through a
    batching runner; every request must get its own answers: the same labels, and numbers
    (values, probabilities for those that asked) to within float rounding, since a matrix
    product over a batch adds in another order than over one row (see RTOL)."""
    bodies = [validated(predictor, instances) for instances in requests]
    asks = [i % 2 == 0 and predictor.metadata.signature.probabilities for i in range(len(bodies))]
    alone = [predictor.predict(rows, ask) for rows, ask in zip(bodies, asks, strict=True)]
    model = Counted(predictor)
    answers: dict[int, Prediction] = {}

    async def main() -> None:
        plan = BatchPlan(64, "settings")
        runner = InferenceRunner(
            model,
            max_rows=1000,
            max_concurrency=1,
            max_queue=1000,
            timeout_s=DEADLINE_S,
            batching=plan,
        )

        async def ask(i: int) -> None:
            answers[i] = await runner.predict(bodies[i], asks[i])

        async with runner, anyio.create_task_group() as tasks:
            for i in range(len(bodies)):
                tasks.start_soon(ask, i)
            with anyio.fail_after(DEADLINE_S):
                while runner.pending < len(bodies):  # noqa: ASYNC110 - a counter to watch
                    await anyio.sleep(0.001)
            model.gate.set()

    anyio.run(main)
    assert sum(model.calls) == sum(len(rows) for rows in bodies)
    assert len(model.calls) < len(bodies), f"no two requests shared a model call: {model.calls}"
    for i, expected in enumerate(alone):
        got = answers[i]
        if all(isinstance(v, float) for v in expected.values):  # a regressor's numbers
            assert np.allclose(got.values, expected.values, rtol=RTOL, atol=ATOL), i
        else:
            assert got.values == expected.values, (i, got, expected)
        if expected.probabilities is None:
            assert got.probabilities is None
        else:
            assert got.probabilities is not None
            assert np.allclose(got.probabilities, expected.probabilities, rtol=RTOL, atol=ATOL)


def iris_requests() -> list[list[Any]]:
    """Requests of one to three iris rows, each different from its neighbours."""
    data = load_iris().data.tolist()
    return [[data[(7 * i + k) % len(data)] for k in range(1 + i % 3)] for i in range(30)]


def test_the_demo_model_answers_in_a_batch_as_alone() -> None:
    assert_batched_answers_are_the_answers_alone(load_predictor(None, "demo"), iris_requests())


def test_a_regressor_answers_in_a_batch_as_alone(tmp_path: Path) -> None:
    iris = load_iris()
    artifact = tmp_path / f"ridge{framework.SUFFIX}"
    artifact.write_bytes(framework.export(Ridge().fit(iris.data, iris.target * 1.5)))
    predictor = load_predictor(artifact, "ridge")
    assert predictor.metadata.signature.task == "regression"
    assert_batched_answers_are_the_answers_alone(predictor, iris_requests())


# --- the self-sizing --------------------------------------------------------------------------


class Clock:
    """A fake clock that only the fake model moves: the sizing is timed without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Costly:
    """A model that costs ``fixed`` seconds per call plus ``per_row`` per row (on the clock)."""

    def __init__(self, clock: Clock, fixed: float, per_row: float) -> None:
        self.clock, self.fixed, self.per_row = clock, fixed, per_row
        signature = Signature((Feature("x"),), "regression")
        self.metadata = ModelMetadata("costly", "1", "test", signature)
        self.sizes: list[int] = []

    def predict(self, rows: Rows, probabilities: bool) -> Prediction:
        self.sizes.append(len(rows))
        self.clock.now += self.fixed + self.per_row * len(rows)
        return Prediction([0.0] * len(rows))


def plan_for(fixed: float, per_row: float) -> tuple[dict[int, float], Costly]:
    clock = Clock()
    model = Costly(clock, fixed, per_row)
    return measure(model, np.array([[1.0]]), clock), model


def test_a_model_with_a_fixed_cost_per_call_batches_up_to_where_the_gain_stops() -> None:
    # 300 us per call, 1 us per row: per row 301, 38.5, 10.4, 3.3 us.
    per_row, model = plan_for(300e-6, 1e-6)
    assert sorted(per_row) == [1, 8, 32, 128]
    assert choose(per_row) == 128
    assert set(model.sizes) == {1, 8, 32, 128}
    # 20 us per call, 10 us per row: per row 30, 12.5, 10.6, 10.2 us: 32 is within a tenth.
    assert choose(plan_for(20e-6, 10e-6)[0]) == 32


def test_a_model_whose_rows_cost_the_same_in_a_batch_is_not_batched() -> None:
    per_row, _ = plan_for(0.0, 100e-6)
    assert choose(per_row) == 1
    assert choose({1: 1e-4, 8: 0.95e-4, 32: 0.97e-4}) == 1  # a 5% gain is noise, not a reason


def test_a_slow_model_stops_the_sizing_early() -> None:
    """Sizes whose call would exceed the budget are never tried: no seconds added to start."""
    per_row, model = plan_for(0.0, 5e-3)  # 5 ms per row: 8 rows 40 ms, 32 rows 160 ms
    assert max(model.sizes) == 8 and sorted(per_row) == [1, 8]
    assert model.clock.now < 1.0
    per_row, model = plan_for(0.2, 0.0)  # 200 ms per call: one call at one row, then stop
    assert model.sizes == [1] and choose(per_row) == 1


def test_nothing_measured_means_batching_off() -> None:
    assert choose({}) == 1 and choose({1: 1e-4}) == 1


def test_a_plan_describes_itself_in_microseconds() -> None:
    plan = BatchPlan(32, "measured", {1: 300e-6, 8: 40e-6, 32: 11e-6})
    assert plan.describe() == {
        "max_batch_size": 32,
        "source": "measured",
        "per_row_us": {"1": 300.0, "8": 40.0, "32": 11.0},
    }


# What any variant requires; a variant ignores the settings it does not have.
REQUIRED: dict[str, Any] = {
    "secret_key": "test-secret-key-that-is-long-enough-0123456789",
    "oidc_issuer": "https://issuer.example",
    "oidc_audience": "test",
}


def test_auto_and_empty_mean_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("auto", "AUTO", ""):
        monkeypatch.setenv("APP_MAX_BATCH_SIZE", value)
        assert Settings(_env_file=None, **REQUIRED).max_batch_size is None
    monkeypatch.setenv("APP_MAX_BATCH_SIZE", "16")
    assert Settings(_env_file=None, **REQUIRED).max_batch_size == 16


@pytest.fixture
def served(make_settings: Any, auth_headers: dict[str, str]) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def serve(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), headers=auth_headers)
        client.__enter__()
        opened.append(client)
        return client

    yield serve
    for client in opened:
        client.__exit__(None, None, None)


def test_model_reports_the_batch_size_it_measured(served: Callable[..., TestClient]) -> None:
    batching = served(max_batch_size=None).get("/model").json()["batching"]
    assert batching["source"] == "measured"
    assert set(batching["per_row_us"]) <= {"1", "8", "32", "128"}
    assert "1" in batching["per_row_us"] and len(batching["per_row_us"]) >= 2
    assert batching["max_batch_size"] in {1, 8, 32, 128}
    assert batching["max_batch_size"] == choose(
        {int(n): us for n, us in batching["per_row_us"].items()}
    )


def test_the_settings_override_the_measurement(served: Callable[..., TestClient]) -> None:
    client = served(max_batch_size=3)
    assert client.get("/model").json()["batching"] == {
        "max_batch_size": 3,
        "source": "settings",
        "per_row_us": {},
    }
    response = client.post("/predict", json={"instances": [IRIS_ROW]})
    assert response.status_code == 200, response.text


@pytest.fixture
def root_logger_restored() -> Iterator[None]:
    """Starting an app at info level reconfigures logging; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logger_restored")
def test_the_model_ready_line_carries_the_choice(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO),
        TestClient(create_app(make_settings(log_level="info", max_batch_size=None))),
    ):
        pass
    (ready,) = [r for r in caplog.records if r.getMessage() == "model ready"]
    batching: dict[str, Any] = ready.batching  # type: ignore[attr-defined]
    assert batching["source"] == "measured" and batching["max_batch_size"] >= 1
    assert "1" in batching["per_row_us"]


def test_batching_is_on_by_default_and_never_waits() -> None:
    assert Settings.model_fields["max_batch_size"].default is None
    assert Settings.model_fields["max_batch_wait_ms"].default == 0
    assert sizing.SIZES == (1, 8, 32, 128)

"""Prometheus metrics: counted by route template, one shape for one and for many workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model.loader import SUFFIX
from {{ cookiecutter.project_slug }}.observability.multiprocess import (
    ENV,
    prepare_multiprocess_dir,
)

from .conftest import IRIS_ROW
from .test_versions import publish, reload, train


def _sample(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    before = client.get("/metrics").text
    route = 'http_requests_total{method="POST",route="/predict",status="200"}'
    for _ in range(3):
        assert client.post("/predict", json={"instances": [IRIS_ROW, IRIS_ROW]}).status_code == 200
    client.get("/no/such/path/12345")
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    assert _sample(after.text, route) - _sample(before, route) == 3
    assert "/no/such/path/12345" not in after.text
    assert 'route="unmatched"' in after.text
    assert (
        _sample(after.text, "model_predictions_total") - _sample(before, "model_predictions_total")
        == 6
    )


def test_model_info_and_metric_names(client: TestClient) -> None:
    text = client.get("/metrics").text
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_progress",
        "model_inference_duration_seconds_bucket",
        "model_batch_size_bucket",
        "model_info{",
    ):
        assert name in text, name
    assert 'framework="{{ cookiecutter.model_framework }}"' in text


def _model_info(text: str, version: str) -> float:
    found = [line for line in text.splitlines() if line.startswith("model_info{")]
    return _sample("\n".join(line for line in found if f'version="{version}"' in line), "model")


def test_model_info_follows_a_new_version_and_reloads_are_counted(
    make_settings: Any, tmp_path: Path
) -> None:
    artifact = tmp_path / f"iris{SUFFIX}"
    publish(artifact, train(1.0), "m1")
    with TestClient(create_app(make_settings(model_path=artifact))) as client:
        before = client.get("/metrics").text
        assert _model_info(before, "m1") == 1
        publish(artifact, train(0.5), "m2")
        assert reload(client).result == "loaded"
        after = client.get("/metrics").text
    assert (_model_info(after, "m1"), _model_info(after, "m2")) == (0, 1)
    loaded = 'model_reloads_total{result="loaded"}'
    assert _sample(after, loaded) - _sample(before, loaded) == 1
    assert 'model_reloads_total{result="refused"}' in after
    assert _sample(after, "model_load_duration_seconds_count") >= 1
    assert _sample(after, "model_version_serving_since_seconds") > 0


def test_the_batch_size_limit_is_the_one_model_reports(client: TestClient) -> None:
    limit = client.get("/model").json()["batching"]["max_batch_size"]
    assert _sample(client.get("/metrics").text, "model_batch_size_limit ") == limit


def test_metrics_need_no_credentials(anonymous: TestClient) -> None:
    assert anonymous.get("/metrics").status_code == 200
    assert "/metrics" not in anonymous.get("/openapi.json").json()["paths"]


def test_rejection_series_exist_before_the_first_rejection(anonymous: TestClient) -> None:
    text = anonymous.get("/metrics").text
    assert 'inference_rejected_total{reason="queue_full"} 0.0' in text
    assert 'inference_rejected_total{reason="timeout"} 0.0' in text
    assert 'inference_rejected_total{reason="rate_limited"}' in text


def test_quota_refusals_are_counted(make_settings: Any, auth_headers: dict[str, str]) -> None:
    series = 'inference_rejected_total{reason="rate_limited"}'
    with TestClient(create_app(make_settings(rate_limit="1/hour"))) as client:
        before = _sample(client.get("/metrics").text, series)
        statuses = [
            client.post("/predict", json={"instances": [IRIS_ROW]}, headers=auth_headers)
            for _ in range(3)
        ]
        assert [response.status_code for response in statuses] == [200, 429, 429]
        assert _sample(client.get("/metrics").text, series) - before == 2


def test_made_up_methods_share_one_label(anonymous: TestClient) -> None:
    assert anonymous.request("BREW", "/predict").status_code == 405
    text = anonymous.get("/metrics").text
    assert 'http_requests_total{method="other",route="/predict",status="405"} 1.0' in text
    assert "BREW" not in text


def test_output_parses_with_the_declared_types(anonymous: TestClient) -> None:
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(anonymous.get("/metrics").text)
    }
    assert families["http_requests"] == "counter"
    assert families["http_request_duration_seconds"] == "histogram"
    assert families["http_requests_in_progress"] == "gauge"
    assert families["model_inference_duration_seconds"] == "histogram"
    assert families["model_predictions"] == "counter"
    assert families["model_batch_size"] == "histogram"
    assert families["inference_rejected"] == "counter"
    assert families["model_info"] == "gauge"
    assert not [name for name in families if name.endswith("_created")]


def test_in_progress_counts_the_scrape_itself_only(anonymous: TestClient) -> None:
    for _ in range(3):
        anonymous.get("/health/live")
    assert _sample(anonymous.get("/metrics").text, "http_requests_in_progress ") == 1


def test_one_worker_needs_no_multiprocess_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert prepare_multiprocess_dir(1) is None
    assert ENV not in os.environ


def test_several_workers_get_a_fresh_shared_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set, then removed, through monkeypatch: the variable the code sets is undone afterwards,
    # or every later test's /metrics would read the (empty) multiprocess files.
    monkeypatch.setenv(ENV, "")
    monkeypatch.delenv(ENV)
    directory = prepare_multiprocess_dir(2)
    assert directory is not None and directory.is_dir()
    assert os.environ[ENV] == str(directory)
    assert not list(directory.iterdir())


def test_a_chosen_dir_is_emptied_of_stale_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old counts")
    keep = tmp_path / "README"
    keep.write_text("not ours")
    monkeypatch.setenv(ENV, str(tmp_path))
    assert prepare_multiprocess_dir(1) == tmp_path
    assert not stale.exists()
    assert keep.exists()

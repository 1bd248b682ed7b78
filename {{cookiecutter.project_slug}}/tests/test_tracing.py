"""Traces: one span tree per request, the caller's trace continued, trace ids in the logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.observability.logging import JsonFormatter
from {{ cookiecutter.project_slug }}.observability.tracing import (
    ServerSpanMiddleware,
    TracingObserver,
    tracer_provider,
)

from .conftest import IRIS_ROW

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every finished span of this process, kept in memory (the SDK's own test exporter)."""
    provider = tracer_provider()
    assert provider is not None
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@pytest.fixture
def batching(make_settings: Any, auth_headers: dict[str, str]) -> Iterator[TestClient]:
    """The service with micro-batching on and the access log at info."""
    settings = make_settings(max_batch_size=8, log_level="info")
    with TestClient(create_app(settings), headers=auth_headers) as client:
        yield client


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> dict[str, ReadableSpan]:
    assert parent.context is not None
    return {
        s.name: s
        for s in spans
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    }


def server_span(spans: list[ReadableSpan]) -> ReadableSpan:
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    return server


def test_predict_is_one_span_tree(batching: TestClient, spans: InMemorySpanExporter) -> None:
    assert batching.post("/predict", json={"instances": [IRIS_ROW, IRIS_ROW]}).status_code == 200
    finished = list(spans.get_finished_spans())
    server = server_span(finished)
    assert server.name == "POST /predict"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/predict"
    assert server.attributes["http.response.status_code"] == 200
    under_server = children(finished, server)
{%- if cookiecutter.auth != "none" %}
    assert {"auth", "inference"} <= set(under_server), sorted(under_server)
    assert under_server["auth"].attributes == {"auth.scope": "predict"}
{%- else %}
    assert "inference" in under_server, sorted(under_server)
{%- endif %}
    inference = under_server["inference"]
    assert inference.attributes is not None and inference.attributes["rows"] == 2
    assert inference.attributes["model.version"] == "iris-1"
    stages = children(finished, inference)
    assert set(stages) == {"inference.queue", "inference.batch"}
    batch = stages["inference.batch"]
    assert batch.attributes == {"batch.rows": 2, "batch.requests": 1}
    (predict,) = children(finished, batch).values()
    assert predict.name == "model.predict"
    assert predict.attributes is not None
    assert predict.attributes["model.name"] and predict.attributes["rows"] == 2
    # Each stage inside its parent, in order: queue, then batch, the model call within it.
    queue = stages["inference.queue"]
    times = [(s.start_time or 0, s.end_time or 0) for s in (inference, queue, batch, predict)]
    (i0, i1), (q0, q1), (b0, b1), (p0, p1) = times
    assert i0 <= q0 <= q1 <= b0 <= p0 <= p1 <= b1 <= i1
    assert server.context is not None
    assert {s.context.trace_id for s in finished if s.context} == {server.context.trace_id}


def test_the_callers_trace_is_continued(batching: TestClient, spans: InMemorySpanExporter) -> None:
    parent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    response = batching.post(
        "/predict", json={"instances": [IRIS_ROW]}, headers={"traceparent": parent}
    )
    assert response.status_code == 200
    server = server_span(list(spans.get_finished_spans()))
    assert server.context is not None and server.parent is not None
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert f"{server.parent.span_id:016x}" == CALLER_SPAN


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The access log's lines, as the JSON formatter writes them."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("{{ cookiecutter.project_slug }}.access")
    access.addHandler(handler)
    yield written
    access.removeHandler(handler)


def logged(written: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(text) for text in written.getvalue().splitlines()]


def test_a_caller_that_does_not_sample_gets_no_spans_but_its_trace_id_in_the_log(
    batching: TestClient, spans: InMemorySpanExporter, access_lines: io.StringIO
) -> None:
    parent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"
    response = batching.post(
        "/predict", json={"instances": [IRIS_ROW]}, headers={"traceparent": parent}
    )
    assert response.status_code == 200
    assert list(spans.get_finished_spans()) == []
    (line,) = logged(access_lines)
    assert line["trace_id"] == CALLER_TRACE


def test_log_lines_carry_the_trace(
    batching: TestClient, spans: InMemorySpanExporter, access_lines: io.StringIO
) -> None:
    assert batching.post("/predict", json={"instances": [IRIS_ROW]}).status_code == 200
    (line,) = logged(access_lines)
    server = server_span(list(spans.get_finished_spans()))
    assert server.context is not None
    assert line["route"] == "/predict"
    assert line["trace_id"] == f"{server.context.trace_id:032x}"
    assert line["span_id"] == f"{server.context.span_id:016x}"


def test_the_server_span_describes_the_request(
    batching: TestClient, spans: InMemorySpanExporter
) -> None:
    response = batching.get("/model", headers={"User-Agent": "span-test"})
    assert response.status_code == 200
    server = server_span(list(spans.get_finished_spans()))
    assert server.name == "GET /model"
    assert server.status.status_code == StatusCode.UNSET
    assert server.attributes is not None
    assert {
        key: server.attributes[key]
        for key in ("http.request.method", "url.path", "http.route", "user_agent.original")
    } == {
        "http.request.method": "GET",
        "url.path": "/model",
        "http.route": "/model",
        "user_agent.original": "span-test",
    }
    assert server.attributes["http.response.status_code"] == 200
    spans.clear()
    assert batching.get("/no/such/path").status_code == 404
    unmatched = server_span(list(spans.get_finished_spans()))
    assert unmatched.name == "GET"  # a path no route matched: no template to name it after
    assert unmatched.attributes is not None and "http.route" not in unmatched.attributes


def test_an_unexpected_error_marks_the_span(
    make_settings: Any,
    auth_headers: dict[str, str],
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(make_settings())
    with TestClient(app, headers=auth_headers, raise_server_exceptions=False) as client:

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("broken runner")

        monkeypatch.setattr(app.state.service.runner, "predict", broken)
        response = client.post("/predict", json={"instances": [IRIS_ROW]})
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error"
    server = server_span(list(spans.get_finished_spans()))
    assert server.status.status_code == StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 500
    assert server.attributes["error.type"] == "RuntimeError"
    assert [event.name for event in server.events] == ["exception"]


def test_a_refused_request_is_traced_too(batching: TestClient, spans: InMemorySpanExporter) -> None:
    assert batching.post("/predict", json={"instances": [[1, 2]]}).status_code == 422
    server = server_span(list(spans.get_finished_spans()))
    assert server.name == "POST /predict"
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 422
    assert "inference" not in children(list(spans.get_finished_spans()), server)


def test_otel_sdk_disabled_installs_nothing(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = create_app(make_settings())
    assert not isinstance(app.state.service.observer, TracingObserver)
    assert not [m for m in app.user_middleware if m.cls is ServerSpanMiddleware]  # type: ignore[comparison-overlap]
{%- if cookiecutter.use_prometheus %}


def test_latency_samples_link_to_their_trace(
    batching: TestClient, spans: InMemorySpanExporter
) -> None:
    parent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    response = batching.post(
        "/predict", json={"instances": [IRIS_ROW]}, headers={"traceparent": parent}
    )
    assert response.status_code == 200
    plain = batching.get("/metrics")
    assert "trace_id" not in plain.text  # the Prometheus text format has no exemplars
    open_metrics = batching.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    linked = [
        line
        for line in open_metrics.text.splitlines()
        if line.startswith("http_request_duration_seconds_bucket{")
        and 'route="/predict"' in line
        and f'trace_id="{CALLER_TRACE}"' in line
    ]
    assert linked, open_metrics.text[-2000:]
{%- endif %}

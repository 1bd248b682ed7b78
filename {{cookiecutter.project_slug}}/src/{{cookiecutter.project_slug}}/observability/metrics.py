"""Prometheus metrics for HTTP traffic and for the model, correct with any number of workers.

Buckets: HTTP and inference latency span 1 ms to 30 s, which covers a linear model answering in
a millisecond as well as a large ensemble or a slow call running into the inference timeout;
the alert rules' p99 threshold (500 ms) sits on a bucket boundary. Batch sizes are powers of two
up to 1024, just above the default APP_MAX_ROWS.

With several workers (``PROMETHEUS_MULTIPROC_DIR`` set, see ``multiprocess.py``) every process
writes its values to files there and ``/metrics`` sums them: counters and histograms over all
processes ever started in this run, ``http_requests_in_progress`` over live processes only,
``model_info`` as the maximum (1).
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..model.base import ModelMetadata, Prediction, Predictor, Rows
from ..model.batching import Timings
from ..model.sizing import BatchPlan
from ..settings import Settings
from ..state import ServiceState
from ..wiring import Lifespan, on_exit
from .logging import CURRENT_TRACE
from .model_metrics import ModelMonitor, load_reference
from .multiprocess import ENV
from .reference import default_path
from .routes import route_template

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# The reasons the inference runner gives; their series exist (at 0) before the first rejection,
# so that rate() and alerts see a value instead of nothing.
REJECTION_REASONS = ("queue_full", "timeout", "rate_limited")
# Any other method a client makes up is counted as "other", so it cannot add series at will.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Single-process output would otherwise carry a *_created series per counter that the
# multiprocess output lacks; one shape for both keeps dashboards and alerts simple.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request start to the end of the response.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress", "HTTP requests being handled.", multiprocess_mode="livesum"
)
INFERENCE_DURATION = Histogram(
    "model_inference_duration_seconds",
    "Time the model spent in one predict call (one batch).",
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter("model_predictions", "Rows the model predicted.")
BATCH_SIZE = Histogram("model_batch_size", "Rows per predict call.", buckets=BATCH_BUCKETS)
REJECTED = Counter("inference_rejected", "Inference requests refused.", ["reason"])
# Every worker sizes its batches on its own at start-up; "max" shows the largest cap of those
# in this run when several workers write their values.
BATCH_SIZE_LIMIT = Gauge(
    "model_batch_size_limit",
    "Most rows one model call takes (1: batching off), measured at start-up or set.",
    multiprocess_mode="max",
)
MODEL_INFO = Gauge(
    "model_info",
    "The served model (value 1).",
    ["name", "version", "framework"],
    multiprocess_mode="max",
)
MODEL_RELOADS = Counter(
    "model_reloads", "Checks of the model's source that found a new version.", ["result"]
)
MODEL_LOAD_DURATION = Histogram(
    "model_load_duration_seconds",
    "Time to fetch, load, warm up and check a model version.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
# "max" across workers: the latest swap of any of them.
SERVING_SINCE = Gauge(
    "model_version_serving_since_seconds",
    "Unix time the serving model version started serving.",
    multiprocess_mode="max",
)
RELOAD_RESULTS = ("loaded", "refused", "failed")

_REJECTED_BY_REASON = {reason: REJECTED.labels(reason=reason) for reason in REJECTION_REASONS}


class PrometheusObserver:
    """Feeds the inference runner's measurements into the model metrics."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._monitor: ModelMonitor | None = None

    def model_loaded(self, predictor: Predictor) -> None:
        """Label the model, and load the reference its inputs are compared with."""
        record_model(predictor.metadata)
        settings = self._settings
        path = settings.reference_path
        artifact = predictor.metadata.artifact
        if path is None and artifact is not None:
            path = default_path(artifact)
        found = load_reference(predictor, path, explicit=settings.reference_path is not None)
        self._monitor = ModelMonitor(predictor, found, settings.monitor_max_features)

    def predicted(self, rows: Rows, prediction: Prediction) -> None:
        if self._monitor is not None:
            self._monitor.observe(rows, prediction)

    def answered(self, rows: int, timings: Timings) -> None:
        pass

    def inference_done(self, seconds: float, rows: int) -> None:
        INFERENCE_DURATION.observe(seconds)
        PREDICTIONS.inc(rows)

    def batch_formed(self, size: int) -> None:
        BATCH_SIZE.observe(size)

    def batching_chosen(self, plan: BatchPlan) -> None:
        BATCH_SIZE_LIMIT.set(plan.max_batch_size)

    def rejected(self, reason: str) -> None:
        counter = _REJECTED_BY_REASON.get(reason)
        (counter or REJECTED.labels(reason=reason)).inc()


class VersionMetrics:
    """model_info follows the serving version; reloads and load times are counted."""

    def __init__(self) -> None:
        for result in RELOAD_RESULTS:  # at 0 before the first, for rate() and alerts
            MODEL_RELOADS.labels(result=result)

    def version_serving(self, current: ModelMetadata, previous: ModelMetadata | None) -> None:
        if previous is not None and previous.version != current.version:
            MODEL_INFO.labels(
                name=previous.name, version=previous.version, framework=previous.framework
            ).set(0)
        record_model(current)
        SERVING_SINCE.set(time.time())

    def reload_done(self, result: str, seconds: float | None) -> None:
        MODEL_RELOADS.labels(result=result).inc()
        if seconds is not None:
            MODEL_LOAD_DURATION.observe(seconds)


def record_model(metadata: ModelMetadata) -> None:
    MODEL_INFO.labels(
        name=metadata.name, version=metadata.version, framework=metadata.framework
    ).set(1)


def mark_worker_exit() -> None:
    """Drop this process's live gauges from the shared files when it stops."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class MetricsMiddleware:
    """Count and time every HTTP request, labelled by route template (pure ASGI).

    The labelled children are looked up once per (method, route, status) and kept, so a request
    costs two dictionary lookups rather than the client library's label validation and locking.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            HTTP_IN_PROGRESS.dec()
            requests, duration = self._children(scope["method"], route_template(scope), status)
            requests.inc()
            duration.observe(time.perf_counter() - started, _exemplar())

    def _children(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        if method not in KNOWN_METHODS:
            method = "other"
        key = (method, route, status)
        children = self._series.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_DURATION.labels(method, route),
            )
            self._series[key] = children
        return children


def _exemplar() -> dict[str, str] | None:
    """A sampled trace of the current request, for its latency sample to point to. Exemplars
    reach scrapers that ask for OpenMetrics, from a single worker process: the multiprocess
    files do not keep them."""
    ids = CURRENT_TRACE[0]() if CURRENT_TRACE else None
    return {"trace_id": ids.trace_id} if ids is not None and ids.sampled else None


def _collecting_registry() -> CollectorRegistry:
    if not os.environ.get(ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


async def metrics_endpoint(request: Request) -> Response:
    """Every worker process together, in Prometheus text or, when asked, OpenMetrics."""
    encode, media_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(_collecting_registry()), media_type=media_type)


def install(app: FastAPI, settings: Settings) -> Lifespan:
    """Count requests and inferences, and serve them on /metrics (no credentials)."""
    state: ServiceState = app.state.service
    state.observer = PrometheusObserver(settings)
    state.version_events = VersionMetrics()
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.add_middleware(MetricsMiddleware)
    return on_exit(mark_worker_exit)

"""Prometheus metrics for HTTP traffic and for the model, correct with any number of workers.

Buckets: HTTP and inference latency span 1 ms to 30 s, which covers a linear model answering in
a millisecond as well as a large ensemble or a slow network call timing out. Batch sizes are
powers of two up to the largest batch the runner forms.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..model.base import ModelMetadata
from .multiprocess import ENV
from .routes import route_template

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

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
MODEL_INFO = Gauge(
    "model_info",
    "The served model (value 1).",
    ["name", "version", "framework"],
    multiprocess_mode="max",
)


class PrometheusObserver:
    """Feeds the inference runner's measurements into the model metrics."""

    def inference_done(self, seconds: float, rows: int) -> None:
        INFERENCE_DURATION.observe(seconds)
        PREDICTIONS.inc(rows)

    def batch_formed(self, size: int) -> None:
        BATCH_SIZE.observe(size)

    def rejected(self, reason: str) -> None:
        REJECTED.labels(reason=reason).inc()


def record_model(metadata: ModelMetadata) -> None:
    MODEL_INFO.labels(
        name=metadata.name, version=metadata.version, framework=metadata.framework
    ).set(1)


def mark_worker_exit() -> None:
    """Drop this process's live gauges from the shared files when it stops."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class MetricsMiddleware:
    """Count and time every HTTP request, labelled by route template (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            method, route = scope["method"], route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


def _registry() -> CollectorRegistry:
    if not os.environ.get(ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text for every worker process together."""
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)

"""Distributed traces: a span per request, with the credentials check, the queue, the batch and
the model call under it, exported over OTLP; the trace and span ids in every JSON log line.

The setup comes from OpenTelemetry's standard variables (``OTEL_SERVICE_NAME``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``..._TRACES_ENDPOINT``, ``OTEL_TRACES_SAMPLER`` and
``..._ARG``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_PROPAGATORS``; OTLP over HTTP/protobuf). Each
request gets a server span, named after its route template, that continues the caller's trace
(W3C ``traceparent``); under it:

- ``auth``: the credentials check;
- ``inference``, with ``inference.queue`` (waiting for an inference thread), then
  ``inference.batch`` (the stacked batch this request rode in: its rows and requests) and
  ``model.predict`` (the model's own call) under it. These run in an inference thread; they are
  recorded afterwards, on the request's own task, from the times the runner noted, so the
  thread never needs the request's context.

A request the sampler leaves out pays for that decision and nothing more: its span is current,
so its log lines name the trace, but nothing is recorded. ``OTEL_SDK_DISABLED=true`` turns all
of it off: nothing is installed, no request pays for it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.security.base import SecurityBase
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..access import Guard, Principal
from ..model.base import ModelMetadata, Prediction, Predictor, Rows
from ..model.batching import Timings
from ..model.runner import InferenceObserver, NullObserver
from ..model.sizing import BatchPlan
from ..settings import Settings
from ..state import ServiceState
from ..wiring import Lifespan, on_exit
from .logging import CURRENT_TRACE, TraceIds
from .routes import UNMATCHED, route_template

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
FLUSH_TIMEOUT_MS = 5_000


def tracer_provider() -> TracerProvider | None:
    """The process's SDK provider: one already set (tests, an agent), or one made from the
    ``OTEL_*`` variables; None when ``OTEL_SDK_DISABLED`` is true."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider()  # sampler and resource (service name) from OTEL_* variables
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter == "otlp" and endpoint:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        # Spans are still made, so logs carry trace ids; they are just not sent anywhere.
        logger.info("tracing: no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); spans not exported")
    trace.set_tracer_provider(provider)
    return provider


def current_trace() -> TraceIds | None:
    """The current span's trace, for log lines and exemplars; None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return TraceIds(
        f"{context.trace_id:032x}", f"{context.span_id:016x}", context.trace_flags.sampled
    )


class TracedGuard:
    """The installed guard, its check in an ``auth`` span."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    @property
    def scheme(self) -> SecurityBase:
        return self._guard.scheme

    async def authorize(self, request: Request, scope: str) -> Principal:
        if not trace.get_current_span().is_recording():  # not sampled: no span to add to
            return await self._guard.authorize(request, scope)
        with tracer.start_as_current_span("auth", attributes={"auth.scope": scope}):
            return await self._guard.authorize(request, scope)


class TracingObserver:
    """Passes every measurement on to the observer it wraps (metrics, say), and turns each
    answered request's timings into spans under the request's own span."""

    def __init__(self, inner: InferenceObserver | None) -> None:
        self._inner = inner or NullObserver()
        self._model: dict[str, str | int] = {}

    def model_loaded(self, predictor: Predictor) -> None:
        meta: ModelMetadata = predictor.metadata
        self._model = {
            "model.name": meta.name,
            "model.version": meta.version,
            "model.framework": meta.framework,
        }
        self._inner.model_loaded(predictor)

    def inference_done(self, seconds: float, rows: int) -> None:
        self._inner.inference_done(seconds, rows)

    def predicted(self, rows: Rows, prediction: Prediction) -> None:
        self._inner.predicted(rows, prediction)

    def batch_formed(self, size: int) -> None:
        self._inner.batch_formed(size)

    def batching_chosen(self, plan: BatchPlan) -> None:
        self._inner.batching_chosen(plan)

    def rejected(self, reason: str) -> None:
        self._inner.rejected(reason)

    def answered(self, rows: int, timings: Timings) -> None:
        self._inner.answered(rows, timings)
        if not trace.get_current_span().is_recording():
            return  # not sampled, or no request span at all
        with _span("inference", timings.queued, time.time_ns(), {**self._model, "rows": rows}):
            with _span("inference.queue", timings.queued, timings.batch_started, {}):
                pass
            batch = {"batch.rows": timings.batch_rows, "batch.requests": timings.batch_requests}
            with _span("inference.batch", timings.batch_started, timings.batch_ended, batch):
                model = {**self._model, "rows": timings.batch_rows}
                with _span("model.predict", timings.predict_started, timings.predict_ended, model):
                    pass


@contextmanager
def _span(name: str, start: int, end: int, attributes: Attributes) -> Iterator[None]:
    """A span that happened already, from ``start`` to ``end`` (ns), as the current span."""
    span = tracer.start_span(name, start_time=start, attributes=attributes)
    try:
        with trace.use_span(span, end_on_exit=False):
            yield
    finally:
        span.end(end_time=end)


class ServerSpanMiddleware:
    """Each request's server span, current while the request is served (the access log line
    included), named after the route template once the route is known.

    FastAPI can open this span itself, but its built-in telemetry reads the caller's headers,
    the server address and the span's attributes for every request before the sampler decides.
    Measured on the demo model, that cost 11 to 19% of the requests per second at 1% sampling
    (the template README, "Benchmarks"), so ``main.py`` turns it off and this middleware asks
    the sampler first: a request it leaves out costs the decision and making its span current
    (about 13 µs in-process, of a ~450 µs request).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The headers the configured propagators read (W3C traceparent, tracestate, baggage).
        fields = propagate.get_global_textmap().fields
        self._propagated = frozenset(field.lower().encode("latin-1") for field in fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = tracer.start_span(scope["method"], self._caller(scope), SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span))
        try:
            if span.is_recording():
                await self._recorded(span, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            context.detach(token)

    def _caller(self, scope: Scope) -> context.Context | None:
        """The caller's trace context, when its request carried one."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in self._propagated
        }
        return propagate.extract(carrier) if carrier else None

    async def _recorded(self, span: trace.Span, scope: Scope, receive: Receive, send: Send) -> None:
        span.set_attributes(_request_attributes(scope))
        status = 0

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = route_template(scope)
                if route != UNMATCHED:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException as exc:
            # Unanswered, the server-error middleware outside answers 500.
            status = status or 500
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            raise
        finally:
            if status:
                span.set_attribute("http.response.status_code", status)
            if not status or status >= 500:
                span.set_status(StatusCode.ERROR)
            span.end()


def _request_attributes(scope: Scope) -> dict[str, str | int]:
    """The request's attributes, named as OpenTelemetry's HTTP conventions name them."""
    attributes: dict[str, str | int] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if server := scope.get("server"):
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    if client := scope.get("client"):
        attributes["client.address"] = client[0]
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
            break
    return attributes


def install(app: FastAPI, settings: Settings) -> Lifespan | None:
    """Trace requests (unless ``OTEL_SDK_DISABLED``); flush the last spans at shutdown."""
    provider = tracer_provider()
    if provider is None:
        return None
    state: ServiceState = app.state.service
    if state.guard is not None:
        state.guard = TracedGuard(state.guard)
    state.observer = TracingObserver(state.observer)
    CURRENT_TRACE[:] = [current_trace]
    app.add_middleware(ServerSpanMiddleware)  # outside the request log, so its line names the trace
    return on_exit(lambda: provider.force_flush(FLUSH_TIMEOUT_MS))

"""Structured logs: one JSON object per line, one line per request, with a request id."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..middleware import json_answer
from ..settings import Settings
from .routes import route_template

access_log = logging.getLogger("{{ cookiecutter.project_slug }}.access")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# The id of the request being served, for every log line written while serving it. Each request
# runs in a task of its own, which keeps its own copy of this variable.
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


@dataclass(frozen=True, slots=True)
class TraceIds:
    """The distributed trace a request belongs to, as log lines and exemplars name it."""

    trace_id: str
    span_id: str
    sampled: bool


# The current request's trace, from whatever traces requests (nothing, in a project that does
# not): every JSON log line carries its ids, and a sampled one links latency samples to it.
CURRENT_TRACE: list[Callable[[], TraceIds | None]] = []


def current_request_id() -> str | None:
    return _request_id.get()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if "request_id" not in payload and (request_id := _request_id.get()) is not None:
            payload["request_id"] = request_id
        if CURRENT_TRACE and (ids := CURRENT_TRACE[0]()) is not None:
            payload["trace_id"], payload["span_id"] = ids.trace_id, ids.span_id
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED)
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        return f"{line} {extra}" if extra else line


class _StderrHandler(logging.StreamHandler[TextIO]):
    """The one handler this module installs; recognised so that reconfiguring replaces it."""


def configure_logging(level: str, fmt: str) -> None:
    """Route our logs and uvicorn's through one handler on stderr (idempotent).

    Handlers someone else put on the root logger (pytest's log capture, say) are left alone.
    """
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else ConsoleFormatter()
    formatter.converter = time.gmtime
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _StderrHandler)] + [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Our middleware writes the access line; uvicorn's own would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
    # Library warnings (scikit-learn's, say) as log records, not raw text on stderr.
    logging.captureWarnings(True)


class RequestLogMiddleware:
    """Give every request an id (X-Request-ID, honoured or made) and log it once at the end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or _new_request_id()
        _request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server cancels requests still running when its shutdown grace period ends,
            # and would answer them with a plain-text 500: answer JSON 503 first.
            if not answered:
                with contextlib.suppress(Exception):
                    for message in STOPPED:
                        await send_with_id(message)
            raise
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route_template(scope),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "request_id": request_id,
                        "client": client[0] if client else None,
                    },
                )


def install(app: FastAPI, settings: Settings) -> None:
    """Log every request, whatever the middleware installed before this answered."""
    app.add_middleware(RequestLogMiddleware)


STOPPED = json_answer(
    503, "the service stopped before it could answer; retry", (b"retry-after", b"1")
)


# A random prefix per process and a counter: unique ids without a system call per request
# (uuid4 reads the OS random source every time, which showed up in profiles).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            # Accept only short, printable ids so a client cannot forge log lines.
            if 0 < len(text) <= 128 and text.isprintable():
                return text
            return None
    return None

"""What the routes share at run time: the loaded model's runner and the drain flag."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from fastapi import HTTPException, Request, status

from .model.runner import InferenceRunner


@dataclass
class ServiceState:
    runner: InferenceRunner | None = None
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.runner is not None and not self.draining


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def ready_runner(request: Request) -> InferenceRunner:
    """The runner, or 503 while the model loads or the service drains.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in a thread.
    """
    state = service_state(request)
    if state.runner is None or state.draining:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the model is not ready",
            headers={"Retry-After": "1"},
        )
    return state.runner


DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def drain_on_signals(state: ServiceState) -> Iterator[None]:
    """On SIGTERM or SIGINT, turn readiness off at once, then let the server's handler run.

    uvicorn installs its own handlers before the app starts, in every worker process; this
    wraps them, so the server still stops accepting connections and waits for the requests in
    flight, while the load balancer already sees the instance as not ready. Signal handlers can
    only be set from the main thread; elsewhere (a test client) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in DRAIN_SIGNALS}

    def drain(sig: int, frame: FrameType | None) -> None:
        state.draining = True
        handler = previous[signal.Signals(sig)]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(sig, handler)
            signal.raise_signal(sig)

    for sig in DRAIN_SIGNALS:
        signal.signal(sig, drain)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)

"""What the routes share at run time: the model's runner and versions, the drain flag, and
the installed guard, quota and observer."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, status

from .model.runner import InferenceObserver, InferenceRunner

if TYPE_CHECKING:
    from .access import Guard, Quota
    from .model.versions import ModelVersions, VersionEvents

# Completes the OpenAPI document for the model being served (its request schemas, say).
Documenter = Callable[[dict[str, Any], InferenceRunner], None]


@dataclass
class ServiceState:
    runner: InferenceRunner | None = None
    draining: bool = False
    # Filled by the installers (see wiring.py): who may call, their quota, who measures.
    guard: Guard | None = None
    quota: Quota | None = None
    observer: InferenceObserver | None = None
    # The loaded model versions (the current one's runner is ``runner``), and who is told
    # when they change.
    versions: ModelVersions | None = None
    version_events: VersionEvents | None = None
    # Complete the OpenAPI document once the model is loaded (see docs.py).
    documenters: list[Documenter] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.runner is not None and not self.draining


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def ready_runner(request: Request) -> InferenceRunner:
    """The runner, or 503 while the model loads.

    Draining turns readiness off but refuses no work: a request that still arrives (from a
    load balancer that has not yet seen readiness fall) is served. ``async`` although it
    never awaits: FastAPI runs a plain ``def`` dependency in a thread.
    """
    state = service_state(request)
    if state.runner is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the model is not ready",
            headers={"Retry-After": "1"},
        )
    return state.runner


DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def drain_on_signals(state: ServiceState, delay_s: float = 0.0) -> Iterator[None]:
    """On SIGTERM or SIGINT, turn readiness off at once, then let the server's handler run.

    uvicorn installs its own handlers before the app starts, in every worker process; this
    wraps them. The server's handler stops accepting connections and waits for the requests in
    flight. With ``delay_s`` it runs that many seconds later: the service keeps answering,
    not ready, so that a load balancer polling readiness stops sending traffic before the
    port closes. A second signal stops at once. Signal handlers can only be set from the main
    thread; elsewhere (a test client) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in DRAIN_SIGNALS}

    def stop(sig: int, frame: FrameType | None) -> None:
        handler = previous[signal.Signals(sig)]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(sig, handler)
            signal.raise_signal(sig)

    def drain(sig: int, frame: FrameType | None) -> None:
        already_draining, state.draining = state.draining, True
        if delay_s > 0 and not already_draining:
            # Signal handlers run in the main thread, which runs the event loop.
            asyncio.get_running_loop().call_later(delay_s, stop, sig, None)
        else:
            stop(sig, frame)

    for sig in DRAIN_SIGNALS:
        signal.signal(sig, drain)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)

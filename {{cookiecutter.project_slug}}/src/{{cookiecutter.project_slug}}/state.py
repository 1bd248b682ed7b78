"""What the routes share at run time: the loaded model's runner and the drain flag."""

from __future__ import annotations

from dataclasses import dataclass

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


def ready_runner(request: Request) -> InferenceRunner:
    """The runner, or 503 while the model loads or the service drains."""
    state = service_state(request)
    if state.runner is None or state.draining:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the model is not ready",
            headers={"Retry-After": "1"},
        )
    return state.runner

"""Liveness and readiness probes: no credentials, never queued behind inference."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ..state import service_state
from .schemas import Status

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Status)
async def live() -> Status:
    """The process runs and its event loop answers."""
    return Status(status="ok")


@router.get(
    "/ready",
    response_model=Status,
    responses={503: {"model": Status, "description": "Loading the model, or draining."}},
)
async def ready(request: Request, response: Response) -> Status:
    """Ready once the model is loaded and warmed up; not ready again while draining."""
    state = service_state(request)
    if state.ready:
        return Status(status="ok")
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    response.headers["Retry-After"] = "1"
    return Status(status="draining" if state.draining else "loading")

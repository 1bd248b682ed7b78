"""Model versions by hand: what is loaded, check the source now, roll back (scope ``admin``).

Polling (``APP_MODEL_POLL_S``) and SIGHUP do the same checks without these routes.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..access import requires, scope_marker
from ..model.versions import ModelVersions, NoEarlierVersion
from ..settings import Settings
from ..state import service_state

ADMIN = scope_marker("admin")
router = APIRouter(prefix="/admin/model", tags=["admin"], dependencies=[requires("admin")])


class VersionInfo(BaseModel):
    version: str
    sha256: str
    source: str
    loaded_at: float
    serving: bool


class CheckInfo(BaseModel):
    at: float
    result: Literal["loaded", "refused", "failed", "unchanged"]
    version: str | None = None
    reason: str | None = None


class VersionsInfo(BaseModel):
    current: str | None
    versions: list[VersionInfo]
    last_check: CheckInfo | None
    poll_s: float


class ReloadInfo(VersionsInfo):
    result: Literal["loaded", "unchanged"]


class CheckProblem(BaseModel):
    detail: str
    result: Literal["refused", "failed"]


class RollbackInfo(BaseModel):
    current: str
    previous: str


class Problem(BaseModel):
    detail: str


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "The model is not loaded yet"}
}


def _versions(request: Request) -> ModelVersions | JSONResponse:
    versions = service_state(request).versions
    if versions is None or versions.current is None:
        return JSONResponse({"detail": "the model is not ready"}, status_code=503)
    return versions


@router.get("", response_model=VersionsInfo, responses={**NOT_READY}, openapi_extra=ADMIN)
async def versions_info(request: Request) -> Any:
    """The serving version, the versions kept loaded, and the last check of the source."""
    versions = _versions(request)
    if isinstance(versions, JSONResponse):
        return versions
    return versions.describe()


@router.post(
    "/reload",
    response_model=ReloadInfo,
    responses={
        409: {"model": CheckProblem, "description": "The new version was refused: the reason"},
        502: {"model": CheckProblem, "description": "The source could not be read"},
        **NOT_READY,
    },
    openapi_extra=ADMIN,
)
async def reload(request: Request) -> Any:
    """Check the source now, and serve what is new there once it passes every check."""
    versions = _versions(request)
    if isinstance(versions, JSONResponse):
        return versions
    check = await versions.check()
    if check.result in ("refused", "failed"):
        status = 409 if check.result == "refused" else 502
        return JSONResponse({"detail": check.reason, "result": check.result}, status_code=status)
    return {"result": check.result, **versions.describe()}


@router.post(
    "/rollback",
    response_model=RollbackInfo,
    responses={409: {"model": Problem, "description": "No earlier version is loaded"}, **NOT_READY},
    openapi_extra=ADMIN,
)
async def rollback(request: Request) -> Any:
    """Serve the version loaded before the current one again (no download)."""
    versions = _versions(request)
    if isinstance(versions, JSONResponse):
        return versions
    try:
        current, previous = await versions.rollback()
    except NoEarlierVersion as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    return {"current": current.name, "previous": previous.name}


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the admin routes of model versions."""
    app.include_router(router)

"""JSON error responses for what the routes raise: bad input, overload, timeout."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .model.runner import InferenceTimeout, Overloaded


def validation_details(exc: RequestValidationError) -> list[dict[str, object]]:
    """Where and why, without echoing the input back.

    The input may be large, or hold NaN and Infinity, which JSON cannot encode.
    """
    return [
        {"type": err["type"], "loc": list(err["loc"]), "msg": err["msg"]} for err in exc.errors()
    ]


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    return JSONResponse({"detail": validation_details(exc)}, status_code=422)


async def overloaded(request: Request, exc: Exception) -> JSONResponse:
    retry_after = exc.retry_after_s if isinstance(exc, Overloaded) else 1
    return JSONResponse(
        {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(retry_after)}
    )


async def timed_out(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "inference took longer than the timeout"}, status_code=504)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(InferenceTimeout, timed_out)

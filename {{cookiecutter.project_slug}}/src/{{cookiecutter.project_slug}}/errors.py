"""JSON error responses for what the routes raise: bad input, overload, timeout, model failures.

No path answers with plain text: whatever escapes a route becomes a JSON 500 that carries the
request id, and one JSON log line with the traceback under the same id.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .model.base import ModelError
from .model.runner import InferenceTimeout, Overloaded
from .observability.logging import current_request_id

logger = logging.getLogger(__name__)


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


def model_error_status(exc: ModelError) -> int:
    """422 when the model refused the rows, else 500; logged either way, with the traceback."""
    status = 422 if exc.rejected_input else 500
    logger.log(
        logging.WARNING if exc.rejected_input else logging.ERROR,
        "the model rejected the input" if exc.rejected_input else "the model failed",
        exc_info=exc,
        extra={"status": status},
    )
    return status


async def model_failed(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ModelError):
        raise exc
    if model_error_status(exc) == 422:
        where: list[str | int] = ["body", "instances"]
        if exc.row is not None:
            where.append(exc.row)
        issue = {"type": "model_rejected", "loc": where, "msg": str(exc)}
        return JSONResponse({"detail": [issue]}, status_code=422)
    # What went wrong is in the log line with this request id, not in the answer: a model's
    # own error messages may say more about the service than a caller should learn.
    return server_error("the model failed on this request")


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Anything else. Starlette re-raises it after this answer, and the server logs it (as JSON,
    with the request id), so it is not logged here a second time."""
    return server_error("internal error")


def server_error(detail: str) -> JSONResponse:
    request_id = current_request_id()
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(InferenceTimeout, timed_out)
    app.add_exception_handler(ModelError, model_failed)
    app.add_exception_handler(Exception, unexpected)

"""Open Inference Protocol (V2, REST), the API that KServe, Triton and MLServer speak.

Errors here are ``{"error": "..."}`` as the protocol asks, not FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .. import __version__
from ..errors import validation_failed
from ..model.base import Predictor
from ..model.runner import InferenceRunner, InferenceTimeout, Overloaded
{%- if cookiecutter.auth == "jwt" %}
from ..security.bearer import OPENAPI_SECURITY, authorize
{%- elif cookiecutter.auth == "api_key" %}
from ..security.api_key import OPENAPI_SECURITY, authorize
{%- endif %}
from ..state import service_state
from .schemas import json_body, read_json

Datatype = Literal["FP32", "FP64", "INT64", "INT32", "BOOL", "BYTES"]
NUMERIC_TYPES = {"FP32", "FP64", "INT64", "INT32"}
OUTPUT_NAME = "predict"


class OipError(BaseModel):
    error: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = []


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: Datatype
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class OipProblem(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def problem_response(exc: OipProblem) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status_code == 503 else None
    return JSONResponse({"error": str(exc)}, status_code=exc.status_code, headers=headers)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Bad input",
        404: "Unknown model",
        413: "Body too large",
        503: "Not ready or overloaded",
        504: "Timeout",
    }
    return {code: {"model": OipError, "description": text[code]} for code in codes}


server_router = APIRouter(prefix="/v2", tags=["open inference protocol"])
model_router = APIRouter(prefix="/v2/models", tags=["open inference protocol"])
# Routes that check credentials themselves; main.py adds no dependencies to these.
inference_router = APIRouter(prefix="/v2/models", tags=["open inference protocol"])


@server_router.get("", response_model=ServerMetadata)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="{{ cookiecutter.project_slug.replace('_', '-') }}", version=__version__)


@server_router.get("/health/live", response_model=Liveness)
async def server_live() -> Liveness:
    return Liveness(live=True)


@server_router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def server_ready(request: Request) -> JSONResponse:
    ready = service_state(request).ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def _runner(request: Request, name: str) -> InferenceRunner:
    state = service_state(request)
    if state.runner is None:
        raise OipProblem(503, "the model is not ready")
    if name != state.runner.predictor.metadata.name:
        raise OipProblem(404, f"unknown model {name!r}")
    return state.runner


def _tensors(predictor: Predictor) -> tuple[list[TensorMetadata], list[TensorMetadata]]:
    meta = predictor.metadata
    output_type = "BYTES" if any(isinstance(c, str) for c in meta.classes) else "INT64"
    return (
        [TensorMetadata(name="input-0", datatype="FP64", shape=[-1, meta.n_features])],
        [TensorMetadata(name=OUTPUT_NAME, datatype=output_type, shape=[-1])],
    )


@model_router.get("/{name}", response_model=ModelMetadataResponse, responses=_errors(404, 503))
async def model_metadata(name: str, request: Request) -> ModelMetadataResponse | JSONResponse:
    try:
        runner = _runner(request, name)
    except OipProblem as exc:
        return problem_response(exc)
    meta = runner.predictor.metadata
    inputs, outputs = _tensors(runner.predictor)
    return ModelMetadataResponse(
        name=meta.name,
        versions=[meta.version],
        platform=meta.framework,
        inputs=inputs,
        outputs=outputs,
    )


@model_router.get("/{name}/ready", response_model=ModelReadiness, responses=_errors(404))
async def model_ready(name: str, request: Request) -> JSONResponse:
    state = service_state(request)
    if state.runner is not None and name != state.runner.predictor.metadata.name:
        return problem_response(OipProblem(404, f"unknown model {name!r}"))
    ready = state.ready
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)


def to_rows(request: InferenceRequest, n_features: int, max_rows: int) -> np.ndarray[Any, Any]:
    """The one input tensor as a 2-D float batch, after checking shape, type and values."""
    if len(request.inputs) != 1:
        raise OipProblem(400, f"expected 1 input tensor, got {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.datatype not in NUMERIC_TYPES:
        raise OipProblem(400, f"input datatype must be one of {sorted(NUMERIC_TYPES)}")
    shape = tensor.shape
    if len(shape) != 2 or shape[1] != n_features:
        raise OipProblem(400, f"input shape must be [rows, {n_features}], got {shape}")
    if not 1 <= shape[0] <= max_rows:
        raise OipProblem(400, f"input must have 1 to {max_rows} rows, got {shape[0]}")
    flat = _flatten(tensor.data)
    if len(flat) != shape[0] * shape[1]:
        raise OipProblem(400, f"shape {shape} needs {shape[0] * shape[1]} values, got {len(flat)}")
    integer = tensor.datatype.startswith("INT")
    for value in flat:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OipProblem(400, "input data must be numbers")
        if integer and not isinstance(value, int):
            raise OipProblem(400, f"{tensor.datatype} data must be integers")
        if isinstance(value, float) and not math.isfinite(value):
            raise OipProblem(400, "input data must be finite numbers")
    return np.asarray(flat, dtype=np.float64).reshape(shape)


def _flatten(data: list[Any]) -> list[Any]:
    """Tensor data may be flat or nested row by row; both mean the same values in order."""
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


@inference_router.post(
    "/{name}/infer",
    response_model=InferenceResponse,
    responses=_errors(400, 404, 413, 503, 504),
{%- if cookiecutter.auth != "none" %}
    openapi_extra={**json_body(InferenceRequest), "security": OPENAPI_SECURITY},
{%- else %}
    openapi_extra=json_body(InferenceRequest),
{%- endif %}
)
async def infer(name: str, request: Request) -> JSONResponse:
    """Run the model on one input tensor.

    Written like ``POST /predict``, without dependency injection or a body parameter (see
    there). The body is read as JSON whatever its Content-Type says: the protocol's clients,
    Triton's among them, send JSON tensors without declaring ``application/json``.
    """
{%- if cookiecutter.auth != "none" %}
    await authorize(request, "predict")
{%- endif %}
    body = await read_json(request, InferenceRequest)
    try:
        runner = _runner(request, name)
        meta = runner.predictor.metadata
        rows = to_rows(body, meta.n_features, runner.max_rows)
    except OipProblem as exc:
        return problem_response(exc)
    try:
        labels = await runner.predict(rows)
    except Overloaded as exc:
        return problem_response(OipProblem(503, str(exc)))
    except InferenceTimeout:
        return problem_response(OipProblem(504, "inference took longer than the timeout"))
    _, (output,) = _tensors(runner.predictor)
    return JSONResponse(
        {
            "model_name": meta.name,
            "model_version": meta.version,
            "id": body.id,
            "outputs": [
                {
                    "name": OUTPUT_NAME,
                    "shape": [len(labels)],
                    "datatype": output.datatype,
                    "data": labels,
                }
            ],
        }
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Malformed requests to /v2 get the protocol's 400 and error shape; others FastAPI's 422."""
    if not request.url.path.startswith("/v2/") or not isinstance(exc, RequestValidationError):
        return await validation_failed(request, exc)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return JSONResponse({"error": f"{where}: {first['msg']}"}, status_code=400)

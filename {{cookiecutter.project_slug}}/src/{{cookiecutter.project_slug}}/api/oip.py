"""Open Inference Protocol (V2, REST), the API that KServe, Triton and MLServer speak.

Errors here are ``{"error": "..."}`` as the protocol asks, not FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    WithJsonSchema,
    create_model,
)
from starlette.exceptions import HTTPException

from .. import __version__
from ..access import admit, requires, scope_marker
from ..errors import model_error_status, validation_failed
from ..model.base import ModelError, ModelMetadata, Rows
from ..model.runner import InferenceRunner, InferenceTimeout, Overloaded
from ..model.signature import Feature, Signature
from ..observability.logging import current_request_id
from ..settings import Settings
from ..state import ServiceState, service_state
from .schemas import json_body, json_content_type, read_json
from .signature_schema import MAGNITUDE

Datatype = Literal["FP32", "FP64", "INT64", "INT32", "BOOL", "BYTES"]
INTEGER_TYPES = ("INT64", "INT32")
# The tensor datatypes each feature type is accepted in; the request schema lists exactly these.
ACCEPTED: dict[str, tuple[str, ...]] = {
    "number": ("FP32", "FP64", *INTEGER_TYPES),
    "integer": INTEGER_TYPES,
    "string": ("BYTES",),
    "boolean": ("BOOL",),
    "datetime": ("BYTES",),  # ISO 8601 strings, as in JSON
}
# Datatypes whose values are alike: one tensor schema each, its data typed by the datatype.
DATATYPE_GROUPS = (("FP32", "FP64"), INTEGER_TYPES, ("BOOL",), ("BYTES",))
INT64_MAX = 2**63 - 1
TAG_ERROR = "a tensor's name must be one of the model's inputs, its datatype one that it takes"
# What JSON Schema cannot say about a request; checked in ``to_rows`` and answered with 400.
UNSTATED = (
    "Beyond this schema: a tensor's `data` holds exactly as many values as its `shape` "
    "multiplies to (flat, or nested row by row); a model with named inputs takes each of them "
    "once, every one with the same number of rows. A request that breaks this is a 400."
)
OUTPUT_NAME = "predict"
PROBABILITIES = "probabilities"
MATRIX_INPUT = "input-0"
# Besides JSON: what the binary-tensor extension's clients may declare.
OIP_CONTENT_TYPES = frozenset({b"application/octet-stream"})


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
    shape: Any
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
        415: "The body is not sent as JSON",
        500: "The model failed",
        503: "Not ready or overloaded",
        504: "Timeout",
    }
    return {code: {"model": OipError, "description": text[code]} for code in codes}


server_router = APIRouter(prefix="/v2", tags=["open inference protocol"])
model_router = APIRouter(
    prefix="/v2/models", tags=["open inference protocol"], dependencies=[requires("predict")]
)
# Routes that check credentials themselves, without dependency injection.
inference_router = APIRouter(prefix="/v2/models", tags=["open inference protocol"])
PREDICT = scope_marker("predict")


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


def _runner(request: Request, name: str, version: str | None = None) -> InferenceRunner:
    """The serving version's runner, or that of ``version`` if it is one of those kept."""
    state = service_state(request)
    runner = state.runner
    if runner is None:
        raise OipProblem(503, "the model is not ready")
    if name != runner.predictor.metadata.name:
        raise OipProblem(404, f"unknown model {name!r}")
    if version is None or version == runner.predictor.metadata.version:
        return runner
    kept = None if state.versions is None else state.versions.find(version)
    if kept is None:
        raise OipProblem(404, f"unknown version {version!r} of model {name!r}")
    return kept.runner


def _kept_versions(request: Request, current: str) -> list[str]:
    """The serving version first, then the others kept loaded."""
    versions = service_state(request).versions
    others = [] if versions is None else [v.name for v in versions.kept if v.name != current]
    return [current, *others]


def _tensors(meta: ModelMetadata) -> tuple[list[TensorMetadata], list[TensorMetadata]]:
    """Inputs and outputs as the protocol describes them, from the model's signature.

    A numeric matrix model takes one ``[-1, n_features]`` tensor; a model with named features
    (or a text model's documents) takes one ``[-1]`` tensor per feature, in order, as MLServer's
    pandas convention does. Several values per row are one ``[-1, outputs]`` tensor.
    """
    signature = meta.signature
    if by_column(signature):
        inputs = [
            TensorMetadata(name=f.name, datatype=ACCEPTED[f.type][0], shape=[-1])
            for f in signature.features
        ]
    else:
        datatype = "INT64" if all(f.type == "integer" for f in signature.features) else "FP64"
        inputs = [TensorMetadata(name=MATRIX_INPUT, datatype=datatype, shape=[-1, meta.n_features])]
    several = [len(signature.outputs)] if signature.outputs else []
    outputs = [TensorMetadata(name=OUTPUT_NAME, datatype=_label_type(meta), shape=[-1, *several])]
    if signature.probabilities and not signature.outputs:  # one table per output: /predict
        width = len(signature.classes)
        outputs.append(TensorMetadata(name=PROBABILITIES, datatype="FP64", shape=[-1, width]))
    return inputs, outputs


def by_column(signature: Signature) -> bool:
    return signature.named or signature.documents


def _label_type(meta: ModelMetadata) -> str:
    """Labels' datatype: strings are BYTES; cluster ids and outlier flags INT64."""
    signature = meta.signature
    if not signature.labelled:
        return "FP64"
    classes = [c for o in signature.outputs for c in o.classes] or list(signature.classes)
    if any(isinstance(c, str) for c in classes):
        return "BYTES"
    return "FP64" if any(isinstance(c, float) for c in classes) else "INT64"


@model_router.get(
    "/{name}",
    response_model=ModelMetadataResponse,
    responses=_errors(404, 503),
    openapi_extra=PREDICT,
)
async def model_metadata(name: str, request: Request) -> ModelMetadataResponse | JSONResponse:
    return _metadata(request, name, None)


@model_router.get(
    "/{name}/versions/{version}",
    response_model=ModelMetadataResponse,
    responses=_errors(404, 503),
    openapi_extra=PREDICT,
)
async def version_metadata(
    name: str, version: str, request: Request
) -> ModelMetadataResponse | JSONResponse:
    """One of the versions kept loaded (see ``GET /v2/models/{name}``'s ``versions``)."""
    return _metadata(request, name, version)


def _metadata(
    request: Request, name: str, version: str | None
) -> ModelMetadataResponse | JSONResponse:
    try:
        runner = _runner(request, name, version)
    except OipProblem as exc:
        return problem_response(exc)
    meta = runner.predictor.metadata
    inputs, outputs = _tensors(meta)
    return ModelMetadataResponse(
        name=meta.name,
        versions=[meta.version] if version else _kept_versions(request, meta.version),
        platform=meta.framework,
        inputs=inputs,
        outputs=outputs,
    )


@model_router.get(
    "/{name}/ready", response_model=ModelReadiness, responses=_errors(404), openapi_extra=PREDICT
)
async def model_ready(name: str, request: Request) -> JSONResponse:
    state = service_state(request)
    if state.runner is not None and name != state.runner.predictor.metadata.name:
        return problem_response(OipProblem(404, f"unknown model {name!r}"))
    ready = state.ready
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)


@model_router.get(
    "/{name}/versions/{version}/ready",
    response_model=ModelReadiness,
    responses=_errors(404),
    openapi_extra=PREDICT,
)
async def version_ready(name: str, version: str, request: Request) -> JSONResponse:
    state = service_state(request)
    try:
        _runner(request, name, version)
    except OipProblem as exc:
        if exc.status_code == 404:
            return problem_response(exc)
    ready = state.ready
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)


def to_rows(request: InferenceRequest, meta: ModelMetadata, max_rows: int) -> Rows:
    """The input tensors as a batch of rows in feature order, after checking every value."""
    signature = meta.signature
    if not by_column(signature):
        return _matrix(request, signature.features, max_rows)
    tensors = {tensor.name: tensor for tensor in request.inputs}
    missing = [name for name in signature.names if name not in tensors]
    extra = [name for name in tensors if name not in signature.names]
    if missing or extra or len(tensors) != len(request.inputs):
        raise OipProblem(
            400,
            f"expected one input tensor per feature {signature.names}; missing {missing}, "
            f"unknown {extra}",
        )
    columns = [_column(tensors[f.name], f, max_rows) for f in signature.features]
    if len({len(column) for column in columns}) != 1:
        raise OipProblem(400, "every input tensor must have the same number of rows")
    rows = np.empty((len(columns[0]), len(columns)), dtype=object)
    for index, column in enumerate(columns):
        rows[:, index] = column
    return rows


def _matrix(request: InferenceRequest, features: tuple[Feature, ...], max_rows: int) -> Rows:
    n_features = len(features)
    if len(request.inputs) != 1:
        raise OipProblem(400, f"expected 1 input tensor, got {len(request.inputs)}")
    tensor = request.inputs[0]
    shape = list(tensor.shape)
    if len(shape) != 2 or shape[1] != n_features:
        raise OipProblem(400, f"input shape must be [rows, {n_features}], got {shape}")
    if not 1 <= shape[0] <= max_rows:
        raise OipProblem(400, f"input must have 1 to {max_rows} rows, got {shape[0]}")
    flat = _flatten(tensor.data)
    if len(flat) != shape[0] * shape[1]:
        raise OipProblem(400, f"shape {shape} needs {shape[0] * shape[1]} values, got {len(flat)}")
    for index, value in enumerate(flat):
        _check(value, tensor.datatype, features[index % n_features])
    return np.asarray(flat, dtype=np.float64).reshape(shape)


def _column(tensor: RequestInput, feature: Feature, max_rows: int) -> list[Any]:
    shape = list(tensor.shape)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise OipProblem(400, f"input {feature.name!r}: shape must be [rows] or [rows, 1]")
    if not 1 <= shape[0] <= max_rows:
        raise OipProblem(400, f"input {feature.name!r}: 1 to {max_rows} rows, got {shape[0]}")
    values = _flatten(tensor.data)
    if len(values) != shape[0]:
        raise OipProblem(400, f"input {feature.name!r}: shape {shape} but {len(values)} values")
    # Each value was typed by this feature's own tensor schema (``request_model``) already.
    return values


def _check(value: Any, datatype: str, feature: Feature) -> None:
    """One value of a matrix against its own column's feature: the matrix's schema takes a
    value that any column takes, so types and categories per column are checked here."""
    where = f"input {feature.name!r}"
    if datatype not in ACCEPTED[feature.type]:
        raise OipProblem(400, f"{where}: datatype must be one of {list(ACCEPTED[feature.type])}")
    ok = _fits(value, datatype)
    if ok and feature.type == "datetime":
        ok = _is_time(value)
    elif ok and datatype not in ("BYTES", "BOOL", *INTEGER_TYPES):
        ok = math.isfinite(value) and abs(value) <= MAGNITUDE
    if not ok:
        raise OipProblem(400, f"{where}: {value!r} is not a valid {datatype} value")
    if feature.categories is not None and value not in feature.categories:
        raise OipProblem(400, f"{where}: {value!r} is not one of {list(feature.categories)}")


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


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


INFER_ERRORS = _errors(400, 404, 413, 415, 500, 503, 504)


@inference_router.post(
    "/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra={**json_body(InferenceRequest), **PREDICT},
)
async def infer_version(name: str, version: str, request: Request) -> JSONResponse:
    """``infer`` on one of the versions kept loaded."""
    return await _infer(request, name, version)


@inference_router.post(
    "/{name}/infer",
    response_model=InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra={**json_body(InferenceRequest), **PREDICT},
)
async def infer(name: str, request: Request) -> JSONResponse:
    """Run the model on its input tensors: one matrix, or one tensor per named feature.

    Written like ``POST /predict``, without dependency injection or a body parameter (see
    there). The protocol's clients do not all declare ``application/json``: Triton's sends no
    Content-Type at all, and the binary-tensor extension's clients may send
    ``application/octet-stream``. Those are read as JSON; the types a browser may send to
    any site (forms, text) are refused with 415.
    """
    return await _infer(request, name, None)


async def _infer(request: Request, name: str, version: str | None) -> JSONResponse:
    await admit(request, "predict")
    try:
        runner = _runner(request, name, version)
    except OipProblem as exc:
        return problem_response(exc)
    if not json_content_type(request, OIP_CONTENT_TYPES):
        return problem_response(OipProblem(415, "send the body as JSON (application/json)"))
    meta = runner.predictor.metadata
    body = await read_json(request, request_model(meta, runner.max_rows))
    _, outputs = _tensors(meta)
    try:
        wanted = _wanted_outputs(body, outputs)
        rows = to_rows(body, meta, runner.max_rows)
    except OipProblem as exc:
        return problem_response(exc)
    try:
        prediction = await runner.predict(rows, PROBABILITIES in wanted)
    except Overloaded as exc:
        return problem_response(OipProblem(503, str(exc)))
    except InferenceTimeout:
        return problem_response(OipProblem(504, "inference took longer than the timeout"))
    except ModelError as exc:
        status = model_error_status(exc)
        if status == 422:
            return problem_response(OipProblem(400, f"the model rejected the input: {exc}"))
        failed = f"the model failed (request id {current_request_id()})"
        return problem_response(OipProblem(500, failed))
    data = {OUTPUT_NAME: prediction.values, PROBABILITIES: prediction.probabilities}
    rows_out = len(prediction.values)
    return JSONResponse(
        {
            "model_name": meta.name,
            "model_version": meta.version,
            "id": body.id,
            "outputs": [
                {
                    "name": output.name,
                    "shape": [rows_out, *output.shape[1:]],
                    "datatype": output.datatype,
                    "data": data[output.name],
                }
                for output in outputs
                if output.name in wanted
            ],
        }
    )


def _wanted_outputs(body: InferenceRequest, outputs: list[TensorMetadata]) -> set[str]:
    """The outputs asked for by name; all of them when the request names none (as OIP says)."""
    known = {output.name for output in outputs}
    if body.outputs is None:
        return known
    wanted = {output.name for output in body.outputs}
    if not wanted <= known:
        raise OipProblem(400, f"unknown outputs {sorted(wanted - known)}; known: {sorted(known)}")
    return wanted


@functools.cache
def request_model(meta: ModelMetadata, max_rows: int) -> type[InferenceRequest]:
    """The request body for this model: its inputs by name, with their datatypes and shapes,
    and the outputs it gives, exactly.

    Every value in ``data`` is typed by its tensor's datatype and feature. What JSON Schema
    cannot say (``UNSTATED``: that a tensor's data fills its shape, that each named input comes
    once with as many rows as the others) is checked in ``to_rows`` and answered with 400.
    """
    signature = meta.signature
    rows = Annotated[int, Field(ge=1, le=max_rows)]
    tensor: Any
    if by_column(signature):
        column = tuple[rows] | tuple[rows, Literal[1]]
        variants = [
            variant
            for i, f in enumerate(signature.features)
            for variant in _tensor_variants(f.name, (f,), column, i)
        ]
        count = len(signature.features)
    else:
        width: Any = Literal[meta.n_features]
        shape = tuple[rows, width]
        variants, count = _tensor_variants(MATRIX_INPUT, signature.features, shape, 0), 1
    # One flat union told apart by name and datatype: OpenAPI's discriminator cannot nest.
    tensor = variants[0]
    for variant in variants[1:]:
        tensor = tensor | variant
    if len(variants) > 1:
        tensor = Annotated[tensor, Discriminator(_tensor_tag, custom_error_message=TAG_ERROR)]
    outputs: Any = Literal[tuple(output.name for output in _tensors(meta)[1])]
    wanted = create_model("RequestOutput", __base__=RequestOutput, name=(outputs, ...))
    model: type[InferenceRequest] = create_model(
        "InferenceRequest",
        __base__=InferenceRequest,
        __doc__=UNSTATED,
        inputs=(list[tensor], Field(min_length=count, max_length=count)),
        outputs=(list[wanted] | None, None),
    )
    return model


def _tensor_tag(value: Any) -> str | None:
    """Which tensor schema a tensor is read with: its name and its datatype's group."""
    name, datatype = (
        (value.get("name"), value.get("datatype"))
        if isinstance(value, dict)
        else (getattr(value, "name", None), getattr(value, "datatype", None))
    )
    group = next((g[0] for g in DATATYPE_GROUPS if datatype in g), None)
    return f"{name}/{group}" if isinstance(name, str) and group else None


def _tensor_variants(name: str, features: tuple[Feature, ...], shape: Any, index: int) -> list[Any]:
    """One input tensor's schema (tagged for ``_tensor_tag``) per group of datatypes that every
    feature takes, its values so typed."""
    named: Any = Literal[name]
    variants: list[Any] = []
    for group in DATATYPE_GROUPS:
        datatypes = tuple(t for t in group if all(t in ACCEPTED[f.type] for f in features))
        if not datatypes:
            continue
        kinds = [_value_type(datatypes[0], f) for f in features]
        if any(kind is None for kind in kinds):
            continue
        value: Any = kinds[0]
        for kind in {repr(k): k for k in kinds[1:]}.values():
            value = value | kind
        typed: Any = Literal[datatypes]
        row: Any = Annotated[list[value], Field(min_length=1)]
        data: Any = Annotated[list[value | row], Field(min_length=1)]
        model = create_model(
            f"RequestInput{index}{datatypes[0]}",
            __base__=RequestInput,
            name=(named, ...),
            datatype=(typed, ...),
            shape=(shape, ...),
            data=(data, ...),
        )
        variants.append(Annotated[model, Tag(f"{name}/{datatypes[0]}")])
    return variants


def _fits(value: Any, datatype: str) -> bool:
    """Whether a JSON value is of the kind a tensor of ``datatype`` holds."""
    if datatype == "BYTES":
        return isinstance(value, str)
    if isinstance(value, bool) or datatype == "BOOL":
        return datatype == "BOOL" and isinstance(value, bool)
    return isinstance(value, int if datatype in INTEGER_TYPES else int | float)


def _of_kind(datatype: str, value: Any) -> Any:
    if datatype in INTEGER_TYPES:
        value = _whole(value)
    if not _fits(value, datatype):
        raise ValueError(f"not a {datatype} value")
    return value


def _whole(value: Any) -> Any:
    """2.0 as 2: JSON Schema counts it as an integer too."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _iso_time(text: str) -> str:
    if not _is_time(text):
        raise ValueError("not an ISO 8601 date and time")
    return text


def _value_type(datatype: str, feature: Feature) -> Any:
    """The pydantic type of one of ``feature``'s values in a tensor of ``datatype``, as
    ``_check`` takes it; None if no value can be."""
    if feature.categories is not None:
        allowed = tuple(c for c in feature.categories if _fits(c, datatype))
        if not allowed:
            return None
        strict = BeforeValidator(functools.partial(_of_kind, datatype))
        return Annotated[Literal[allowed], strict]
    if datatype == "BOOL":
        return StrictBool
    if datatype == "BYTES" and feature.type == "datetime":
        as_time = WithJsonSchema({"type": "string", "format": "date-time"})
        return Annotated[StrictStr, AfterValidator(_iso_time), as_time]
    if datatype == "BYTES":
        return StrictStr
    if datatype in INTEGER_TYPES:
        # The bounds before the validator: after it, they would be missing from the schema.
        whole = BeforeValidator(_whole)
        return Annotated[StrictInt, Field(ge=-INT64_MAX - 1, le=INT64_MAX), whole]
    return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAGNITUDE, le=MAGNITUDE)]


def document(openapi: dict[str, Any], runner: InferenceRunner) -> None:
    """Show this model's own request schema for the infer route."""
    body = json_body(request_model(runner.predictor.metadata, runner.max_rows))
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        openapi["paths"][path]["post"].update(body)


def is_oip(request: Request) -> bool:
    return request.url.path == "/v2" or request.url.path.startswith("/v2/")


async def refused(request: Request, exc: Exception) -> Response:
    """Refusals under /v2 (401, 403, 429, an unknown route) in the protocol's error shape,
    with their headers (WWW-Authenticate, Retry-After, RateLimit-*); elsewhere FastAPI's."""
    if not isinstance(exc, HTTPException):
        raise exc
    if not is_oip(request):
        return await http_exception_handler(request, exc)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Malformed requests to /v2 get the protocol's 400 and error shape; others FastAPI's 422."""
    if not is_oip(request) or not isinstance(exc, RequestValidationError):
        return await validation_failed(request, exc)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return JSONResponse({"error": f"{where}: {first['msg']}"}, status_code=400)


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the protocol's routes under /v2, with its own error shape."""
    state: ServiceState = app.state.service
    state.documenters.append(document)
    app.include_router(server_router)
    app.include_router(model_router)
    app.include_router(inference_router)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, refused)

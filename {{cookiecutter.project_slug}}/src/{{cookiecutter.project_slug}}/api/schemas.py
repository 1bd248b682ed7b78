"""Response bodies, the error responses each route documents, and reading JSON bodies.

The request body of ``/predict`` depends on the model, so it is generated at start-up from the
model's signature: see ``signature_schema.py``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from ..model.base import Label, Value

Body = TypeVar("Body", bound=BaseModel)


class PredictResponse(BaseModel):
    """The generic form; the OpenAPI document shows the served model's own (see ``docs.py``)."""

    predictions: list[Any] = Field(
        description="Per instance, in order: a class label (classifier), a value (regressor), "
        "a cluster id or an outlier flag (1 or -1); a list of them for several outputs."
    )
    probabilities: list[Any] | None = Field(
        default=None,
        description="With `probabilities: true`: per instance, one probability per class in "
        "the order of `/model`'s `classes` (for several outputs, one such list per output).",
    )
    model_version: str


class Input(BaseModel):
    name: str
    type: Literal["number", "integer", "string", "boolean", "datetime"]
    categories: list[Value] | None = None
    nullable: bool = False
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None


class OutputInfo(BaseModel):
    """One of a multi-output model's values per row."""

    name: str
    type: Literal["number", "integer", "string"]
    classes: list[Label] | None = Field(default=None, description="A classifier output's labels.")


class ModelInfo(BaseModel):
    name: str
    version: str
    framework: str
    description: str | None = None
    task: Literal["classification", "regression", "clustering", "outlier_detection"]
    features: list[str]
    n_features: int
    classes: list[Label] = Field(
        description="Class labels, cluster ids or outlier flags; empty for a regressor and "
        "for several outputs (each lists its own)."
    )
    probabilities: bool = Field(description="Whether `probabilities: true` may be asked for.")
    inputs: list[Input]
    outputs: list[OutputInfo] | None = Field(
        default=None, description="For a model with several values per row: what each one is."
    )


class Status(BaseModel):
    status: str


class ErrorMessage(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationProblem(BaseModel):
    """What a 422 carries: where and why, never the offending input (see ``errors.py``)."""

    detail: list[ValidationIssue]


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorMessage, "description": description}


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: error("The model is still loading, or the service is overloaded (Retry-After).")
}


class ServerError(BaseModel):
    detail: str
    request_id: str = Field(description="Also in the response's X-Request-ID and in the log.")


INFERENCE_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_READY,
    422: {
        "model": ValidationProblem,
        "description": "The body is not a valid request for this model, or the model "
        "rejected its rows.",
    },
    413: error("The request body is larger than the configured limit."),
    415: error("The body is not sent as `application/json`."),
    500: {"model": ServerError, "description": "The model failed on these rows."},
    504: error("Inference took longer than the configured timeout."),
}


def validation_error(exc: ValidationError) -> RequestValidationError:
    """A pydantic error on a body, as FastAPI raises it (so it gets the same 422 response)."""
    issues = exc.errors(include_url=False, include_input=False, include_context=False)
    return RequestValidationError([{**issue, "loc": ("body", *issue["loc"])} for issue in issues])


async def read_json(request: Request, model: type[Body]) -> Body:
    """Validate a JSON body in one pass, from bytes, with pydantic-core's parser.

    FastAPI's body parameters decode JSON into Python objects first and validate those after;
    for small inference requests that, with its dependency machinery, cost more than the model.
    Errors are raised as FastAPI's own, so they get the same 422 response.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise validation_error(exc) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its body with ``read_json``."""
    content = {"application/json": {"schema": inline_schema(model)}}
    return {"requestBody": {"required": True, "content": content}}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every ``$defs`` reference replaced by its target.

    A ``#/$defs/...`` reference would point nowhere inside the OpenAPI document, and the docs
    pages would fail to render.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return {**inline(defs[ref.removeprefix("#/$defs/")]), **inline(siblings)}
        return {key: inline(value) for key, value in node.items()}

    inlined: dict[str, Any] = inline(schema)
    return inlined


JSON = b"application/json"


def json_content_type(request: Request, also: frozenset[bytes] = frozenset()) -> bool:
    """Whether the body is declared as JSON (or one of ``also``), or not declared at all.

    Refusing the rest is what keeps cross-site form posts out: a browser sends
    ``text/plain``, ``application/x-www-form-urlencoded`` and ``multipart/form-data`` to any
    origin without asking first, but never ``application/json``.
    """
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return (
                kind == JSON
                or (kind.startswith(b"application/") and kind.endswith(b"+json"))
                or kind in also
            )
    return True


def require_json(request: Request) -> None:
    """415 for a body declared as anything but JSON, as FastAPI's own body parameters do."""
    if not json_content_type(request):
        raise HTTPException(415, detail="send the body as JSON (application/json)")

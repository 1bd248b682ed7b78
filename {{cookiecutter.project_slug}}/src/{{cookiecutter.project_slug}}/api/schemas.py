"""Request and response bodies, and the error responses each route documents."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..model.base import Label

Body = TypeVar("Body", bound=BaseModel)

# Strict: "1.5" or true is not a number. No NaN or Infinity: models give garbage for them.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": [[5.1, 3.5, 1.4, 0.2]]}]},
    )

    instances: list[list[FiniteFloat]] = Field(
        min_length=1, description="Rows to predict, each with the model's features in order."
    )


class PredictResponse(BaseModel):
    predictions: list[Label] = Field(description="One class label per instance, in order.")
    model_version: str


class ModelInfo(BaseModel):
    name: str
    version: str
    framework: str
    features: list[str]
    n_features: int
    classes: list[Label]


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
INFERENCE_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_READY,
    422: {"model": ValidationProblem, "description": "The body is not a valid request."},
    413: error("The request body is larger than the configured limit."),
    504: error("Inference took longer than the configured timeout."),
}


async def read_json(request: Request, model: type[Body]) -> Body:
    """Validate a JSON body in one pass, from bytes, with pydantic-core's parser.

    FastAPI's body parameters decode JSON into Python objects first and validate those after;
    for small inference requests that, with its dependency machinery, cost more than the model.
    Errors are raised as FastAPI's own, so they get the same 422 response.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        issues = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(
            [{**issue, "loc": ("body", *issue["loc"])} for issue in issues]
        ) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its body with ``read_json``.

    The schema is inlined whole: a ``#/$defs/...`` reference for a nested model would point
    nowhere inside the OpenAPI document, and the docs pages would fail to render.
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

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}

"""Request and response bodies, and the error responses each route documents."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..model.base import Label

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


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorMessage, "description": description}


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: error("The model is loading, the service is draining, or it is overloaded (Retry-After).")
}
INFERENCE_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_READY,
    413: error("The request body is larger than the configured limit."),
    504: error("Inference took longer than the configured timeout."),
}

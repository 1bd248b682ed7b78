"""The model's own routes: metadata and prediction."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..model.runner import InferenceRunner
{%- if cookiecutter.auth == "jwt" %}
from ..security.bearer import OPENAPI_SECURITY, authorize
{%- elif cookiecutter.auth == "api_key" %}
from ..security.api_key import OPENAPI_SECURITY, authorize
{%- endif %}
from ..state import ready_runner
from .schemas import (
    INFERENCE_ERRORS,
    NOT_READY,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    json_body,
    read_json,
)

router = APIRouter(tags=["model"])
# Routes that check credentials themselves; main.py adds no dependencies to these.
inference_router = APIRouter(tags=["model"])
Runner = Annotated[InferenceRunner, Depends(ready_runner)]


@router.get("/model", response_model=ModelInfo, responses=NOT_READY)
async def model_info(runner: Runner) -> ModelInfo:
    """Name, version and signature of the served model."""
    meta = runner.predictor.metadata
    return ModelInfo(
        name=meta.name,
        version=meta.version,
        framework=meta.framework,
        features=meta.features,
        n_features=meta.n_features,
        classes=meta.classes,
    )


@inference_router.post(
    "/predict",
    response_model=PredictResponse,
    responses=INFERENCE_ERRORS,
{%- if cookiecutter.auth != "none" %}
    openapi_extra={**json_body(PredictRequest), "security": OPENAPI_SECURITY},
{%- else %}
    openapi_extra=json_body(PredictRequest),
{%- endif %}
)
async def predict(request: Request) -> JSONResponse:
    """Predict one label per instance.

    The hot path, written without FastAPI's dependency injection and body parameters: for a
    light model those cost more per request than the model does. The checks run in the same
    order and raise the same errors as the dependency-based routes.
    """
{%- if cookiecutter.auth != "none" %}
    await authorize(request, "predict")
{%- endif %}
    runner = await ready_runner(request)
    body = await read_json(request, PredictRequest)
    meta = runner.predictor.metadata
    max_rows = runner.max_rows
    if len(body.instances) > max_rows:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "instances"),
                    "msg": f"at most {max_rows} instances per request",
                }
            ]
        )
    for index, row in enumerate(body.instances):
        if len(row) != meta.n_features:
            raise RequestValidationError(
                [
                    {
                        "type": "wrong_feature_count",
                        "loc": ("body", "instances", index),
                        "msg": f"expected {meta.n_features} features, got {len(row)}",
                    }
                ]
            )
    labels = await runner.predict(np.asarray(body.instances, dtype=np.float64))
    return JSONResponse({"predictions": labels, "model_version": meta.version})

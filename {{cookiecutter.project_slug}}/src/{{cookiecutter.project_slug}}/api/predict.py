"""The model's own routes: metadata and prediction."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError

from ..model.runner import InferenceRunner
from ..state import ready_runner
from .schemas import INFERENCE_ERRORS, NOT_READY, ModelInfo, PredictRequest, PredictResponse

router = APIRouter(tags=["model"])
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


@router.post("/predict", response_model=PredictResponse, responses=INFERENCE_ERRORS)
async def predict(body: PredictRequest, runner: Runner) -> PredictResponse:
    """Predict one label per instance."""
    meta = runner.predictor.metadata
    max_rows = runner.max_rows
    if len(body.instances) > max_rows:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "instances"),
                    "msg": f"at most {max_rows} instances per request",
                    "input": None,
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
                        "input": None,
                    }
                ]
            )
    labels = await runner.predict(np.asarray(body.instances, dtype=np.float64))
    return PredictResponse(predictions=labels, model_version=meta.version)

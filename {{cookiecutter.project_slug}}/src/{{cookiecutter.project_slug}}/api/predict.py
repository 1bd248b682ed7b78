"""The model's own routes: metadata and prediction."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..access import admit, requires, scope_marker
from ..model.base import Label
from ..model.runner import InferenceRunner
from ..state import ready_runner
from . import schemas
from .schemas import (
    INFERENCE_ERRORS,
    NOT_READY,
    Input,
    OutputInfo,
    PredictResponse,
    inline_schema,
    json_body,
    require_json,
)
from .signature_schema import predict_schema

router = APIRouter(tags=["model"])
Runner = Annotated[InferenceRunner, Depends(ready_runner)]


class Batching(BaseModel):
    """How requests share model calls (see model/sizing.py)."""

    max_batch_size: int = Field(description="Most rows in one model call; 1: batching off.")
    source: Literal["measured", "settings"] = Field(
        description="`measured` on the model at start-up, or set by APP_MAX_BATCH_SIZE."
    )
    per_row_us: dict[str, float] = Field(
        description="Microseconds per row at each batch size timed at start-up (by rows per "
        "call); empty when set by the settings."
    )


class ModelInfo(schemas.ModelInfo):
    """The model's signature (see schemas.py), and how its calls are batched."""

    batching: Batching


@router.get(
    "/model",
    response_model=ModelInfo,
    responses=NOT_READY,
    dependencies=[requires("predict")],
    openapi_extra=scope_marker("predict"),
)
async def model_info(runner: Runner) -> ModelInfo:
    """Name, version and signature of the served model: what `/predict` takes and gives."""
    meta = runner.predictor.metadata
    signature = meta.signature
    return ModelInfo(
        name=meta.name,
        version=meta.version,
        framework=meta.framework,
        description=meta.description,
        task=signature.task,
        features=meta.features,
        n_features=meta.n_features,
        classes=meta.classes,
        probabilities=signature.probabilities,
        inputs=[
            Input(
                name=f.name,
                type=f.type,
                categories=None if f.categories is None else list(f.categories),
                nullable=f.nullable,
                description=f.description,
                minimum=f.minimum,
                maximum=f.maximum,
            )
            for f in signature.features
        ],
        outputs=[
            OutputInfo(
                name=output.name,
                type=_output_type(output.classes) if signature.labelled else "number",
                classes=list(output.classes) if output.classes else None,
            )
            for output in signature.outputs
        ]
        or None,
        batching=Batching(**runner.batching.describe()),
    )


def _output_type(classes: tuple[Label, ...]) -> Literal["integer", "string"]:
    return "integer" if all(isinstance(c, int) for c in classes) else "string"


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=INFERENCE_ERRORS,
    openapi_extra=scope_marker("predict"),
)
async def predict(request: Request) -> JSONResponse:
    """Predict a label (classifier), a value (regressor), a cluster or an outlier flag per
    instance; a list of them per instance for a model with several outputs.

    Instances are objects by feature name or arrays in `/model`'s feature order; the request
    schema below is this model's own. The hot path, written without FastAPI's dependency
    injection and body parameters: for a light model those cost more per request than the
    model does. The checks run in the same order and raise the same errors as the
    dependency-based routes.
    """
    await admit(request, "predict")
    runner = await ready_runner(request)
    require_json(request)
    meta = runner.predictor.metadata
    rows, probabilities = predict_schema(meta, runner.max_rows).parse(await request.body())
    prediction = await runner.predict(rows, probabilities)
    answer: dict[str, object] = {"predictions": prediction.values, "model_version": meta.version}
    if prediction.probabilities is not None:
        answer["probabilities"] = prediction.probabilities
    return JSONResponse(answer, headers={"X-Model-Version": meta.version})


def document(openapi: dict[str, Any], runner: InferenceRunner) -> None:
    """Show this model's own request and response schemas for ``POST /predict``."""
    schema = predict_schema(runner.predictor.metadata, runner.max_rows)
    operation = openapi["paths"]["/predict"]["post"]
    operation.update(json_body(schema.request))
    answer = operation["responses"]["200"]["content"]["application/json"]
    answer["schema"] = inline_schema(schema.response)

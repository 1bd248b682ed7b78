"""The core every variant has: the model's lifecycle, its routes, health, docs and errors."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from .api import health, predict
from .api.signature_schema import predict_schema
from .docs import document_model, install_docs
from .errors import install_error_handlers, validation_details
from .fast_path import install_fast_path
from .middleware import BodySizeLimit
from .model.base import ModelError, ModelLoadError, Predictor
from .model.loader import load_predictor
from .model.runner import InferenceRunner
from .model.sizing import BatchPlan, plan_batches
from .settings import Settings
from .state import ServiceState, drain_on_signals
from .wiring import Lifespan

logger = logging.getLogger(__name__)


def warm_up(predictor: Predictor, max_rows: int, max_batch_size: int | None = None) -> BatchPlan:
    """Predict the signature's example row, so that the first caller does not pay for lazy
    initialisation, and a model whose answer does not fit its signature never reports ready;
    then size the model's batches on it, unless ``max_batch_size`` is set (see sizing.py).

    A model that refuses the example (a Box-Cox step and a zero, say) still starts: the row
    was made up, not the model's fault. Examples in the metadata file avoid that.
    """
    signature = predictor.metadata.signature
    example = signature.example_row()
    body = json.dumps({"instances": [example]}).encode()
    try:
        rows = predict_schema(predictor.metadata, max_rows).parse(body)[0]
    except RequestValidationError as exc:  # examples from the metadata file that do not fit it
        problem = validation_details(exc)[0]
        raise ModelLoadError(
            f"the example row {example} does not fit the model: {problem}"
        ) from None
    try:
        predictor.predict(rows, signature.probabilities)
    except ModelError as exc:
        hint = "give example values in the model metadata file"
        if not exc.rejected_input:
            raise ModelLoadError(
                f"the model failed its warm-up prediction on {example}: {exc} ({hint})"
            ) from exc
        logger.warning("the model refused the warm-up example %s: %s (%s)", example, exc, hint)
    return plan_batches(predictor, rows, max_batch_size)


def install(app: FastAPI, settings: Settings) -> Lifespan:
    """The model's lifespan, /predict, /model, health, docs, error handlers and the body limit."""
    state: ServiceState = app.state.service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            predictor = await anyio.to_thread.run_sync(
                load_predictor, settings.model_path, settings.model_name
            )
            batching = await anyio.to_thread.run_sync(
                warm_up, predictor, settings.max_rows, settings.max_batch_size
            )
            if state.observer is not None:
                await anyio.to_thread.run_sync(state.observer.model_loaded, predictor)
                state.observer.batching_chosen(batching)
            # Everything loaded so far (libraries, the model) lives as long as the process.
            # Freezing it keeps the garbage collector from walking it again and again under
            # load: those full collections paused every request for tens of milliseconds.
            gc.collect()
            gc.freeze()
        except ModelLoadError as exc:
            logger.error("cannot load the model: %s", exc)
            raise
        runner = InferenceRunner(
            predictor,
            max_rows=settings.max_rows,
            max_concurrency=settings.max_concurrency,
            max_queue=settings.max_queue,
            timeout_s=settings.inference_timeout_s,
            batching=batching,
            max_batch_wait_ms=settings.max_batch_wait_ms,
            observer=state.observer,
        )
        ready = {
            "model": predictor.metadata.name,
            "version": predictor.metadata.version,
            "batching": batching.describe(),
        }
        try:
            async with runner:
                state.runner = runner
                try:
                    with drain_on_signals(state, settings.drain_delay_s):
                        logger.info("model ready", extra=ready)
                        yield
                finally:
                    # Before the runner stops: from here on a late request gets 503, not 500.
                    state.runner = None
        finally:
            state.draining = True

    document_model(app, state)
    state.documenters.append(predict.document)
    # First, because routes are matched in order.
    app.include_router(predict.router)
    app.include_router(health.router)
    install_docs(app)
    install_error_handlers(app)
    # The innermost middleware: whatever is installed after these wraps them.
    install_fast_path(app, predict.router, predict.predict)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return lifespan

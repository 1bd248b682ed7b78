"""The core every variant has: the model's lifecycle, its routes, health, docs and errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from .api import health, predict
from .api.signature_schema import PredictSchema, predict_schema
from .docs import document_model, install_docs
from .errors import install_error_handlers, validation_details
from .fast_path import install_fast_path
from .middleware import BodySizeLimit
from .model.base import ModelError, ModelLoadError, Predictor, Rows
from .model.runner import InferenceRunner
from .model.signature import reference_example
from .model.sizing import BatchPlan, plan_batches
from .model.source import open_source
from .model.versions import ModelVersions, check_on_hangup
from .settings import Settings
from .state import ServiceState, drain_on_signals
from .wiring import Lifespan

logger = logging.getLogger(__name__)


def warm_up(
    predictor: Predictor,
    max_rows: int,
    artifact: Path | None = None,
    max_batch_size: int | None = None,
) -> BatchPlan:
    """Predict known inputs, so that the first caller does not pay for lazy initialisation, and
    a model whose answers do not fit its signature never reports ready; then size the model's
    batches on those inputs, unless ``max_batch_size`` is set (see sizing.py).

    The inputs are the metadata file's ``examples`` when it has them: each must be answered,
    and as the file says where it gives the answer. Else one row: the reference statistics'
    typical values, or one made up from the signature (categories, types, examples). A model
    that refuses a made-up row (a Box-Cox step and a zero, say) still starts and says so: the
    row was made up, not the model's fault.
    """
    metadata = predictor.metadata
    signature = metadata.signature
    schema = predict_schema(metadata, max_rows)
    if metadata.examples:
        checked = [
            check_example(predictor, schema, index, example)
            for index, example in enumerate(metadata.examples)
        ]
        return plan_batches(predictor, np.concatenate(checked), max_batch_size)
    found = None if artifact is None else reference_example(artifact, signature)
    row, source = (found, "reference") if found is not None else (signature.example_row(), "made")
    body = json.dumps({"instances": [row]}).encode()
    try:
        rows = schema.parse(body)[0]
    except RequestValidationError as exc:  # examples from the metadata file that do not fit it
        problem = validation_details(exc)[0]
        raise ModelLoadError(f"the example row {row} does not fit the model: {problem}") from None
    try:
        predictor.predict(rows, signature.probabilities)
    except ModelError as exc:
        if exc.unfit:
            raise ModelLoadError(f"the model's answer does not fit: {exc}") from exc
        hint = 'give "examples" in the model metadata file'
        logger.warning(
            "the model refused the warm-up row %s (%s from the %s): %s; it serves, but "
            "nothing checked its answers (%s)",
            row,
            "typical values" if source == "reference" else "made up",
            "reference statistics" if source == "reference" else "signature",
            exc,
            hint,
        )
    return plan_batches(predictor, rows, max_batch_size)


def check_example(predictor: Predictor, schema: PredictSchema, index: int, example: Any) -> Rows:
    """One of the metadata file's examples: it must be valid, answered, and as written.
    Returns its validated row."""
    where = f"the model metadata's example {index}"
    body = json.dumps({"instances": [example.instance]}).encode()
    try:
        rows = schema.parse(body)[0]
    except RequestValidationError as exc:
        raise ModelLoadError(f"{where} is not valid input: {validation_details(exc)[0]}") from None
    try:
        answer = predictor.predict(rows, False).values[0]
    except ModelError as exc:
        raise ModelLoadError(f"the model fails on {where}: {exc}") from exc
    if example.prediction is not None and not same_answer(answer, example.prediction):
        raise ModelLoadError(
            f"{where} should be answered {example.prediction!r}, the model answers {answer!r}"
        )
    return rows


def same_answer(answer: Any, expected: Any) -> bool:
    """Labels equal, numbers equal to within rounding (floats are not bit-stable across
    machines and library builds), lists element by element."""
    if isinstance(answer, list) and isinstance(expected, list):
        return len(answer) == len(expected) and all(
            same_answer(a, e) for a, e in zip(answer, expected, strict=True)
        )
    numbers = (int, float)
    if isinstance(answer, numbers) and isinstance(expected, numbers):
        if isinstance(answer, bool) or isinstance(expected, bool):
            return answer is expected
        return math.isclose(answer, expected, rel_tol=1e-6, abs_tol=1e-9)
    return bool(answer == expected)


def install(app: FastAPI, settings: Settings) -> Lifespan:
    """The model's lifespan, /predict, /model, health, docs, error handlers and the body limit."""
    state: ServiceState = app.state.service

    def make_runner(predictor: Predictor, batching: BatchPlan) -> InferenceRunner:
        return InferenceRunner(
            predictor,
            max_rows=settings.max_rows,
            max_concurrency=settings.max_concurrency,
            max_queue=settings.max_queue,
            timeout_s=settings.inference_timeout_s,
            batching=batching,
            max_batch_wait_ms=settings.max_batch_wait_ms,
            observer=state.observer,
        )

    def prepare(predictor: Predictor, artifact: Path | None) -> BatchPlan:
        return warm_up(predictor, settings.max_rows, artifact, settings.max_batch_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            source = open_source(settings)
            versions = ModelVersions(state, settings, source, prepare, make_runner)
            versions.events = state.version_events
            version = await versions.start()
            # Everything loaded so far (libraries, the model) lives as long as the process.
            # Freezing it keeps the garbage collector from walking it again and again under
            # load: those full collections paused every request for tens of milliseconds.
            gc.collect()
            gc.freeze()
        except ModelLoadError as exc:
            logger.error("cannot load the model: %s", exc)
            raise
        except Exception as exc:  # a model this service does not know how to describe
            logger.error("cannot load the model: %s: %s", type(exc).__name__, exc, exc_info=exc)
            raise ModelLoadError(f"{type(exc).__name__}: {exc}") from exc
        ready = {
            "model": version.runner.predictor.metadata.name,
            "version": version.name,
            "batching": version.runner.batching.describe(),
        }
        state.versions = versions
        polling = None
        if settings.model_poll_s > 0:
            polling = asyncio.get_running_loop().create_task(versions.poll())
        try:
            with drain_on_signals(state, settings.drain_delay_s), check_on_hangup(versions):
                logger.info("model ready", extra=ready)
                yield
        finally:
            state.draining = True
            if polling is not None:
                polling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await polling
            await versions.close()

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

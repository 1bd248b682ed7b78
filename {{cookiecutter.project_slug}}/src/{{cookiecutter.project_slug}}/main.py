"""The application: settings, model lifecycle, middleware and routes wired together."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
{%- if cookiecutter.auth != "none" %}
from typing import Any
{%- endif %}

import anyio.to_thread
from fastapi import {% if cookiecutter.auth != "none" %}Depends, {% endif %}FastAPI
from fastapi.exceptions import RequestValidationError

from . import __version__
{%- if cookiecutter.auth == "jwt" %}
from .api import auth as auth_routes
{%- endif %}
{%- if cookiecutter.use_open_inference_protocol %}
from .api import health, oip, predict
{%- else %}
from .api import health, predict
{%- endif %}
{%- if cookiecutter.auth != "none" %}
from .api.schemas import error
{%- endif %}
from .api.signature_schema import predict_schema
from .docs import document_model, install_docs
from .errors import install_error_handlers, validation_details
from .middleware import BodySizeLimit
from .model.base import ModelError, ModelLoadError, Predictor
from .model.loader import load_predictor
from .model.runner import InferenceRunner
from .observability.logging import RequestLogMiddleware, configure_logging
{%- if cookiecutter.use_prometheus %}
from .observability.metrics import (
    MetricsMiddleware,
    PrometheusObserver,
    mark_worker_exit,
    metrics_endpoint,
    record_model,
)
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from .security.bearer import JwtAuth, require_scope
{%- elif cookiecutter.auth == "api_key" %}
from .security.api_key import ApiKeyAuth, require_scope
{%- endif %}
from .settings import Settings, load_settings
from .state import ServiceState, drain_on_signals

logger = logging.getLogger(__name__)


def warm_up(predictor: Predictor, max_rows: int) -> None:
    """Predict the signature's example row, so that the first caller does not pay for lazy
    initialisation, and a model whose answer does not fit its signature never reports ready.

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    state = ServiceState()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            predictor = await anyio.to_thread.run_sync(
                load_predictor, settings.model_path, settings.model_name
            )
            await anyio.to_thread.run_sync(warm_up, predictor, settings.max_rows)
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
            max_batch_size=settings.max_batch_size,
            max_batch_wait_ms=settings.max_batch_wait_ms,
{%- if cookiecutter.use_prometheus %}
            observer=PrometheusObserver(),
{%- endif %}
        )
{%- if cookiecutter.use_prometheus %}
        record_model(predictor.metadata)
{%- endif %}
        ready = {"model": predictor.metadata.name, "version": predictor.metadata.version}
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
{%- if cookiecutter.auth != "none" %}
            app.state.auth.database.close()
{%- endif %}
{%- if cookiecutter.use_prometheus %}
            mark_worker_exit()
{%- endif %}

    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = state
    openapi_documenters = document_model(app, state)
{%- if cookiecutter.auth == "jwt" %}
    app.state.auth = JwtAuth.from_settings(settings)
{%- elif cookiecutter.auth == "api_key" %}
    app.state.auth = ApiKeyAuth.from_settings(settings)
{%- endif %}

{%- if cookiecutter.auth != "none" %}
    auth_errors: dict[int | str, dict[str, Any]] = {
        401: error("Missing or invalid credentials."),
        403: error("The credentials lack the 'predict' scope."),
    }
    guarded: dict[str, Any] = {
        "dependencies": [Depends(require_scope("predict"))],
        "responses": auth_errors,
    }
    # First, because routes are matched in order. /predict checks the same credentials as
    # ``guarded`` itself, without dependency injection, which costs more than the check.
    app.include_router(predict.inference_router, responses=auth_errors)
    app.include_router(health.router)
    app.include_router(predict.router, **guarded)
{%- else %}
    # First, because routes are matched in order.
    app.include_router(predict.inference_router)
    app.include_router(health.router)
    app.include_router(predict.router)
{%- endif %}
    openapi_documenters.append(predict.document)
{%- if cookiecutter.use_open_inference_protocol %}
    openapi_documenters.append(oip.document)
    app.include_router(oip.server_router)
    app.include_router(oip.model_router{% if cookiecutter.auth != "none" %}, **guarded{% endif %})
    app.include_router(oip.inference_router{% if cookiecutter.auth != "none" %}, responses=auth_errors{% endif %})
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    app.include_router(auth_routes.router)
{%- endif %}
{%- if cookiecutter.use_prometheus %}
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
{%- endif %}
    install_docs(app)

    install_error_handlers(app)
{%- if cookiecutter.use_open_inference_protocol %}
    app.add_exception_handler(RequestValidationError, oip.validation_error_handler)
{%- endif %}

    # Added last runs first: request log and id, {{ "then metrics, " if cookiecutter.use_prometheus else "" }}then the body limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
{%- if cookiecutter.use_prometheus %}
    app.add_middleware(MetricsMiddleware)
{%- endif %}
    app.add_middleware(RequestLogMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    """Build ``app`` on first access, so importing this module reads no settings."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)

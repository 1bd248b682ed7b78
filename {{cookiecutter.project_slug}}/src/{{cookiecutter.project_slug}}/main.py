"""The application: the installers of this project's features, called in order."""

from __future__ import annotations

from fastapi import FastAPI

from . import __version__
from .access import document_security
{%- if cookiecutter.auth != "none" %}
from .api.admin import install as install_admin
{%- endif %}
{%- if cookiecutter.use_open_inference_protocol %}
from .api.oip import install as install_oip
{%- endif %}
from .cors import install as install_cors
from .observability.logging import configure_logging
from .observability.logging import install as install_request_log
{%- if cookiecutter.use_prometheus %}
from .observability.metrics import install as install_metrics
{%- endif %}
{%- if cookiecutter.use_opentelemetry %}
from .observability.tracing import install as install_tracing
{%- endif %}
from .quota import install as install_quota
{%- if cookiecutter.auth != "none" %}
from .security.{{ cookiecutter.auth }} import install as install_auth
{%- endif %}
from .service import install as install_service
from .settings import Settings, load_settings
from .state import ServiceState
from .wiring import Installer, Lifespan, run_all

# Order is meaning: routes match in this order, each middleware wraps the ones installed before
# it, and lifespans start in this order and stop in reverse.
INSTALLERS: tuple[Installer, ...] = (
    install_service,  # the model's lifespan, /predict, /model, health, docs, errors, body limit
{%- if cookiecutter.auth != "none" %}
    install_auth,
    install_admin,  # model versions by hand: scope admin
{%- endif %}
    install_quota,  # charges the principal that auth found, or the client address
{%- if cookiecutter.use_open_inference_protocol %}
    install_oip,
{%- endif %}
{%- if cookiecutter.use_prometheus %}
    install_metrics,
{%- endif %}
    install_cors,
    install_request_log,  # outside the middleware above, so it logs what they answer, too
{%- if cookiecutter.use_opentelemetry %}
    install_tracing,  # last: wraps the guard and the observer that the others installed
{%- endif %}
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    hooks: list[Lifespan] = []  # read at start-up, once every installer has run
    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=run_all(hooks),
        # FastAPI's built-in OpenTelemetry hooks look for a configured provider on every
        # request; this project's own middleware observes requests, so they stay off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = ServiceState()
    for install in INSTALLERS:
        if (hook := install(app, settings)) is not None:
            hooks.append(hook)
    document_security(app)
    return app


def __getattr__(name: str) -> FastAPI:
    """Build ``app`` on first access, so importing this module reads no settings."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)

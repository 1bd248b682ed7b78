"""API docs served from the installed package, so /docs and /redoc work without internet access.

Swagger UI comes from the ``swagger-ui-bundle-v2`` package; ReDoc's standalone bundle is vendored
under ``static/redoc`` (version and license in its NOTICE file). No page loads anything from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from .state import ServiceState

SWAGGER_ASSETS = "/docs/assets"
REDOC_ASSETS = "/redoc/assets"
REDOC_DIR = Path(__file__).parent / "static" / "redoc"


def document_model(app: FastAPI, state: ServiceState) -> None:
    """Make ``/openapi.json`` describe the served model, with ``state.documenters``.

    The request bodies depend on the model, which loads after the app is built, so the document
    follows FastAPI's "Extending OpenAPI" recipe: generated on first use, completed by each
    documenter, and kept while the same model version serves (a new one may change them).
    """
    generic = app.openapi
    documented: list[object] = [None]  # the runner the kept document describes

    def openapi() -> dict[str, Any]:
        runner = state.runner
        if app.openapi_schema is not None and documented[0] is runner:
            return app.openapi_schema
        app.openapi_schema = None
        schema = generic()
        if runner is None:
            app.openapi_schema = None  # the model is not loaded yet: do not keep this one
            return schema
        for document in state.documenters:
            document(schema, runner)
        documented[0] = runner
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Add /docs (Swagger UI, to try requests) and /redoc (ReDoc, to read) to ``app``."""
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    app.mount(REDOC_ASSETS, StaticFiles(directory=REDOC_DIR), name="redoc")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - API docs"
    favicon = f"{SWAGGER_ASSETS}/favicon-32x32.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,  # fonts from a CDN would break the page offline
        )

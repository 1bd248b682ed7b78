"""Cross-origin requests from browsers: allowed only from ``APP_CORS_ORIGINS``.

Empty (the default) adds no middleware at all, so no response carries a CORS header and
browsers keep other sites' scripts from reading the service's answers.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from .settings import Settings, split_list

# Response headers a browser script may read.
EXPOSED = ["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining"]
EXPOSED += ["RateLimit-Reset"]


def install(app: FastAPI, settings: Settings) -> None:
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=split_list(settings.cors_origins),
        allow_methods=["GET", "POST"],
        # Whatever the browser asks for: credentials headers and Content-Type among them.
        allow_headers=["*"],
        expose_headers=EXPOSED,
        max_age=600,
    )

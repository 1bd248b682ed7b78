"""``POST /predict`` without the router: the hot route, answered by the innermost middleware.

For a light model, the way through FastAPI's routing (matching the routes in order, the
request-response wrapper, the exception and exit-stack middleware) cost about as much per
request as the rest of the service (see the template README, "Benchmarks"). The route stays
registered, so the OpenAPI document, the docs and every other method on ``/predict`` behave as
before; only the POST is answered here, by the same endpoint, and what it raises goes to the
same exception handlers the app has (those for ``Exception`` stay with the server-error
middleware outside, as for any route). ``tests/test_fast_path.py`` pins both paths to the same
answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class PredictFastPath:
    def __init__(
        self, app: ASGIApp, application: FastAPI, route: BaseRoute, endpoint: Endpoint
    ) -> None:
        self.app = app
        self.application = application
        self.route = route
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # What the router would have put in the scope: logs and metrics label by the route.
        scope["route"] = self.route
        scope["endpoint"] = self.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await self.endpoint(request)
        except Exception as exc:
            handler = self.handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def handler(self, exc: Exception) -> Handler | None:
        """The app's handler for ``exc``, found as Starlette's exception middleware finds it."""
        handlers: dict[Any, Any] = self.application.exception_handlers
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            if kind in handlers:
                handler: Handler = handlers[kind]
                return handler
        return None


def install_fast_path(app: FastAPI, router: APIRouter, endpoint: Endpoint) -> None:
    """Answer ``POST /predict`` with ``endpoint`` (a route of ``router``) ahead of the router;
    call before other middleware is added, so that they all (the body limit too) wrap it."""
    route = next(
        r
        for r in router.routes
        if getattr(r, "path", None) == "/predict" and "POST" in getattr(r, "methods", ())
    )
    app.add_middleware(PredictFastPath, application=app, route=route, endpoint=endpoint)

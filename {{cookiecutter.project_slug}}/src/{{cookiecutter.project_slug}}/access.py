"""What routes ask of authentication, naming no kind of it.

Each auth kind (``security/<kind>.py``, chosen when the project was made) provides a ``Guard``
and installs it in the service state; a project without auth has none, and every call here lets
the request through. Routes state their scope once: routes with dependency injection take
``dependencies=[requires(scope)]``, the hot inference routes call ``await admit(request, scope)``
themselves, and both carry ``openapi_extra=scope_marker(scope)`` so that ``document_security``
writes the same ``security`` and 401/403 responses into every guarded operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.security.base import SecurityBase

from .state import ServiceState, service_state

SCOPE_KEY = "x-scope"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller and the scopes it may use."""

    name: str
    scopes: frozenset[str]


class Guard(Protocol):
    """One kind of credentials: how a request proves who sends it, and how that is documented."""

    @property
    def scheme(self) -> SecurityBase:
        """The OpenAPI security scheme (its ``model`` and ``scheme_name``)."""
        ...

    async def authorize(self, request: Request, scope: str) -> Principal:
        """The caller, if its credentials are valid and grant ``scope``; else HTTPException."""
        ...


class Quota(Protocol):
    """A per-client budget of inference requests (see ``quota.py``)."""

    async def charge(self, request: Request, principal: Principal | None) -> None: ...


async def authorize(request: Request, scope: str) -> Principal | None:
    """The caller, or None when the service has no auth; raises 401 or 403 otherwise."""
    guard = service_state(request).guard
    return None if guard is None else await guard.authorize(request, scope)


async def admit(request: Request, scope: str) -> None:
    """``authorize``, then charge the caller's quota: the check of the inference routes."""
    state = service_state(request)
    principal = None if state.guard is None else await state.guard.authorize(request, scope)
    if state.quota is not None:
        await state.quota.charge(request, principal)


def requires(scope: str) -> DependsParam:
    """``authorize`` as a dependency, for ``dependencies=[...]`` of a route or router."""

    async def dependency(request: Request) -> Principal | None:
        return await authorize(request, scope)

    result: DependsParam = Depends(dependency)
    return result


def scope_marker(scope: str) -> dict[str, Any]:
    """``openapi_extra`` for a guarded route; ``document_security`` replaces it."""
    return {SCOPE_KEY: scope}


def error(description: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"detail": {"type": "string"}}}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document_security(app: FastAPI) -> None:
    """Write each guarded operation's ``security`` and 401/403 responses from the guard.

    Follows FastAPI's "Extending OpenAPI" recipe, around whatever ``app.openapi`` already is.
    Without a guard the markers are only removed.
    """
    generate: Callable[[], dict[str, Any]] = app.openapi
    secured: list[object] = [None]  # the document already completed here

    def openapi() -> dict[str, Any]:
        schema = generate()
        if schema is secured[0]:
            return schema
        state: ServiceState = app.state.service
        guard = state.guard
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                if not isinstance(operation, dict) or SCOPE_KEY not in operation:
                    continue
                scope = operation.pop(SCOPE_KEY)
                if guard is None:
                    continue
                name = guard.scheme.scheme_name
                operation["security"] = [{name: []}]
                responses = operation.setdefault("responses", {})
                responses.setdefault("401", error("Missing or invalid credentials."))
                responses.setdefault("403", error(f"The credentials lack the '{scope}' scope."))
        if guard is not None:
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            model = guard.scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
            schemes.setdefault(guard.scheme.scheme_name, model)
        if app.openapi_schema is schema:  # kept: complete it only once
            secured[0] = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

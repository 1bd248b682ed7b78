"""API-key authentication: the FastAPI dependencies that guard routes by scope.

The key is read from the ``X-API-Key`` header only. Query strings end up in access logs,
proxy logs and browser history, so a key sent there is not looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from ..settings import Settings
from .database import Database
from .keys import KeyStore, digest
from .principal import Principal, PrincipalCache

api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)
CHALLENGE = 'APIKey realm="api", header="X-API-Key"'
# Our keys are 46 characters; a longer header value is refused without a database lookup.
MAX_KEY_CHARS = 128


@dataclass
class ApiKeyAuth:
    database: Database
    keys: KeyStore
    # Valid keys by digest (the cache holds no key itself), for APP_KEY_CACHE_TTL_S seconds.
    active_keys: PrincipalCache

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeyAuth:
        database = Database(settings.database_url)
        keys = KeyStore(database)
        active_keys = PrincipalCache(keys.principal_by_digest, settings.key_cache_ttl_s)
        return cls(database, keys, active_keys)


# Coroutines: FastAPI runs a plain ``def`` dependency in a worker thread.
async def api_key_auth(request: Request) -> ApiKeyAuth:
    auth: ApiKeyAuth = request.app.state.auth
    return auth


async def principal_for(auth: ApiKeyAuth, key: str | None) -> Principal:
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Not authenticated",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    principal = None
    if len(key) <= MAX_KEY_CHARS:
        wanted = digest(key)
        # A blocking database query only when the cache does not know the key.
        principal = auth.active_keys.cached(wanted) or await run_in_threadpool(
            auth.active_keys.active, wanted
        )
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Invalid or revoked API key",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    return principal


def check_scope(principal: Principal, scope: str) -> Principal:
    if scope not in principal.scopes:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"this API key lacks the '{scope}' scope"
        )
    return principal


async def current_principal(
    key: str | None = Depends(api_key_scheme), auth: ApiKeyAuth = Depends(api_key_auth)
) -> Principal:
    return await principal_for(auth, key)


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only keys that grant ``scope``."""

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        return check_scope(principal, scope)

    return dependency


async def authorize(request: Request, scope: str) -> Principal:
    """``require_scope`` as one plain call, for a route that skips dependency injection.

    Resolving the dependency chain above costs FastAPI more per request than the rest of the
    check; the prediction route calls this instead (see ``api/predict.py``).
    """
    principal = await principal_for(request.app.state.auth, await api_key_scheme(request))
    return check_scope(principal, scope)


# What ``require_scope`` adds to a route's OpenAPI operation, for routes that call ``authorize``.
OPENAPI_SECURITY: list[dict[str, list[str]]] = [{api_key_scheme.scheme_name: []}]

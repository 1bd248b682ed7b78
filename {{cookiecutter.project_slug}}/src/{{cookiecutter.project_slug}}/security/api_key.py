"""auth=api_key: machine clients send a key, made with the ``keys`` command, in ``X-API-Key``.

The key is read from the ``X-API-Key`` header only. Query strings end up in access logs,
proxy logs and browser history, so a key sent there is not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from ..settings import Settings
from ..state import ServiceState
from ..wiring import Lifespan, on_exit
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

    @property
    def scheme(self) -> APIKeyHeader:
        return api_key_scheme

    async def authorize(self, request: Request, scope: str) -> Principal:
        """The caller, if its key is valid and grants ``scope``: one plain call, for routes
        that skip dependency injection (see ``api/predict.py``)."""
        principal = await principal_for(self, await api_key_scheme(request))
        return check_scope(principal, scope)

    def close(self) -> None:
        self.database.close()


def install(app: FastAPI, settings: Settings) -> Lifespan:
    """Guard the model's routes with API keys."""
    auth = ApiKeyAuth.from_settings(settings)
    app.state.auth = auth
    state: ServiceState = app.state.service
    state.guard = auth
    return on_exit(auth.close)


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

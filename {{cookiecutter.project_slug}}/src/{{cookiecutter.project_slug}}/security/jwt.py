"""auth=jwt: users log in at ``/token`` for short-lived bearer tokens signed by this service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from ..settings import Settings, split_list
from ..state import ServiceState
from ..wiring import Lifespan, on_exit
from .database import Database
from .login_limit import LoginLimiter
from .principal import (
    SCOPES,
    Principal,
    PrincipalCache,
    VerifiedTokens,
    parse_scopes,
    unauthorized,
)
from .tokens import TokenService
from .users import UserStore

bearer_scheme = OAuth2PasswordBearer(tokenUrl="token", scopes=SCOPES, auto_error=False)
# Our tokens are a few hundred bytes; anything much longer is refused before it is parsed.
MAX_TOKEN_CHARS = 4096


@dataclass
class JwtAuth:
    database: Database
    users: UserStore
    # Active users by name, for APP_USER_CACHE_TTL_S seconds.
    active_users: PrincipalCache
    tokens: TokenService
    login_limiter: LoginLimiter
    verified: VerifiedTokens

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtAuth:
        database = Database(settings.database_url)
        tokens = TokenService(
            secret=settings.secret_key.get_secret_value().encode("utf-8"),
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            expire=timedelta(minutes=settings.token_expire_minutes),
            leeway_s=settings.jwt_leeway_s,
            previous=tuple(
                key.encode("utf-8")
                for key in split_list(settings.previous_secret_keys.get_secret_value())
            ),
        )
        limiter = LoginLimiter(
            settings.login_rate_limit, settings.rate_limit_storage, settings.trust_forwarded_for
        )
        users = UserStore(database)
        active_users = PrincipalCache(users.active, settings.user_cache_ttl_s)
        return cls(database, users, active_users, tokens, limiter, VerifiedTokens())

    @property
    def scheme(self) -> OAuth2PasswordBearer:
        return bearer_scheme

    async def authorize(self, request: Request, scope: str) -> Principal:
        """The caller, if its token is valid and grants ``scope``: one plain call, for routes
        that skip dependency injection (resolving a dependency chain costs FastAPI more per
        request than checking a cached token does; see ``api/predict.py``)."""
        principal = await principal_for(self, await bearer_scheme(request))
        return check_scope(principal, scope)

    def close(self) -> None:
        self.database.close()


def install(app: FastAPI, settings: Settings) -> Lifespan:
    """Guard the model's routes with bearer tokens, and add ``/token`` and ``/users/me``."""
    from ..api.auth import router

    auth = JwtAuth.from_settings(settings)
    app.state.auth = auth
    state: ServiceState = app.state.service
    state.guard = auth
    app.include_router(router)
    return on_exit(auth.close)


# The dependencies below are coroutines: FastAPI runs a plain ``def`` dependency in a worker
# thread, and three thread hops per request cost more than checking the token itself.
async def jwt_auth(request: Request) -> JwtAuth:
    auth: JwtAuth = request.app.state.auth
    return auth


async def principal_for(auth: JwtAuth, token: str | None) -> Principal:
    """The caller named by a valid token whose user still exists and is not disabled."""
    if token is None:
        raise unauthorized("Not authenticated", error=None)
    if len(token) > MAX_TOKEN_CHARS:
        raise unauthorized("Invalid or expired token")
    claims = auth.verified.get(token)
    if claims is None:
        try:
            claims = auth.tokens.decode(token)
        except jwt.InvalidTokenError:
            raise unauthorized("Invalid or expired token") from None
        auth.verified.put(token, claims)
    # A blocking database query only when the cache does not know the user.
    user = auth.active_users.cached(claims["sub"]) or await run_in_threadpool(
        auth.active_users.active, claims["sub"]
    )
    if user is None:
        raise unauthorized("Invalid or expired token")
    # The token may carry fewer scopes than the user has, never more.
    return Principal(user.name, parse_scopes(claims.get("scope", "")) & user.scopes)


def check_scope(principal: Principal, scope: str) -> Principal:
    if scope not in principal.scopes:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this token lacks the '{scope}' scope",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return principal


async def current_principal(
    token: str | None = Depends(bearer_scheme), auth: JwtAuth = Depends(jwt_auth)
) -> Principal:
    return await principal_for(auth, token)

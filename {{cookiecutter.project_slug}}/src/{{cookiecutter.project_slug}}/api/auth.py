"""Logging in for a token, and asking who the token belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from ..security.jwt import JwtAuth, current_principal, jwt_auth
from ..security.principal import Principal, unauthorized
from .schemas import error

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class Me(BaseModel):
    name: str
    scopes: list[str]


@router.post(
    "/token",
    response_model=Token,
    responses={
        401: error("Incorrect username or password."),
        429: error("Too many failed logins from this client (Retry-After)."),
    },
)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    auth: Annotated[JwtAuth, Depends(jwt_auth)],
) -> Token:
    """Exchange a user name and password for a short-lived bearer token."""
    client = auth.login_limiter.client_key(request)
    auth.login_limiter.check(client)
    principal = auth.users.authenticate(form.username, form.password)
    if principal is None:
        auth.login_limiter.failed(client)
        raise unauthorized("Incorrect username or password", error=None)
    requested = set(form.scopes)
    granted = sorted(principal.scopes & requested if requested else principal.scopes)
    token, expires_in = auth.tokens.issue(principal.name, granted)
    return Token(access_token=token, expires_in=expires_in)


@router.get(
    "/users/me",
    response_model=Me,
    responses={401: error("Missing, invalid or expired token.")},
)
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    """The caller's name and the scopes its token grants."""
    return Me(name=principal.name, scopes=sorted(principal.scopes))

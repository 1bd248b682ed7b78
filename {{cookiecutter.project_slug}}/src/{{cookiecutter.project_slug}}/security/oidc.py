"""auth=oidc: bearer tokens issued by your OpenID Connect provider (Keycloak, Entra ID, Okta,
Auth0, Dex, ...).

The service keeps no users and issues no tokens. It reads the provider's discovery document
(``<APP_OIDC_ISSUER>/.well-known/openid-configuration``) for the address of its signing keys,
fetches them at start-up and verifies every token locally: the signature with the key its
``kid`` names, an asymmetric algorithm from ``APP_OIDC_ALGORITHMS`` (never ``none``, never an
HMAC, whose "key" would be the provider's public key), and ``iss``, ``aud`` and ``exp``. The
scopes in the token's ``scope`` (or ``scp``) claim are mapped to this service's ``predict`` and
``admin`` scopes by ``APP_OIDC_PREDICT_SCOPE`` and ``APP_OIDC_ADMIN_SCOPE``.

Keys are kept in memory. A token signed with a key id the service does not know yet (the
provider rotated its keys) makes it fetch the keys again, at most once per
``APP_OIDC_REFRESH_INTERVAL_S``; they are also re-read in the background once they are
``APP_OIDC_KEYS_MAX_AGE_S`` old. A provider that cannot be reached changes nothing: the keys
already fetched keep working. Only a service that has never fetched any keys answers 503 with
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import jwt
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.security import OpenIdConnect
from fastapi.security.utils import get_authorization_scheme_param

from ..settings import Settings, split_list
from ..state import ServiceState
from ..wiring import Lifespan
from .principal import Principal, VerifiedTokens, unauthorized

logger = logging.getLogger(__name__)

# Providers' tokens are one to a few kilobytes; anything much longer is refused unparsed.
MAX_TOKEN_CHARS = 16_384
# A discovery document or key set larger than this is not one.
MAX_DOCUMENT_BYTES = 1_048_576


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def fetch_json(url: str, timeout_s: float) -> dict[str, Any]:
    """GET ``url`` and parse the JSON object it answers (blocking: run it in a thread)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    # The scheme is checked above, so urllib cannot be made to read a local file.
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return document


class NoKeys(Exception):
    """No signing key has been fetched yet; try again in ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the identity provider's signing keys are not available yet")
        self.retry_after_s = retry_after_s


class ProviderKeys:
    """The provider's public signing keys by key id, fetched on demand and kept on failure.

    PyJWT's ``PyJWKClient`` parses keys well (its ``PyJWKSet`` is used here) but falls short as
    the store: it fetches with blocking I/O inside the call that verifies a token, and once its
    cache lifespan ends it raises instead of serving the keys it has while the provider is down.
    """

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None,
        algorithms: frozenset[str],
        refresh_interval_s: float,
        max_age_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._algorithms = algorithms
        self._refresh_interval_s = refresh_interval_s
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        # Called with no arguments whenever the set of keys changes.
        self.on_change: Callable[[], None] = lambda: None

    @property
    def count(self) -> int:
        return len(self._keys)

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key that ``kid`` names (a token without a ``kid`` may use the only key), or None.

        Raises ``NoKeys`` if no key could be fetched so far.
        """
        now = self._clock()
        if not self._keys or (kid is not None and kid not in self._keys):
            await self.refresh()
        elif now - self._fetched_at > self._max_age_s:
            self._refresh_in_background()
        if not self._keys:
            wait = self._attempted_at + self._refresh_interval_s - self._clock()
            raise NoKeys(max(1, math.ceil(wait)))
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the keys unless that was tried less than the refresh interval ago; whether
        the set of keys changed.

        Concurrent callers wait for one fetch. A failed fetch keeps the keys there are.
        """
        async with self._lock:
            if not force and self._clock() - self._attempted_at < self._refresh_interval_s:
                return False
            self._attempted_at = self._clock()
            try:
                keys = await anyio.to_thread.run_sync(self._fetch)
            except Exception as exc:  # any failure of the provider: keep serving what we have
                logger.warning(
                    "cannot fetch the identity provider's signing keys (keeping %d): %s",
                    len(self._keys),
                    exc,
                )
                return False
            self._fetched_at = self._clock()
            changed = keys.keys() != self._keys.keys()
            self._keys = keys
            if changed:
                logger.info("identity provider signing keys: %s", ", ".join(sorted(keys)))
                self.on_change()
            return changed

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        await self.refresh()

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        if self._jwks_url is None:
            document = fetch_json(discovery_url(self.issuer), self._timeout_s)
            if document.get("issuer") != self.issuer:
                raise ValueError(
                    f"the discovery document names the issuer {document.get('issuer')!r}, "
                    f"not APP_OIDC_ISSUER={self.issuer!r}"
                )
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError("the discovery document has no jwks_uri")
            self._jwks_url = jwks_uri
        key_set = jwt.PyJWKSet.from_dict(fetch_json(self._jwks_url, self._timeout_s))
        keys = {
            key.key_id or "": key
            for key in key_set.keys
            if key.public_key_use in ("sig", None) and key.algorithm_name in self._algorithms
        }
        if not keys:
            raise ValueError(f"no signing key for {', '.join(sorted(self._algorithms))}")
        return keys


def granted_scopes(claims: dict[str, Any], mapping: dict[str, str]) -> frozenset[str]:
    """This service's scopes that the token's ``scope`` or ``scp`` claim grants.

    ``scope`` is a space-separated string (RFC 9068, Keycloak, Auth0); ``scp`` is the same
    string (Entra ID) or a list (Okta).
    """
    names: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            names.update(value.split())
        elif isinstance(value, list):
            names.update(item for item in value if isinstance(item, str))
    return frozenset(ours for ours, theirs in mapping.items() if theirs in names)


@dataclass
class OidcAuth:
    keys: ProviderKeys
    audience: str
    algorithms: frozenset[str]
    leeway_s: int
    scope_names: dict[str, str]  # our scope -> the provider's scope that grants it
    verified: VerifiedTokens
    scheme: OpenIdConnect

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcAuth:
        algorithms = frozenset(split_list(settings.oidc_algorithms))
        keys = ProviderKeys(
            issuer=settings.oidc_issuer,
            jwks_url=settings.oidc_jwks_url or None,
            algorithms=algorithms,
            refresh_interval_s=settings.oidc_refresh_interval_s,
            max_age_s=settings.oidc_keys_max_age_s,
            timeout_s=settings.oidc_timeout_s,
        )
        verified = VerifiedTokens()
        # A key the provider no longer publishes must stop verifying the tokens it signed.
        keys.on_change = verified.clear
        scheme = OpenIdConnect(
            openIdConnectUrl=discovery_url(settings.oidc_issuer),
            scheme_name="OpenIdConnect",
            description="A bearer token from the identity provider, audience "
            f"`{settings.oidc_audience}`.",
            auto_error=False,
        )
        scope_names = {"predict": settings.oidc_predict_scope, "admin": settings.oidc_admin_scope}
        return cls(
            keys=keys,
            audience=settings.oidc_audience,
            algorithms=algorithms,
            leeway_s=settings.oidc_leeway_s,
            scope_names=scope_names,
            verified=verified,
            scheme=scheme,
        )

    async def authorize(self, request: Request, scope: str) -> Principal:
        """The caller, if its token is valid and grants ``scope``."""
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Not authenticated", error=None)
        if len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("Invalid or expired token")
        claims = self.verified.get(token)
        if claims is None:
            claims = await self.verify(token)
            self.verified.put(token, claims)
        subject = claims.get("sub") or claims.get("azp") or claims.get("client_id")
        principal = Principal(str(subject), granted_scopes(claims, self.scope_names))
        if scope not in principal.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this token lacks the '{self.scope_names[scope]}' scope",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", '
                    f'scope="{self.scope_names[scope]}"'
                },
            )
        return principal

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, if the provider signed it for this service and it is current."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthorized("Invalid or expired token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self.algorithms or not isinstance(kid, str | None):
            raise unauthorized("Invalid or expired token")
        try:
            return await self.checked(token, algorithm, kid)
        except jwt.InvalidSignatureError:
            # A token without a key id names no key to look for: if the provider rotated its
            # only key, the signature fails instead. Fetch the keys (rate-limited) and retry.
            if kid is not None or not await self.keys.refresh():
                raise unauthorized("Invalid or expired token") from None
        try:
            return await self.checked(token, algorithm, kid)
        except jwt.InvalidTokenError:
            raise unauthorized("Invalid or expired token") from None

    async def checked(self, token: str, algorithm: str, kid: str | None) -> dict[str, Any]:
        """The claims, if the key ``kid`` names verifies the token; else the reason, raised."""
        try:
            key = await self.keys.key(kid)
        except NoKeys as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="cannot check tokens: the identity provider has not been reached yet",
                headers={"Retry-After": str(exc.retry_after_s)},
            ) from None
        # The key's own algorithm (its "alg", or the one its type implies) must be the token's.
        if key is None or key.algorithm_name != algorithm:
            raise unauthorized("Invalid or expired token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.keys.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidSignatureError:
            raise
        except jwt.InvalidTokenError:
            raise unauthorized("Invalid or expired token") from None
        if not isinstance(claims.get("exp"), int | float):
            raise unauthorized("Invalid or expired token")
        return claims

    async def close(self) -> None:
        await self.keys.close()


def install(app: FastAPI, settings: Settings) -> Lifespan:
    """Guard the model's routes with the identity provider's tokens; fetch its keys at start."""
    auth = OidcAuth.from_settings(settings)
    app.state.auth = auth
    state: ServiceState = app.state.service
    state.guard = auth

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await auth.keys.refresh(force=True)
        if auth.keys.count == 0:
            logger.warning(
                "starting without the identity provider's keys: requests with tokens are "
                "answered 503 until %s can be reached",
                discovery_url(settings.oidc_issuer),
            )
        try:
            yield
        finally:
            await auth.close()

    return lifespan

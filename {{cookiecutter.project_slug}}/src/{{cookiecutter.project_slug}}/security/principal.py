"""The authenticated caller and the scopes it may use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, status

from ..access import Principal as Principal

SCOPES: dict[str, str] = {
    "predict": "Call the model and read its metadata.",
    "admin": "Administer the service.",
}


def unauthorized(detail: str, error: str | None = "invalid_token") -> HTTPException:
    """401 with the bearer challenge (RFC 6750): ``error`` names what was wrong with a token."""
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge}
    )


def parse_scopes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def check_scopes(scopes: list[str]) -> list[str]:
    """Refuse unknown scope names, so that a typo does not silently grant nothing."""
    unknown = sorted(set(scopes) - SCOPES.keys())
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return sorted(set(scopes))


class PrincipalCache:
    """Remembers for ``ttl_s`` seconds whom a credential names, to spare a query per request.

    ``lookup`` asks the database (blocking). Only credentials found valid are remembered, so a
    revoked or disabled one is never let in by a stale "not found"; the price is that one
    revoked while remembered keeps working for up to ``ttl_s`` seconds (each worker process has
    its own cache). With ``ttl_s=0`` every call asks the database.
    """

    def __init__(
        self,
        lookup: Callable[[str], Principal | None],
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}

    def cached(self, credential: str) -> Principal | None:
        """The remembered principal, if still fresh; never touches the database."""
        entry = self._entries.get(credential)
        return entry[0] if entry is not None and self._clock() < entry[1] else None

    def active(self, credential: str) -> Principal | None:
        """The principal from the cache, or else from the database (blocking)."""
        if self._ttl_s <= 0:
            return self._lookup(credential)
        now = self._clock()
        cached = self.cached(credential)
        if cached is not None:
            return cached
        principal = self._lookup(credential)
        if principal is None:
            self._entries.pop(credential, None)
            return None
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[credential] = (principal, now + self._ttl_s)
        return principal


class VerifiedTokens:
    """Tokens already verified, kept until they expire, so a client's next request with the
    same token skips the signature check and claim parsing.

    Only tokens whose signature and claims were verified are stored, keyed by the whole token, so a
    changed byte is a miss; an entry is used only before its ``exp`` (without leeway, so the
    cache never extends a token's life). The size is bounded: when full, it starts afresh.
    """

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._claims: dict[str, dict[str, Any]] = {}

    def get(self, token: str) -> dict[str, Any] | None:
        claims = self._claims.get(token)
        if claims is None:
            return None
        if self._clock() >= claims["exp"]:
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: dict[str, Any]) -> None:
        if len(self._claims) >= self._max_entries:
            self._claims.clear()
        self._claims[token] = claims

    def clear(self) -> None:
        """Forget every token (the keys that verified them changed)."""
        self._claims.clear()

"""Short-lived signed access tokens (JWT, HMAC) with every claim checked on the way in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt


@dataclass(frozen=True)
class TokenService:
    secret: bytes
    algorithm: str
    issuer: str
    audience: str
    expire: timedelta
    leeway_s: int

    def issue(self, subject: str, scopes: list[str]) -> tuple[str, int]:
        """A signed token for ``subject`` and its lifetime in seconds."""
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "scope": " ".join(scopes),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.expire,
        }
        token = jwt.encode(claims, self.secret, algorithm=self.algorithm)
        return token, int(self.expire.total_seconds())

    def decode(self, token: str) -> dict[str, Any]:
        """The token's claims; raises ``jwt.InvalidTokenError`` for anything not quite right.

        Only the one configured algorithm is accepted (never ``none``, never a different
        HMAC size), and exp, iat, sub, iss and aud must all be present and valid.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self.secret,
            algorithms=[self.algorithm],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_s,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope", ""), str):
            raise jwt.InvalidTokenError("malformed sub or scope claim")
        return claims


class VerifiedTokens:
    """Tokens already verified, kept until they expire, so a client's next request with the
    same token skips the signature check and claim parsing.

    Only tokens that passed ``TokenService.decode`` are stored, keyed by the whole token, so a
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
